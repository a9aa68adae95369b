"""The table registry: `@register_table(id=..., ...)` on a table module's `jobs` function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import UserError
from core.job import Job
from core.registry import Registry
from methods import METHODS

# A paper value: (mean, std), std None where the paper gives a single value.
PaperValue = tuple[float | str, float | None]  # a verdict (002's "Quality/Perf.") is a str
JobsFunction = Callable[..., list[Job]]  # (profile, runs: int | None, devices: int | None) -> jobs


@dataclass(frozen=True)
class TableSpec:
    """A paper table or figure: its jobs per profile, the paper's numbers, and what it needs."""

    id: str
    title: str
    jobs: JobsFunction
    methods: tuple[str, ...] = ()  # the methods (or measurements) its jobs run
    # The paper's values, keyed by cell ((model, method), or model for Table 9, or (dataset, model)
    # for Table 10), each a dict of named fields (reports/tables.py names the fields per kind).
    paper: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)  # profile -> model -> accuracy for time-to-target
    source: str = ""  # where in the paper the numbers come from
    # What `report` renders: tta | best | accuracy | speedup | timing | curves | throughput | final |
    # hyperparameters.
    kind: str = "tta"
    metrics: tuple[str, ...] = ()  # throughput: the per-epoch metrics shown, each as its mean over epochs
    reading: str = ""  # where the paper is ambiguous: which reading this spec implements, and why
    # A table computed without runs (Table 10): profile -> cell -> our named values.
    computed: Callable[[str], dict] | None = None

    @property
    def missing_methods(self) -> list[str]:
        """Methods the table needs that no module has registered yet."""
        return [m for m in self.methods if m not in METHODS]


TABLES: Registry[TableSpec] = Registry("table")


def single_values(**values: float | str) -> dict[str, PaperValue]:
    """A paper cell whose values come without a std (one run, or none reported)."""
    return {name: (value, None) for name, value in values.items()}


def register_table(**spec) -> Callable[[JobsFunction], JobsFunction]:
    """Decorator on a table module's `jobs(profile, runs=None, devices=None)`: register a TableSpec
    of the given fields (docs/design.md shows one)."""

    def wrap(jobs: JobsFunction) -> JobsFunction:
        TABLES.add(spec["id"], TableSpec(jobs=jobs, **spec))
        return jobs

    return wrap


def get_table(table_id: str, methods: list[str] | None = None) -> TableSpec:
    """The spec registered as `table_id`; exit 2 if unknown or if the asked methods are not all there.

    With `methods`, a table whose other methods are missing can run the rows that exist.
    """
    spec = TABLES.lookup(table_id)
    missing = [m for m in spec.missing_methods if methods is None or m in methods]
    if missing:
        present = [m for m in spec.methods if m in METHODS]
        hint = f"; run the rows that exist with --methods {','.join(present)}" if present else ""
        raise UserError(f"{table_id} waits for methods not implemented yet: {', '.join(missing)}{hint}")
    return spec
