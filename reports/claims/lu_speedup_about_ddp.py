"""000 Tables 7, 8: Async LU's speed-up over bp is about DDP's."""

from __future__ import annotations

import pandas as pd

from ..render import speedups
from ._common import (
    FULL,
    INCONCLUSIVE,
    MIN_PAIRS,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    REDUCED,
    REPRODUCED,
    Evidence,
    Need,
    Plan,
    Verdict,
    gather,
    gpus,
    hardware_of,
    no_runs,
    register_claim,
)


def speedup_cells(evidence: Evidence, table_ids: tuple[str, ...]) -> pd.DataFrame:
    """Per model and run index, Async LU's and DDP's speed-up over bp (reports.tables.speedups)."""
    frames = []
    for table_id in table_ids:
        per_run = evidence.per_run(table_id)
        if not per_run.empty:
            ratios = speedups(per_run)
            if not ratios.empty:
                frames.append(ratios.assign(table=table_id))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@register_claim(
    id="lu-speedup-about-ddp",
    source="000 Tables 7, 8",
    statement="On several devices Async LU's speed-up over single-device backprop is about DDP's.",
    paper="CIFAR-10 R18 1.86 vs 1.90, R50 2.02 vs 2.38; CIFAR-100 R18 1.83 vs 1.86, R50 2.02 vs 2.30 (3 GPU)",
    decided_by=(
        "speed-up over bp to the lowest best accuracy (table7, table8); LU / DDP per model within "
        "[0.75, 1.33] (the paper's own ratios lie in 0.85-0.98)"
    ),
    settle="3 runs per cell of table7 / table8 on several devices (`run table7 --runs 3 --devices 3`)",
    # At smoke and quick, Table 7's ResNet-18 alone (9 runs); the paper profile runs Tables 7 and 8.
    plan=Plan(
        (
            Need("table7", models=("resnet18",), profiles=REDUCED),
            Need("table7", profiles=FULL),
            Need("table8", profiles=FULL),
        )
    ),
    needs_hardware="several GPUs (3 in the paper), one per process",
    needs_gpus=2,
)
def lu_speedup_about_ddp(evidence: Evidence) -> Verdict:
    cells = speedup_cells(evidence, ("table7", "table8"))
    if cells.empty:
        return no_runs("table7/table8 with bp, async_lu and ddp", "run table7")
    lines, ok, counts = [], [], []
    for (table, model), group in cells.groupby(["table", "model"]):
        lu = group[group["method"] == "async_lu"]["speedup"]
        ddp = group[group["method"] == "ddp"]["speedup"]
        if lu.empty or ddp.empty:
            continue
        ratio = float(lu.mean() / ddp.mean())
        ok.append(0.75 <= ratio <= 1.33)
        counts.append(min(len(lu), len(ddp)))
        lines.append(
            f"{table} {model}: LU {lu.mean():.2f}x, DDP {ddp.mean():.2f}x, ratio {ratio:.2f} "
            f"({counts[-1]} run(s))"
        )
    if not ok:
        return no_runs("table7/table8 with both async_lu and ddp", "run table7")
    hardware = hardware_of(gather(evidence, ("table7", "table8")))
    text = f"{'; '.join(lines)}; profile {evidence.profile}; {hardware}"
    if gpus(hardware) < 2:
        return Verdict(
            NOT_MEASURABLE,
            "needs several GPUs: these runs' devices are processes on one machine's CPU cores (or one GPU), "
            "whose speed-up over bp measures core sharing, not the paper's devices",
            text,
        )
    if min(counts) < MIN_PAIRS:
        rule = "within" if all(ok) else "outside"
        return Verdict(
            INCONCLUSIVE,
            f"too few runs: {min(counts)} per cell, {MIN_PAIRS} needed (the ratios are {rule} the band)",
            text,
        )
    verdict = REPRODUCED if all(ok) else NOT_REPRODUCED
    return Verdict(
        verdict,
        "every model's ratio in [0.75, 1.33]" if all(ok) else "a model's ratio is outside [0.75, 1.33]",
        text,
    )
