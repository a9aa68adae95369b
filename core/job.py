"""A job: one training (or measurement) run, a cell of a table for one seed. Built once, frozen."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .config import ADDED_SETTINGS, CHANGED_WHERE, NoConfig, TrainConfig, flatten, floats_as_floats, keyed

Setting = int | float | bool | str  # a typed hyperparameter value


# Each method's own settings (the fields of its Config) at their defaults, method -> key -> default;
# filled by `methods.register_method`. A row's identity leaves out a method setting at its default
# and includes every one that differs (`Row`, `Row.extended`).
METHOD_SETTINGS: dict[str, dict[str, Setting]] = {}


# A method's settings whose default depends on the job's process count (a Config field declared
# None): method -> devices -> key -> the value used (a method's `device_defaults`).
DEVICE_DEFAULTS: dict[str, Callable[[int], dict[str, Setting]]] = {}


def declare_method_settings(
    method: str, config_cls: type, device_defaults: Callable[[int], dict[str, Setting]] | None = None
) -> None:
    """Record `method`'s own settings and their defaults (its Config's fields), and the defaults it
    resolves from the process count."""
    METHOD_SETTINGS[method] = {f.name: f.default for f in dataclasses.fields(config_cls)}
    if device_defaults is not None:
        DEVICE_DEFAULTS[method] = device_defaults


def method_defaults(method: str, values: Mapping[str, object]) -> dict[str, Setting]:
    """A method's own settings' defaults for a job or run with these values (a config's fields, or
    a run's params): each default that depends on the process count resolved for its `devices`, so
    a run that logged the value its devices gave it is at its default."""
    defaults = METHOD_SETTINGS.get(method, {})
    devices = logged_or_added(values, "devices")
    if method not in DEVICE_DEFAULTS or devices is None:
        return defaults
    return {**defaults, **DEVICE_DEFAULTS[method](int(devices))}


@dataclass(frozen=True)
class Row:
    """A row of a table: a method and the typed settings that make it a row of its own.

    The identity of every run: a job's row is its table row's settings plus every setting of the
    method's own that differs from its default (`Row.extended`, by build_job), and a stored run's
    is found the same way from its params (`run_row`). A method setting at its default is no part
    of a row (`Row.of("async_lu", backward_threads=2)` is `Row("async_lu")`). Its name is derived,
    never declared: `lapsgd[reading=authors_code]`, `lapsgd[workers_per_device=4,batch_size=128]`.
    """

    method: str
    settings: tuple[tuple[str, Setting], ...] = ()

    def __post_init__(self) -> None:
        defaults = METHOD_SETTINGS.get(self.method, {})
        own = tuple((k, v) for k, v in self.settings if not (k in defaults and same_value(v, defaults[k])))
        object.__setattr__(self, "settings", own)

    @classmethod
    def of(cls, method: str, **settings: Setting) -> Row:
        """`Row.of("lapsgd", workers_per_device=4, batch_size=128)`."""
        return cls(method, tuple(settings.items()))

    @property
    def name(self) -> str:
        """The settings as text, `reading=authors_code,grad_delay=1` ("" for a method's plain row)."""
        return ",".join(f"{key}={format_setting(value)}" for key, value in self.settings)

    @property
    def label(self) -> str:
        """The row as a report names it: `lapsgd[reading=authors_code]`, or the method alone."""
        return f"{self.method}[{self.name}]" if self.settings else self.method

    def matches(self, method: str, params: Mapping[str, object]) -> bool:
        """Whether a run of `method` with these logged `params` (MLflow's strings, or typed values)
        holds this row's settings: the same method, and every setting of the row equal to the param
        (a setting added after the run was logged reads as its default)."""
        return method == self.method and all(
            setting_equals(value, logged_or_added(params, key)) for key, value in self.settings
        )

    def extended(self, values: Mapping[str, object]) -> Row:
        """This row plus each of its method's own settings that `values` (a config's fields, or a
        run's params) hold at other than the default and the row does not set."""
        declared = {key for key, _ in self.settings}
        extra = []
        for key, default in method_defaults(self.method, values).items():
            logged = logged_or_added(values, key)
            if key in declared or logged is None or default is None or setting_equals(default, logged):
                continue
            extra.append((key, typed_like(default, logged)))
        # A shared setting that changed for some jobs (core.config.changed_where): where the run is
        # one of them and ran the earlier way, its row says so (with the setting that made it one).
        for key, (default, (where, value)) in CHANGED_WHERE.items():
            logged = logged_or_added(values, key)
            if key in declared or not setting_equals(value, logged_or_added(values, where)):
                continue
            if logged is not None and not setting_equals(default, logged):
                if where not in declared:
                    extra.append((where, value))
                extra.append((key, typed_like(default, logged)))
        return Row(self.method, self.settings + tuple(extra)) if extra else self


def base_row(rows: Sequence[Row], method: str, params: Mapping[str, object]) -> Row | None:
    """The most specific of `rows` whose settings these params hold (the first of the most
    settings); None if they hold none's."""
    matching = [row for row in rows if row.matches(method, params)]
    return max(matching, key=lambda row: len(row.settings), default=None)


def run_row(rows: Sequence[Row], method: str, params: Mapping[str, object]) -> Row | None:
    """The identity of a stored run among a table's `rows`: its `base_row`, extended by the method
    settings it changed (`Row.extended`); None if it holds no row's. So runs of two readings of one
    method are two rows, never one."""
    base = base_row(rows, method, params)
    return None if base is None else base.extended(params)


def same_value(a: object, b: object) -> bool:
    """Two typed settings equal (floats to 1e-9)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=1e-9)
    return a == b and type(a) is type(b)


def format_setting(value: Setting) -> str:
    """A setting as a row's name shows it: `true`, `4`, `0.0005`, `authors_code` (a float in 6
    digits where that is exact, else in full: two settings never share a name)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def typed_like(default: Setting, logged: object) -> Setting:
    """A logged param (MLflow keeps strings) as a value of the type of `default`."""
    if isinstance(logged, type(default)) and not (isinstance(default, int) and isinstance(logged, bool)):
        return logged
    if isinstance(default, bool):
        return str(logged).lower() in ("true", "1")
    if isinstance(default, int):
        return int(float(logged))
    return type(default)(logged)


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
    # The settings that make the job's row (core.job.Row: its table row's, then the method settings
    # that differ from their defaults), derived by build_job; reports find a run's row from its params.
    row_settings: tuple[tuple[str, Setting], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", floats_as_floats(self.config))
        object.__setattr__(self, "method_config", floats_as_floats(self.method_config))

    @property
    def row(self) -> Row:
        """The job's row: `Row(method, row_settings)`, named `lapsgd[reading=authors_code]`."""
        return Row(self.method, self.row_settings)

    @property
    def synthetic_data(self) -> bool:
        """Smoke runs use synthetic data in the dataset's shape: seconds per run, no files needed."""
        return self.synthetic or self.profile == "smoke" or self.dataset == "synthetic"

    def params(self) -> dict[str, object]:
        """Every hyperparameter, flattened: the MLflow params."""
        return dict(self._params)

    @functools.cached_property  # flattening walks every field of both configs
    def _params(self) -> dict[str, object]:
        return {**flatten(self.config, self.method_config), "devices": self.devices}

    def holds(self, settings: Mapping[str, object]) -> bool:
        """Whether the job's method (`method`) and params hold every one of these values, as a
        claim reads its rows from the runs' columns (`{"method": "ddp", "devices": 3}`)."""
        values = {"method": self.method, **self._params}
        return all(setting_equals(value, values.get(key)) for key, value in settings.items())

    def keyed_params(self) -> dict[str, object]:
        """The params that make the job key: `params` less the added settings at their default."""
        return {**keyed(self.config, self.method_config), "devices": self.devices}

    @functools.cached_property  # a Job never changes; the planner and run read its key often
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
            self.row.name,
        ]
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """The job's row as a table names it: `lapsgd`, or `lapsgd[reading=authors_code]`."""
        return self.row.label

    @property
    def name(self) -> str:
        """A readable name for logs and progress bars (the workload, the method, the profile, the run)."""
        return f"{self.dataset}-{self.model}-{self.label}-{self.profile}-run{self.run_index}"

    @property
    def run_name(self) -> str:
        """The MLflow run's name, method first (the experiment is the table; dataset and profile are tags)."""
        return f"{self.label} · {self.model} · run{self.run_index}"
