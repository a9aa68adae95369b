"""Figure 4: learning curves of Async LU vs Async BU on IMDb with the 2-layer LSTM."""

from __future__ import annotations

from . import TableSpec, register_table
from .table6 import METHODS, jobs

SPEC = register_table(
    TableSpec(
        id="fig4",
        title="IMDb learning curves, Async LU vs Async BU (2-layer LSTM)",
        jobs=jobs,  # Table 6's runs: running either resumes the other
        methods=METHODS,
        kind="curves",
        source="000 Figure 4 (curves only; no numbers to set beside)",
    )
)
