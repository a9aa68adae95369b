"""Beyond the papers (pd-transformer): on a Transformer, LU is less stale than BU, and LU's staleness
grows with a block's distance from the output, where every backward pass starts."""

from __future__ import annotations

from core.job import Row

from ..kinds.language_model import depth_slope, staleness_per_block
from ..kinds.staleness import staleness_per_tensor
from ._common import (
    EXTENSION,
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

TABLES = ("pd-transformer",)
BELOW = Part(
    "BU - LU staleness (updates)",
    above(0.1, "'less stale': at least a tenth of an update per tensor", "updates"),
    paper=0.5,  # no paper: the calibration's 'true' store assumes the ResNets' size measured here
    noise=0.2,
)
FARTHER = Part(
    "LU staleness per block from the output (slope)",
    above(
        0.01,
        "'grows': at least 0.01 updates per block (a staleness gap of 0.06 across the 6 blocks)",
        "updates/block",
    ),
    paper=0.05,  # no paper: the calibration's 'true' store assumes 0.05 updates per block
    noise=0.02,
)


@register_claim(
    id="gpt-lu-staleness-below-bu-grows-with-depth",
    source="beyond the papers: the suite's pd-transformer (000's LU vs BU staleness, on a GPT)",
    paper_version=EXTENSION,
    statement=(
        "Beyond the papers: on a byte-level GPT, layer-wise updates are less stale than block updates, "
        "and under LU a block's staleness grows with its distance from the output (a backward pass, "
        "which starts at the output, reaches such blocks later)."
    ),
    paper="none: the suite's own hypothesis (000 §3.4 compares LU with BU; it says nothing per block of LU)",
    decided_by=(
        "pd-transformer's last-epoch staleness: BU - LU mean staleness paired by run index, and per LU run "
        "the least-squares slope of block staleness against blocks from the output"
    ),
    settle="3 runs per cell: `run pd-transformer --runs 3`",
    parts=(BELOW, FARTHER),
    version="4 (2026-11-26)",
    plan=Plan((Need("pd-transformer", ("async_lu", "async_bu")),)),
)
def gpt_lu_staleness(evidence: Evidence) -> Measured:
    cells = paired_cells(evidence, BELOW, TABLES, Row("async_bu"), Row("async_lu"), "staleness", difference)
    per_run = gather(evidence, TABLES)
    if not per_run.empty:
        lu = per_run[per_run["method"] == "async_lu"]
        slopes = (
            depth_slope(staleness_per_block(staleness_per_tensor(evidence.uri, lu))) if not lu.empty else None
        )
        if slopes is not None and not slopes.empty:
            slopes = slopes.sort_values("run_index")
            cells.append(Cell(FARTHER.name, "pd-transformer gpt async_lu", tuple(slopes["depth_slope"]),
                              tuple(lu["run_id"]), evidence.planned_runs))  # fmt: skip
    if not cells:
        return no_runs("pd-transformer with async runs", "run pd-transformer")
    return Measured(tuple(cells), described(evidence, per_run))
