"""000 Table 5: on ImageNet, Async LU on 3 devices reaches bp's accuracy about 3x faster."""

from __future__ import annotations

import math

from core.job import Row

from ._common import (
    PAPER_000,
    SAME_ACCURACY_POINTS,
    SAME_ACCURACY_WHY,
    Evidence,
    Measured,
    Need,
    Plan,
    described,
    paired_cells,
    points,
    register_claim,
)
from .censored import time_cells, unset_targets
from .stats import Part, within

THREE_X = Part(
    "t_bp / t_LU to the frozen target: about 3x",
    within(math.log(2.25), math.log(4.0), "'about 3x': 3x within a factor of 4/3 either way", "x"),
    paper=math.log(403.77 / 134.24),
    noise=0.1,
    times=True,
)
SAME = Part(
    "LU - bp best accuracy: the same",
    within(
        -SAME_ACCURACY_POINTS,
        SAME_ACCURACY_POINTS,
        f"'reaches bp's accuracy' (73.42 vs 73.40): {SAME_ACCURACY_WHY}",
        "points",
    ),
    paper=73.42 - 73.40,
    noise=0.3,
)


@register_claim(
    id="imagenet-same-accuracy-3x-faster",
    source="000 Table 5",
    paper_version=PAPER_000,
    statement="On ImageNet-1k, Async LU on 3 devices reaches bp's accuracy about 3x faster.",
    paper="ResNet-50: LU 73.42 % in 134.24 ks vs bp 73.40 % in 403.77 ks (3.0x)",
    decided_by=(
        "table5 runs on real ImageNet: best accuracies paired by run index, equivalent within 1.5 points; "
        "t_bp / t_LU to the workload's frozen target in [2.25x, 4x], by log-rank tests at the band's edges"
    ),
    settle="ImageNet-1k on disk and 3 GPUs: `run table5 --profile paper`",
    parts=(THREE_X, SAME),
    version="6 (2026-11-28)",
    undecidable={
        "paper": (
            "the frozen 73 % target lies 0.4 points under the paper's bests (73.42, 73.40 %), so a "
            "run's time to it comes late and varies: 70 % 'reproduced' at the paper's effect by 10 "
            "runs a cell (spreads assumed: no ImageNet runs stored); stores left open would need "
            "about 5-15 runs a cell (calibrate-claims --path, 2026-11-28)"
        ),
    },
    plan=Plan((Need("table5"),)),
    needs_hardware="ImageNet-1k on disk and 3 GPUs",
    needs_gpus=3,
)
def imagenet_claim(evidence: Evidence) -> Measured:
    runs = evidence.runs("table5")
    sources = (
        runs["params"].map(lambda params: params.get("data_source", "synthetic")) if not runs.empty else []
    )
    real = runs[sources != "synthetic"] if not runs.empty else runs
    if real.empty or evidence.profile == "smoke":
        return Measured(
            unmeasurable="needs ImageNet-1k on disk (no table5 run on real ImageNet here) and GPUs"
        )
    per_run = evidence.per_run("table5")
    real_ids = set(real["run_id"])
    tables = ("table5",)
    if unset := unset_targets(evidence, tables):
        return Measured(unmeasurable=unset)
    cells = [
        *time_cells(evidence, THREE_X, tables, Row("bp"), Row("async_lu"), "tta_target_s"),
        *paired_cells(evidence, SAME, tables, Row("async_lu"), Row("bp"), "best_acc", points),
    ]
    synthetic = set(per_run["run_id"]) - real_ids
    if synthetic:
        return Measured(unmeasurable=f"{len(synthetic)} of table5's planned runs trained on synthetic data")
    return Measured(tuple(cells), described(evidence, per_run))
