"""000 §3.4 (004's Mechanism 2): staleness per parameter tensor against its depth, LU against BU.

A figure of the runs of `pd-threads` (its 1:2 cells, 004's setting): each async run logs the
staleness of every parameter tensor per epoch as a table artifact (`staleness.json`); this plots
the last epoch's against the tensor's depth, with the line of τ_m = βT·m/M that 000 derives.
"""

from __future__ import annotations

from . import pd_threads
from .common.spec import Cell, register_table

STALENESS_ROWS = {pd_threads.ratio_row(method, 1, 2) for method in pd_threads.METHODS}  # 004's 1:2


def cells(profile: str) -> list[Cell]:
    """pd-threads' 1:2 cells (004's setting)."""
    return [cell for cell in pd_threads.cells(profile) if cell.row in STALENESS_ROWS]


SPEC = register_table(
    id="pd-staleness",
    title="Staleness per parameter tensor against depth, Async LU vs BU, with 000 §3.4's τ = βT(M-1)/2",
    cells=cells,
    experiment="pd-threads",
    kind="staleness",
    reading=(
        "Staleness of a tensor: updates it received between a pass's forward read and that pass's own "
        "update of it (mean over the last epoch's passes). Runs: pd-threads' 1:2 cells (`async_lu`, "
        "`async_bu`)."
    ),
    source="000 §3.4 (τ_m = βT·m/M; τ = βT(M-1)/2), 004 Mechanism 2",
)
