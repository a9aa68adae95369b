"""Figure 4: learning curves of Async LU vs Async BU on IMDb with the 2-layer LSTM."""

from __future__ import annotations

from . import table6
from .common.spec import register_table

SPEC = register_table(
    id="fig4",
    title="IMDb learning curves, Async LU vs Async BU (2-layer LSTM)",
    cells=table6.CELLS,
    experiment="table6",
    kind="curves",
    source="000 Figure 4 (curves only; no numbers to set beside)",
)
