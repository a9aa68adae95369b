"""Beyond the papers (pd-transformer): Async LU's speed-up over bp on a Transformer, against the bound
of 000 §3.3 that the paper's models are held to."""

from __future__ import annotations

import math
import re

from ._common import (
    NOT_MEASURABLE,
    Evidence,
    Need,
    Plan,
    Verdict,
    gather,
    gpus,
    hardware_of,
    paired_verdict,
    pairs,
    register_claim,
    short,
)

TABLES = ("pd-transformer",)
PAPER_BETA = 2.0  # 000 §3.3's β ≈ 2, where no `perf async` measured one here
SHARE = 0.8  # the share of the bound speedup-approaches-1-plus-beta asks for


def bound(evidence: Evidence, hardware: str) -> tuple[float, str]:
    """(min(1 + β, cores), how it was found): β from the newest `perf async`, else the paper's 2;
    cores from the runs' hardware tag (a GPU's bound is 1 + β)."""
    perf = evidence.perf("async")
    beta, where = PAPER_BETA, "β = 2 (000 §3.3; no `perf async` in the store)"
    if not perf.empty and "metrics.beta" in perf and not math.isnan(float(perf.iloc[0]["metrics.beta"])):
        beta, where = float(perf.iloc[0]["metrics.beta"]), "β from the newest `perf async`"
    cores = re.search(r"\((\d+) cores\)", hardware)
    if gpus(hardware) or cores is None:
        return 1 + beta, f"1 + β = {1 + beta:.2f}, {where}"
    limit = min(1 + beta, float(cores.group(1)))
    return limit, f"min(1 + β, cores) = min({1 + beta:.2f}, {cores.group(1)}) = {limit:.2f}, {where}"


@register_claim(
    id="gpt-lu-speedup",
    source="beyond the papers: the suite's pd-transformer (000 §3.3's speed-up bound, on a GPT)",
    statement=(
        f"Beyond the papers: on a byte-level GPT, Async LU's tokens/s over bp's reaches {SHARE:.0%} of the "
        "bound min(1 + β, cores) on this hardware."
    ),
    paper="none for Transformers; 000 §3.3: the speed-up approaches 1 + β",
    decided_by=(
        f"pd-transformer: async_lu / bp tokens/s (mean over epochs) paired by run index, over the bound; "
        f"margin = share of the bound - {SHARE}"
    ),
    settle="3 runs per cell: `run pd-transformer --runs 3`",
    plan=Plan((Need("pd-transformer", ("bp", "async_lu")),)),
)
def gpt_lu_speedup(evidence: Evidence) -> Verdict:
    per_run = gather(evidence, TABLES)
    joined = pairs(per_run, "async_lu", "bp", "samples_per_s") if not per_run.empty else per_run
    if per_run.empty or joined.empty:
        return Verdict(
            NOT_MEASURABLE, "no finished async_lu and bp runs of pd-transformer; run pd-transformer"
        )
    hardware = hardware_of(per_run)
    limit, how = bound(evidence, hardware)
    ratios = list(joined["a"] / joined["b"])
    margins = [r / limit - SHARE for r in ratios]
    verdict, reason = paired_verdict(margins, f"speed-up share of the bound - {SHARE}")
    shown = ", ".join(f"run {i} {r:.2f}x" for i, r in zip(joined["run_index"], ratios, strict=True))
    return Verdict(
        verdict,
        reason,
        f"async_lu / bp tokens/s: {shown}; bound {how}; profile {evidence.profile}; {hardware}",
        short([*joined["run_a"], *joined["run_b"]]),
        tuple(margins),
        f"one-sided one-sample t-test at 0.05 on share - {SHARE}, pairs by run index (seed)",
    )
