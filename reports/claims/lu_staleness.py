"""000 §3.4: layer-wise updates are less stale than block updates; BU's staleness grows with depth."""

from __future__ import annotations

import math

from core.job import Row

from ._common import (
    ACCURACY_TABLES,
    FULL,
    PAPER_000,
    REDUCED,
    TTA_TABLES,
    Evidence,
    Measured,
    Need,
    Plan,
    described,
    difference,
    gather,
    no_runs,
    paired_cells,
    register_claim,
)
from .stats import Cell, Part, above

LU_BU = ("async_lu", "async_bu")
BELOW = Part(
    "BU - LU staleness (updates)",
    above(0.1, "'less stale': at least a tenth of an update per tensor, below which the counts differ by "
          "thread scheduling alone", "updates"),
    paper=0.5,  # §3.4 states no size: the calibration's 'paper' store is the size measured here (+0.45-0.66)
    noise=0.2,
    cells=5,
)  # fmt: skip
DEEPER = Part(
    "BU's τ per backward pass, ResNet-50 / ResNet-18",
    above(math.log(1.25), "§3.4: τ = βT(M-1)/2 grows with the layers M beyond the backward time βT; "
          "normalised by each model's backward time (Table 9) it must grow at least 1.25x from 18 to 50 "
          "layers (§3.4's formula says 49/17 = 2.9x), so a longer backward pass alone cannot pass it", "x"),
    paper=math.log(49 / 17),
    noise=0.1,
    cells=2,
)  # fmt: skip


def backward_s(evidence: Evidence) -> dict[str, float]:
    """Each model's backward time per batch: the mean over the planned table9 runs of this profile."""
    runs = evidence.runs("table9")
    if runs.empty or "backward_s" not in runs:
        return {}
    return {m: float(g["backward_s"].mean()) for m, g in runs.groupby("model")}


def depth_cells(evidence: Evidence) -> list[Cell]:
    """Per table, log((τ_R50 / bwd_R50) / (τ_R18 / bwd_R18)) of BU's runs paired by run index, τ
    the delay summed over the tensors per pass (§3.4's τ = Σ_m τ_m; a run logged before that sum
    was, 2026-11-26, gives no value)."""
    per_run = gather(evidence, TTA_TABLES)
    bwd = backward_s(evidence)
    if per_run.empty or not {"resnet18", "resnet50"} <= set(bwd):
        return []
    bu = per_run[per_run["method"] == "async_bu"]
    cells = []
    for table, group in bu.groupby("table"):
        r18 = group[group["model"] == "resnet18"][["run_index", "update_delay_sum_s", "run_id"]]
        r50 = group[group["model"] == "resnet50"][["run_index", "update_delay_sum_s", "run_id"]]
        joined = r50.merge(r18, on="run_index", suffixes=("_50", "_18")).sort_values("run_index")
        if joined.empty:
            continue
        values = tuple(
            math.log((d50 / bwd["resnet50"]) / (d18 / bwd["resnet18"])) if d50 > 0 and d18 > 0 else math.nan
            for d50, d18 in zip(joined["update_delay_sum_s_50"], joined["update_delay_sum_s_18"], strict=True)
        )
        tau50, tau18 = (joined[f"update_delay_sum_s_{m}"].mean() * 1e3 for m in (50, 18))
        note = (
            f"τ summed over tensors R50 {tau50:.0f} ms, R18 {tau18:.0f} ms; "
            f"backward R50 {bwd['resnet50'] * 1e3:.0f} ms, R18 {bwd['resnet18'] * 1e3:.0f} ms"
        )
        runs = tuple(joined["run_id_50"]) + tuple(joined["run_id_18"])
        cells.append(Cell(DEEPER.name, f"{table} async_bu", values, runs, evidence.planned_runs, note=note))
    return cells


@register_claim(
    id="lu-staleness-below-bu-grows-with-depth",
    source="000 §3.4",
    paper_version=PAPER_000,
    statement="Layer-wise updates are less stale than block updates; BU's staleness τ grows with depth.",
    paper=(
        "§3.4: LU's expected staleness is below BU's; BU's delay τ = βT(M-1)/2 from a gradient's "
        "computation to its update grows with the number of layers M and the backward time βT"
    ),
    decided_by=(
        "the runs' last epoch: BU - LU `staleness_mean` (updates a tensor received since the forward "
        "read it) "
        "per table and model, paired by run index; and BU's `update_delay_s_sum` (§3.4's τ = Σ_m τ_m, the "
        "delay summed over the tensors per pass) over the "
        "model's backward time (table9), ResNet-50 over ResNet-18, paired by run index (table1, table3)"
    ),
    settle="3 runs per cell of table1 (LU and BU on ResNet-18, BU on ResNet-50) and table9",
    parts=(BELOW, DEEPER),
    version="4 (2026-11-26)",
    # At smoke and quick: LU and BU on CIFAR-10 ResNet-18 (below), BU on ResNet-50 and Table 9 (depth).
    plan=Plan(
        (
            Need("table1", LU_BU, ("resnet18",), REDUCED),
            Need("table1", ("async_bu",), ("resnet50",), REDUCED),
            Need("table9"),
            Need("table1", LU_BU, profiles=FULL),
            Need("table3", LU_BU, profiles=FULL),
            Need("table6", LU_BU, profiles=FULL),
        )
    ),
)
def lu_staleness(evidence: Evidence) -> Measured:
    cells = [
        *paired_cells(
            evidence, BELOW, ACCURACY_TABLES, Row("async_bu"), Row("async_lu"), "staleness", difference
        ),
        *depth_cells(evidence),
    ]
    if not cells:
        return no_runs("table1/table3/table6 with async runs", "run fig3 (both ResNets) and table9")
    per_run = gather(evidence, ACCURACY_TABLES)
    missing = "" if backward_s(evidence) else "no table9 runs to normalise τ by (run table9)"
    return Measured(tuple(cells), described(evidence, per_run, missing))
