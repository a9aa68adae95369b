"""The table registry: `register_table(id=..., cells=..., ...)` in a table's module.

A spec is data: its rows (`core.job.Row`: a method and the typed settings that make it a row), per
profile its cells (`Cell`: dataset, model, row, runs, and what the table sets for them: epochs,
shared settings, processes, a base config, synthetic inputs) and the MLflow experiment its runs
are in. The jobs are derived from those in one place (`TableSpec.jobs`, `cell_job`): a table
writes no code to make its jobs. Reports read the same fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from core.config import CHANGED_WHERE, TrainConfig
from core.errors import UserError
from core.job import Job, Row, Setting, base_row, run_row
from core.metric import ACCURACY, Metric
from core.registry import Registry
from methods import METHODS

from ...engine.build import build_job
from ...profiles import hyperparameters
from .targets import Target
from .tuning import Tuning

# A paper value: (mean, std), std None where the paper gives a single value.
PaperValue = tuple[float | str, float | None]  # a verdict (002's "Quality/Perf.") is a str
PROFILES = ("paper", "quick", "smoke")  # the profiles a spec's cells are declared for
BASE_BATCH = 128  # the batch the profile's lr is for (002's α0)


@dataclass(frozen=True)
class Cell:
    """What a table expects at one profile: `runs` runs (indexes 0..runs-1) of `row` on (dataset,
    model), and what the table sets for them beyond the profile (none of it is the row's identity)."""

    dataset: str
    model: str
    row: Row
    runs: int
    epochs: int | None = None  # max_epochs where the table trains other than the profile's
    # Shared settings the table gives these runs (a cosine compressed to its epochs, a time budget).
    settings: tuple[tuple[str, Setting], ...] = ()
    # Processes: None for the method's own at the profile (`devices_for`); `run --devices N`
    # replaces it for every multi-device method.
    devices: int | None = None
    # With devices None: the async methods on several processes too (Tables 5, 7, 8 and pd-pipeline
    # compare multi-device runs), and at least `min_devices` for a multi-device method (averaging
    # needs two processes even at smoke).
    spread: bool = False
    min_devices: int = 1
    config: TrainConfig | None = None  # a base config instead of the profile's (Table 9's timing)
    synthetic: bool = False  # random inputs in the dataset's shape (timing, where pixels don't matter)
    # 002's linear scaling rule on the job's processes: lr = the profile's x batch / 128 x devices,
    # warmed up from the profile's (benchmarks/tables/common/lap002.py).
    scale_lr: bool = False


CellsFunction = Callable[[str], list[Cell]]  # profile -> the cells expected at it


def devices_for(method: str, profile: str, spread: bool = False) -> int:
    """A method's own processes at a profile (`cell_devices` decides a job's). The paper runs every
    multi-device method on 3 GPUs.

    On a 2-core CPU (quick) a method uses both cores its own way (`Method.parallel`): the async
    methods through their threads in one process, a method of processes as 2 processes of one core
    each; `spread` puts the async methods on 2 processes too (Tables 7-8 compare multi-device runs).
    Smoke keeps one process: seconds per run. Single-device methods (`bp`) stay on one.
    """
    if METHODS[method].max_devices == 1:
        return 1
    if profile == "paper":
        return 3
    if profile == "quick" and (spread or METHODS[method].parallel == "processes"):
        return 2
    return 1


@dataclass(frozen=True)
class TableSpec:
    """A paper table or figure: its rows and cells per profile, the paper's numbers, what it needs."""

    id: str
    title: str
    cells: CellsFunction = lambda profile: []
    # The MLflow experiment its runs are in: a view of another table's runs names that table.
    experiment: str = ""
    # The rows in the paper's order; default: one per method of the cells (or of `methods`).
    rows: tuple[Row, ...] = ()
    # The settings of the row each row is compared with, within its method and run index (004's
    # thread ratios against 1:1, straggler delays against none); the report kinds that compare read it.
    reference: dict = field(default_factory=dict)
    # The paper's values, keyed by cell ((model, Row) or (model, method), or model for Table 9, or
    # (dataset, model) for Table 10), each a dict of named fields (the report kinds name the fields).
    paper: dict = field(default_factory=dict)
    # profile -> model -> the workload's frozen target (common/targets.py): times to it are what
    # the time claims compare.
    targets: Mapping[str, Mapping[str, Target]] = field(default_factory=dict)
    # The declared search spaces of the methods it compares and their frozen choices (common/
    # tuning.py); None: no method is tuned, every one runs its defaults.
    tuning: Tuning | None = None
    metric: Metric = ACCURACY  # the workload's metric: its direction decides best and time-to-target
    # A model whose workload has another metric (a table over the ResNets and the GPT): model -> Metric.
    model_metrics: dict = field(default_factory=dict)
    source: str = ""  # where in the paper the numbers come from
    # What `report` renders: tta | best | accuracy | speedup | timing | curves | throughput | final |
    # hyperparameters.
    kind: str = "tta"
    methods: tuple[str, ...] = ()  # the methods (or measurements) its jobs run; default: its rows'

    metrics: tuple[str, ...] = ()  # throughput: the per-epoch metrics shown, each as its mean over epochs
    reading: str = ""  # where the paper is ambiguous: which reading this spec implements, and why
    # A table computed without runs (Table 10): profile -> cell -> our named values.
    computed: Callable[[str], dict] | None = None
    # Registered methods put into this table's workloads by a user (`run TABLE --methods X`), each a
    # row of its own after the table's (`with_methods`); none in a registered spec.
    guests: tuple[str, ...] = ()
    # rows_at's answers: a table's cells are a function of the profile, asked once per run read.
    _rows_at: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.experiment:
            object.__setattr__(self, "experiment", self.id)
        if not self.rows:
            declared = [c.row for p in PROFILES for c in self.cells(p)] or [Row(m) for m in self.methods]
            object.__setattr__(self, "rows", tuple(dict.fromkeys(declared)))
        if not self.methods:
            object.__setattr__(self, "methods", tuple(dict.fromkeys(r.method for r in self.rows)))

    def jobs(self, profile: str, runs: int | None = None, devices: int | None = None) -> list[Job]:
        """Every run of every cell at `profile` (`runs` per cell, default the cell's; `devices`:
        `run --devices N`), in the spec's experiment; rows whose method is not implemented are left out."""
        return [
            cell_job(self.experiment, cell, profile, run, devices)
            for cell in self.cells(profile)
            if cell.row.method in METHODS
            for run in range(runs or cell.runs)
        ]

    @property
    def setting_keys(self) -> tuple[str, ...]:
        """The settings that tell this table's rows apart, each a per-run column of its reports: those
        its rows declare, and a setting changed for some jobs beside the one that picks them
        (core.config.changed_where: `wire_model` where a row declares `straggler_kind`)."""
        declared = tuple(dict.fromkeys(k for row in self.rows for k, _ in row.settings))
        changed = tuple(key for key, (_, (where, _)) in CHANGED_WHERE.items() if where in declared)
        return declared + changed

    def target_values(self, profile: str) -> dict[str, float]:
        """model -> the value of its frozen target at `profile` (models without one left out)."""
        return {model: target.value for model, target in self.targets.get(profile, {}).items()}

    def workload(self, profile: str, model: str) -> tuple:
        """(dataset, model, profile, epochs, time budget) of the table's cells of `model` at `profile`:
        what one target is for (None where its cells differ in any of them)."""
        found = {
            (c.dataset, c.model, profile, c.epochs, dict(c.settings).get("time_budget_s"))
            for c in self.cells(profile)
            if c.model == model
        }
        return found.pop() if len(found) == 1 else None

    def metric_of(self, model: str) -> Metric:
        """The metric of the table's workload on `model`."""
        return self.model_metrics.get(model, self.metric)

    def run_row(
        self, method: str, params: Mapping[str, object], profile: str | None = None, model: str | None = None
    ) -> Row | None:
        """The row a stored run of `method` with these params is of here (core.job.run_row), or None:
        a row of its own where it extends one of this table's (`lapsgd[reading=authors_code]`), but
        not a row another table on the same experiment declares (a view shows only its own rows).
        The rows of the run's own profile and model are tried first: a smoke run at smoke's lr 0.05
        is smoke's `layup[devices=3]`, not the tuned quick row `layup[devices=3,lr=0.05]`."""
        row = run_row(self.rows_at(profile, model), method, params) if profile else None
        row = row or run_row(self.rows, method, params)
        if row is None or row in self.rows:
            return row
        siblings = (
            spec for spec in TABLES.values() if spec.experiment == self.experiment and spec is not self
        )
        return None if any(row in spec.rows for spec in siblings) else row

    def rows_at(self, profile: str, model: str | None = None) -> tuple[Row, ...]:
        """The rows of the cells at `profile` (of `model` where given), in order; none at a profile
        the spec does not declare; remembered."""
        key = (profile, model)
        if key not in self._rows_at:
            cells = self.cells(profile) if profile in PROFILES else []
            self._rows_at[key] = tuple(dict.fromkeys(c.row for c in cells if model in (None, c.model)))
        return self._rows_at[key]

    def row_index(self, row: Row) -> float:
        """The index in `rows` of `row`; for a row that extends a table row (core.job.run_row), the
        table row's index + 0.5, so it sorts right after it; -1 for neither."""
        if row in self.rows:
            return self.rows.index(row)
        base = base_row(self.rows, row.method, dict(row.settings))
        return -1 if base is None else self.rows.index(base) + 0.5

    def paper_of(self, model: str, row: Row) -> dict:
        """The paper's values of a row ({} if the paper has none): by its Row, else by its method."""
        return self.paper.get((model, row)) or self.paper.get((model, row.method)) or {}

    def with_methods(self, methods: Sequence[str]) -> TableSpec:
        """This table with each of `methods` that is not among its own a guest: a row of its own in
        every workload of its cells (`guest_cells`), after the table's rows; itself if none is new."""
        new = tuple(m for m in dict.fromkeys(methods) if m not in self.methods)
        if not new:
            return self
        for method in new:
            if METHODS.lookup(method).measures:
                raise UserError(f"{method} is a measurement a table runs, not a method to add to {self.id}")
        if self.measurement:
            raise UserError(
                f"--methods {','.join(new)}: {self.id} is a measurement, no training joins it; "
                f"the methods of {self.id}: {', '.join(self.methods)}"
            )
        own = self.cells

        def cells(profile: str) -> list[Cell]:
            base = own(profile)
            return base + [cell for method in new for cell in guest_cells(base, method)]

        rows = [c.row for p in PROFILES for c in cells(p) if c.row.method in new] or [Row(m) for m in new]
        return replace(
            self, cells=cells, rows=self.rows + tuple(dict.fromkeys(rows)), methods=self.methods + new,
            guests=self.guests + new,
        )  # fmt: skip

    def with_stored_methods(self, stored: Sequence[str]) -> TableSpec:
        """This table with the registered training methods among `stored` (the methods of its
        experiment's runs) that neither it nor a table sharing its experiment declares as guests:
        those a user put in with `run TABLE --methods X`, shown by its report."""
        declared = {m for spec in TABLES.values() if spec.experiment == self.experiment for m in spec.methods}
        guests = [m for m in stored if m in METHODS and m not in declared and not METHODS[m].measures]
        return self if self.measurement else self.with_methods(guests)

    @property
    def measurement(self) -> bool:
        """Whether every method it runs is a measurement (Table 9's timing): it takes no guest."""
        registered = [METHODS[m] for m in self.methods if m in METHODS]
        return bool(registered) and all(method.measures for method in registered)

    @property
    def missing_methods(self) -> list[str]:
        """Methods the table needs that no module has registered yet."""
        return [m for m in self.methods if m not in METHODS]


TABLES: Registry[TableSpec] = Registry("table")


def cell_devices(cell: Cell, profile: str, requested: int | None = None) -> int:
    """The processes of a cell's jobs, decided here alone: one for a single-device method, else
    `run --devices N`, else the cell's, else its method's own at the profile (spread where the cell
    says, and at least its `min_devices`)."""
    method = cell.row.method
    if METHODS[method].max_devices == 1:
        return 1
    if requested is not None:
        return requested
    if cell.devices is not None:
        return cell.devices
    return max(cell.min_devices, devices_for(method, profile, cell.spread))


def guest_cells(cells: list[Cell], method: str) -> list[Cell]:
    """A guest method's cells among a table's: per workload (dataset, model), a copy of the first
    cell there of a multi-device method (else the first cell) whose row is the method at its
    defaults, on that cell's processes where the table's rows name them (`devices`, Table 002's and
    LayUp's equal-device comparisons), else on the method's own at the profile (`devices_for`)."""

    def multi_device(cell: Cell) -> bool:
        return cell.row.method in METHODS and METHODS[cell.row.method].max_devices != 1

    templates: dict[tuple[str, str], Cell] = {}
    for cell in cells:
        key = (cell.dataset, cell.model)
        if key not in templates or (multi_device(cell) and not multi_device(templates[key])):
            templates[key] = cell
    guests = []
    for template in templates.values():
        named = dict(template.row.settings).get("devices")
        if named is not None and METHODS[method].max_devices != 1:
            guests.append(replace(template, row=Row.of(method, devices=named)))
        else:
            guests.append(replace(template, row=Row(method), devices=None))
    return guests


def six_digits(value: float) -> float:
    """`value` to 6 significant digits: the values computed settings have always had (job keys hash them)."""
    return float(f"{value:g}")


def linear_scaling(cell: Cell, profile: str, devices: int) -> dict[str, float]:
    """002's linear scaling rule: the profile's lr x the row's batch / 128 x the processes, warmed
    up from the profile's lr."""
    base = hyperparameters(cell.dataset, cell.model, profile)
    batch = dict(cell.row.settings).get("batch_size", BASE_BATCH)
    return {"warmup_lr": base.lr, "lr": six_digits(base.lr * batch / BASE_BATCH * devices)}


def cell_job(table: str, cell: Cell, profile: str, run: int, requested: int | None = None) -> Job:
    """Run `run` of a cell (seed = run index) in experiment `table`: the row's method with the
    cell's settings, then the row's typed settings, on `cell_devices` processes."""
    devices = cell_devices(cell, profile, requested)
    settings = {**dict(cell.settings), **(linear_scaling(cell, profile, devices) if cell.scale_lr else {})}
    return build_job(
        table,
        cell.dataset,
        cell.model,
        cell.row.method,
        profile,
        seed=run,
        run_index=run,
        devices=devices,
        # A row's `devices` (002's Q) is the job's process count (`cell.devices`), not a config field.
        settings={**settings, **{k: v for k, v in cell.row.settings if k != "devices"}},
        row=cell.row,
        epochs=cell.epochs,
        config=cell.config,
        synthetic=cell.synthetic,
    )


def single_values(**values: float | str) -> dict[str, PaperValue]:
    """A paper cell whose values come without a std (one run, or none reported)."""
    return {name: (value, None) for name, value in values.items()}


def register_table(**spec) -> TableSpec:
    """Register a TableSpec of the given fields (docs/design.md shows one); returns it."""
    return TABLES.add(spec["id"], TableSpec(**spec))


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
