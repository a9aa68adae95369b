"""000 Table 5: on ImageNet, Async LU on 3 devices reaches bp's accuracy about 3x faster."""

from __future__ import annotations

from ._common import (
    INCONCLUSIVE,
    MIN_PAIRS,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    Evidence,
    Need,
    Plan,
    Verdict,
    hardware_of,
    no_runs,
    pairs,
    register_claim,
)


@register_claim(
    id="imagenet-same-accuracy-3x-faster",
    source="000 Table 5",
    statement="On ImageNet-1k, Async LU on 3 devices reaches bp's accuracy about 3x faster.",
    paper="ResNet-50: LU 73.42 % in 134.24 ks vs bp 73.40 % in 403.77 ks (3.0x)",
    decided_by="table5 runs on real ImageNet: best accuracy within 1 point, bp's / LU's time to best >= 2.5",
    settle="ImageNet-1k on disk and 3 GPUs: `run table5 --profile paper`",
    plan=Plan((Need("table5"),)),
    needs_hardware="ImageNet-1k on disk and 3 GPUs",
    needs_gpus=3,
)
def imagenet_claim(evidence: Evidence) -> Verdict:
    runs = evidence.runs("table5")
    source = "params.data_source"
    real = runs[runs[source].fillna("synthetic") != "synthetic"] if source in runs else runs.iloc[0:0]
    if real.empty or evidence.profile == "smoke":
        return Verdict(
            NOT_MEASURABLE, "needs ImageNet-1k on disk (no table5 run on real ImageNet here) and GPUs"
        )
    per_run = evidence.per_run("table5")
    per_run = per_run[per_run["run_id"].isin(real["run_id"])]
    acc = pairs(per_run, "async_lu", "bp", "best_acc")
    tta = pairs(per_run, "async_lu", "bp", "tta_best_s")
    if acc.empty:
        return no_runs("table5 with both async_lu and bp", "run table5")
    ratios = list(tta["b"] / tta["a"])
    gaps = list((acc["a"] - acc["b"]) * 100)
    gaps_text = ", ".join(f"{g:+.2f}" for g in gaps)
    ratios_text = ", ".join(f"{r:.2f}x" for r in ratios)
    text = (
        f"accuracy gap (points) {gaps_text}; bp/LU time {ratios_text}; profile {evidence.profile}; "
        f"{hardware_of(per_run)}"
    )
    holds = all(abs(g) <= 1 for g in gaps) and all(r >= 2.5 for r in ratios)
    if len(ratios) < MIN_PAIRS:
        return Verdict(
            INCONCLUSIVE,
            f"too few runs: {len(ratios)} pair(s), {MIN_PAIRS} needed "
            f"(they {'agree' if holds else 'disagree'})",
            text,
        )
    return Verdict(
        REPRODUCED if holds else NOT_REPRODUCED,
        "accuracy within 1 point and >= 2.5x faster in every pair" if holds else "a pair misses",
        text,
    )
