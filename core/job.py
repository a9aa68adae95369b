"""A job: one training (or measurement) run, a cell of a table for one seed. Built once, frozen."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .config import ADDED_SETTINGS, NoConfig, TrainConfig, flatten, keyed

Setting = int | float | bool | str  # a typed hyperparameter value


@dataclass(frozen=True)
class Row:
    """A row of a table: a method, and the typed settings that make it a row of its own.

    Where one method fills several rows (002's cells, 004's thread ratios) each row has a `name`
    (`U=4,B=128`, shown in the report and logged as the run's tag `cell`) and the `settings` that
    define it (`workers_per_device=4, batch_size=128`), as config field names and typed values. A
    run belongs to the row whose method it ran with those settings: reports find a run's row by
    its logged params (`matches`), never by reading a label.
    """

    method: str
    name: str = ""
    settings: tuple[tuple[str, Setting], ...] = ()

    @classmethod
    def of(cls, method: str, name: str = "", **settings: Setting) -> Row:
        """`Row.of("lapsgd", "U=4,B=128", workers_per_device=4, batch_size=128)`."""
        return cls(method, name, tuple(settings.items()))

    @property
    def label(self) -> str:
        """The row as a report names it: `lapsgd[U=4,B=128]`, or the method alone."""
        return f"{self.method}[{self.name}]" if self.name else self.method

    def matches(self, method: str, params: Mapping[str, object]) -> bool:
        """Whether a run of `method` with these logged `params` (MLflow's strings, or typed values)
        belongs to this row: the same method, and every setting of the row equal to the param (a
        setting added after the run was logged reads as its default)."""
        return method == self.method and all(
            setting_equals(value, logged_or_added(params, key)) for key, value in self.settings
        )


def logged_or_added(params: Mapping[str, object], key: str) -> object:
    """The logged param `key`, or an added setting's default where the run has none (absent, or
    NaN in a table of runs where other runs have it)."""
    logged = params.get(key)
    if logged is None or (isinstance(logged, float) and math.isnan(logged)):
        return ADDED_SETTINGS.get(key)
    return logged


def setting_equals(value: Setting, logged: object) -> bool:
    """A typed setting against a logged param (MLflow stores params as strings): equal as `value`'s type."""
    if logged is None or (isinstance(logged, float) and math.isnan(logged)):
        return False
    if isinstance(value, bool):
        return str(logged) == str(value)
    try:
        if isinstance(value, int):
            return int(float(logged)) == value and float(logged) == value
        if isinstance(value, float):
            return math.isclose(float(logged), value, rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False
    return str(logged) == value


@dataclass(frozen=True)
class Job:
    """What to run: the workload, the method, its hyperparameters, the seed and the processes.

    Build jobs with `benchmarks.engine.build.build_job`, which validates every part; a Job is never
    changed afterwards (`dataclasses.replace` makes a new one).
    """

    table: str
    dataset: str
    model: str
    method: str
    profile: str
    config: TrainConfig
    method_config: object = field(default_factory=NoConfig)
    seed: int = 0
    run_index: int = 0
    devices: int = 1
    synthetic: bool = False  # random inputs in the dataset's shape (timing, where pixels don't matter)
    # The name of the job's row, "" for a method's plain row: the table's where one method fills
    # several (Row.name: 002's "U=4,B=128"), after the name the method's config gives its row
    # (LAP-SGD's `authors_code` reading), comma-joined (build_job). Runs carry it as the tag
    # `row_name`; reports name their rows `method[row_name]`.
    row_name: str = ""

    @property
    def synthetic_data(self) -> bool:
        """Smoke runs use synthetic data in the dataset's shape: seconds per run, no files needed."""
        return self.synthetic or self.profile == "smoke" or self.dataset == "synthetic"

    def params(self) -> dict[str, object]:
        """Every hyperparameter, flattened: the MLflow params."""
        return {**flatten(self.config, self.method_config), "devices": self.devices}

    def keyed_params(self) -> dict[str, object]:
        """The params that make the job key: `params` less the added settings at their default."""
        return {**keyed(self.config, self.method_config), "devices": self.devices}

    @property
    def key(self) -> str:
        """Hash of (table, dataset, model, method, profile, seed, hyperparameters): resume by it."""
        ident = [
            self.table,
            self.dataset,
            self.model,
            self.method,
            self.profile,
            self.seed,
            self.keyed_params(),
            self.row_name,
        ]
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """The method as a table row names it: `lapsgd`, or `lapsgd[authors_code]` for a named row."""
        return f"{self.method}[{self.row_name}]" if self.row_name else self.method

    @property
    def name(self) -> str:
        """A readable name for logs and progress bars (the workload, the method, the profile, the run)."""
        return f"{self.dataset}-{self.model}-{self.label}-{self.profile}-run{self.run_index}"

    @property
    def run_name(self) -> str:
        """The MLflow run's name, method first (the experiment is the table; dataset and profile are tags)."""
        return f"{self.label} · {self.model} · run{self.run_index}"
