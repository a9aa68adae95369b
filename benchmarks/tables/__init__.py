"""Table specs: one module per table or figure of the paper, registered by id.

A spec lists the jobs of a profile (models x methods x runs) and carries the paper's numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.errors import UserError, did_you_mean
from methods import METHODS


@dataclass
class TableSpec:
    """A paper table or figure: its jobs per profile, the paper's numbers, and what it needs."""

    id: str
    title: str
    jobs: Callable[..., list]  # (profile, runs: int | None) -> the jobs whose methods exist
    methods: tuple[str, ...] = ()  # training methods it needs (empty: a measurement)
    paper: dict = field(default_factory=dict)  # the paper's values, keyed by cell
    targets: dict = field(default_factory=dict)  # profile -> model -> accuracy for time-to-target
    source: str = ""  # where in the paper the numbers come from
    # What `report` computes: tta | best | accuracy | speedup | timing | curves | hyperparameters.
    kind: str = "tta"
    reading: str = ""  # where the paper is ambiguous: which reading this spec implements, and why

    @property
    def missing_methods(self) -> list[str]:
        """Methods the table needs that no module has registered yet."""
        return [m for m in self.methods if m not in METHODS]


TABLES: dict[str, TableSpec] = {}


def register_table(spec: TableSpec) -> TableSpec:
    """Add `spec` to the registry."""
    TABLES[spec.id] = spec
    return spec


def get_table(table_id: str, methods: list[str] | None = None) -> TableSpec:
    """The spec registered as `table_id`; exit 2 if unknown or if the asked methods are not all there.

    With `methods`, a table whose other methods are missing can run the rows that exist.
    """
    if table_id not in TABLES:
        raise did_you_mean("table", table_id, TABLES)
    spec = TABLES[table_id]
    missing = [m for m in spec.missing_methods if methods is None or m in methods]
    if missing:
        present = [m for m in spec.methods if m in METHODS]
        hint = f"; run the rows that exist with --methods {','.join(present)}" if present else ""
        raise UserError(f"{table_id} waits for methods not implemented yet: {', '.join(missing)}{hint}")
    return spec


from . import (  # noqa: E402, F401, I001  (register)
    fig2, fig3, fig4, table1, table2, table3, table4, table5, table6, table7, table8, table9, table10,
)  # fmt: skip
