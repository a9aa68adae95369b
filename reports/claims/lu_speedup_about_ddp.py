"""000 Tables 7, 8: Async LU's speed-up over bp is about DDP's."""

from __future__ import annotations

import math

from core.job import Row

from ._common import (
    FULL,
    PAPER_000,
    REDUCED,
    Evidence,
    Measured,
    Need,
    Plan,
    described,
    gather,
    gpus,
    no_runs,
    register_claim,
)
from .censored import time_cells, unset_targets
from .stats import Part, within

TABLES = ("table7", "table8")
ABOUT = Part(
    "LU's speed-up / DDP's (= t_DDP / t_LU)",
    within(math.log(0.75), math.log(4 / 3), "'about DDP's': within a factor of 4/3 either way (the paper's "
           "own ratios lie in 0.85-0.98)", "x"),
    paper=math.log(0.92),  # the paper's four ratios, 0.85-0.98
    noise=0.1,
    cells=4,
    times=True,
)  # fmt: skip


@register_claim(
    id="lu-speedup-about-ddp",
    source="000 Tables 7, 8",
    paper_version=PAPER_000,
    statement="On several devices Async LU's speed-up over single-device backprop is about DDP's.",
    paper="CIFAR-10 R18 1.86 vs 1.90, R50 2.02 vs 2.38; CIFAR-100 R18 1.83 vs 1.86, R50 2.02 vs 2.30 (3 GPU)",
    decided_by=(
        "speed-up over bp to the workload's frozen target (table7, table8): LU's over DDP's, which is "
        "t_DDP / t_LU, per model, within [0.75, 1.33] by log-rank tests at the band's edges"
    ),
    settle="3 runs per cell of table7 / table8 on several devices (`run table7 --runs 3 --devices 3`)",
    parts=(ABOUT,),
    version="6 (2026-11-28)",
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
def lu_speedup_about_ddp(evidence: Evidence) -> Measured:
    if unset := unset_targets(evidence, TABLES):
        return Measured(unmeasurable=unset)
    cells = time_cells(evidence, ABOUT, TABLES, Row("ddp"), Row("async_lu"), "tta_target_s")
    if not cells:
        return no_runs("table7/table8 with bp, async_lu and ddp", "run table7")
    per_run = gather(evidence, TABLES)
    unmeasurable = ""
    if gpus(per_run) < 2:
        unmeasurable = (
            "needs several GPUs: these runs' devices are processes on one machine's CPU cores (or one GPU), "
            "whose speed-up over bp measures core sharing, not the paper's devices"
        )
    return Measured(tuple(cells), described(evidence, per_run), unmeasurable=unmeasurable)
