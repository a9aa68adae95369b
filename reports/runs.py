"""Runs and learning curves from MLflow as pandas frames, and the time-to-accuracy arithmetic.

Time to accuracy is read off the curves (docs/design.md): the training clock (`train_time_s`) at the
end of the first epoch whose test accuracy reaches the target, and the number of epochs to it.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from core.config import CHANGED_WHERE
from core.job import METHOD_SETTINGS, Row, Setting, logged_or_added, typed_like
from core.metric import ACCURACY, ENGINE, Metric, stored_names
from core.result import Hardware, counts_as_finished

from .memory_store import StoredRun, memory_store

CELL = ["profile", "model", "label", "run_index"]  # one run of one cell of a table
SEARCH_PAGE = 10_000  # runs a page of MLflow's search (its most is 50,000)
CURVE = ("test_acc", "test_loss", "train_time_s", "train_loss", "train_acc")  # every curve's metrics


def table_artifact(uri: str, run_id: str, name: str) -> dict | None:
    """A run's JSON table artifact (MLflow's log_table: `columns` and `data` rows); None where the
    run has none (a method that logs no such table)."""
    if (in_memory := memory_store(uri)) is not None:
        return in_memory.table(run_id, name)
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = MlflowClient(tracking_uri=uri).download_artifacts(run_id, name, folder)
        except Exception:  # noqa: BLE001  (MLflow raises several kinds for a missing artifact)
            return None
        return json.loads(Path(path).read_text())


@dataclass(frozen=True)
class Run:
    """One stored run as every report, claim, planner and calibration reads it (`read_runs`): the
    suite's tags typed, its final metric values by their own names, its params as logged."""

    run_id: str
    start_time: pd.Timestamp
    end_time: pd.Timestamp | None
    status: str | None  # the suite's own (running, finished, diverged, failed, interrupted), not MLflow's
    method: str | None  # None: not a training job's run (a `perf` result)
    profile: str | None
    model: str | None
    run_index: int | None
    row_name: str  # its row's settings as its job named them at creation ("" for a method's plain row)
    stop_reason: str
    superseded: bool  # a collision, a lost create or a reclaimed job: no reader counts it
    contended: bool  # other processes used the machine during its timing (tag `contended`)
    hardware: Hardware | None
    values: dict[str, float]  # final metrics; a diagnostic logged under ENGINE by its plain name
    metrics: dict[str, float]  # final metrics by the names they were logged under
    tags: dict[str, str]
    params: dict[str, str]

    @classmethod
    def of(cls, stored: StoredRun) -> Run:
        """The typed record of a run as a store holds it."""
        tags = stored.tags
        values = {
            name.removeprefix(ENGINE): value
            for name, value in stored.metrics.items()
            if name.startswith(ENGINE)
        }
        values.update((name, value) for name, value in stored.metrics.items() if not name.startswith(ENGINE))
        index = tags.get("run_index")
        return cls(
            run_id=stored.run_id,
            start_time=stored.start_time,
            end_time=stored.end_time,
            status=tags.get("status"),
            method=tags.get("method"),
            profile=tags.get("profile"),
            model=tags.get("model"),
            run_index=int(index) if index is not None and index.lstrip("-").isdigit() else None,
            row_name=tags.get("row_name", ""),
            stop_reason=tags.get("stop_reason", ""),
            superseded="superseded" in tags,
            contended=tags.get("contended") == "true",
            hardware=Hardware.from_params(stored.params),
            values=values,
            metrics=stored.metrics,
            tags=stored.tags,
            params=stored.params,
        )

    @property
    def counts(self) -> bool:
        """Whether any reader counts it: not superseded, and no `finished` that landed after another
        process closed it as stale (`counts_as_finished`)."""
        late = self.status == "finished" and not counts_as_finished(self.tags)
        return not self.superseded and not late

    def columns(self) -> dict:
        """The run as one row of `load_runs`' frame: its final values, its tags (typed where the
        record types them), its clock and its params (one dict)."""
        return {
            "run_id": self.run_id,
            "start_time": self.start_time,
            "end_time": self.end_time,
            **self.values,
            **self.tags,
            "run_index": self.run_index,
            "contended": self.contended,
            "params": self.params,
        }


def read_runs(uri: str, experiment: str, every: bool = False) -> list[Run]:
    """Every run of `experiment` that counts (`Run.counts`; `every`: all of them), newest first, from
    any store (SQLite, a server, the in-memory store): the one way a store is read."""
    in_memory = memory_store(uri)
    stored = in_memory.runs(experiment) if in_memory is not None else mlflow_runs(uri, experiment)
    return [run for run in map(Run.of, stored) if every or run.counts]


def load_runs(uri: str, experiment: str) -> pd.DataFrame:
    """`read_runs` as a frame, one row a run (`Run.columns`), for the tables drawn from it; `label`
    is the method until `with_rows` names each run's row from its params."""
    runs = read_runs(uri, experiment)
    if not runs:
        return pd.DataFrame()
    frame = pd.DataFrame([run.columns() for run in runs])
    if frame["run_index"].notna().any():  # training runs (perf results have none)
        frame["run_index"] = frame["run_index"].astype("Int64")
    else:
        frame = frame.drop(columns="run_index")
    if "method" in frame:
        frame["label"] = frame["method"]
    return frame


def mlflow_runs(uri: str, experiment: str) -> list[StoredRun]:
    """The active runs of an MLflow experiment, newest first (every page of the search)."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(
            [found.experiment_id],
            max_results=SEARCH_PAGE,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        runs += [
            StoredRun(
                run_id=run.info.run_id,
                start_time=pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
                end_time=None
                if run.info.end_time is None
                else pd.Timestamp(run.info.end_time, unit="ms", tz="UTC"),
                tags=dict(run.data.tags),
                params=dict(run.data.params),
                metrics=dict(run.data.metrics),
            )
            for run in page
        ]
        token = page.token
        if not token:
            return runs


def with_rows(runs: pd.DataFrame, spec) -> pd.DataFrame:
    """The runs of the spec's rows' settings, each with its own row (`spec.run_row`, from its
    params): `row` (the Row), `label` (its text, `lapsgd[reading=authors_code]`), `row_order` (the
    index in `spec.rows` of the table row it extends: order and paper values) and one typed column
    per setting of any row (`forward_threads`, `straggler_delay_frac`, ...), a setting a row leaves
    out at its method's default or, for a shared setting, at the run's logged value."""
    if runs.empty:
        return runs
    logged = runs["params"].tolist()
    identities = [
        spec.run_row(m, p, profile, model)
        for m, p, profile, model in zip(runs["method"], logged, runs["profile"], runs["model"], strict=True)
    ]
    keep = [identity is not None for identity in identities]
    runs = runs[keep].copy()
    identities = [i for i in identities if i is not None]
    logged = [p for p, k in zip(logged, keep, strict=True) if k]
    runs["row"] = identities
    runs["label"] = [identity.label for identity in identities]
    runs["row_order"] = [spec.row_index(identity) for identity in identities]
    prototypes = {k: v for row in [*spec.rows, *identities] for k, v in row.settings}
    for key in spec.setting_keys:  # a setting changed for some jobs: a column beside its rows' settings
        if key not in prototypes:
            prototypes[key] = CHANGED_WHERE[key][0]
    for key, prototype in prototypes.items():
        runs[key] = [setting_of(i, key, prototype, p) for i, p in zip(identities, logged, strict=True)]
    return runs


def setting_of(identity: Row, key: str, prototype: Setting, params: dict) -> Setting | None:
    """A run's typed value of a setting: its row's, else its method's default, else its param."""
    settings = dict(identity.settings)
    if key in settings:
        return settings[key]
    default = METHOD_SETTINGS.get(identity.method, {}).get(key)
    if default is not None:
        return default
    value = logged_or_added(params, key)
    return None if value is None else typed_like(prototype, value)


def latest_per_cell(runs: pd.DataFrame, status: str | None = "finished") -> pd.DataFrame:
    """The newest run of each cell (profile, model, method, run index), optionally of one status."""
    if runs.empty:
        return runs
    chosen = runs if status is None else runs[runs["status"] == status]
    return chosen.drop_duplicates(subset=CELL, keep="first")  # runs are sorted newest first


def curve(uri: str, run_id: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """A run's per-epoch curve: epoch, test_acc, test_loss, train_time_s, train_loss, train_acc and
    the `extra` metrics (metric histories)."""
    return pd.DataFrame(curve_arrays(uri, run_id, extra))


def curve_arrays(uri: str, run_id: str, extra: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """`curve`'s columns as arrays (epoch first), for code that reads every run's curve."""
    if (in_memory := memory_store(uri)) is not None:
        history_of = in_memory.history
    else:
        client = MlflowClient(tracking_uri=uri)

        def history_of(run_id: str, name: str) -> dict[int, float]:
            return {m.step: m.value for m in client.get_metric_history(run_id, name)}

    histories = {}
    for key in dict.fromkeys((*CURVE, *extra)):
        history = {}
        for name in stored_names(key) if key not in CURVE else (key,):
            history = history or history_of(run_id, name)
        histories[key] = history
    steps = sorted(set().union(*histories.values()))
    # Built from arrays in one go: a Series per metric aligned by pandas took most of a report's
    # (and calibrate-claims --path's) time on a store of many short runs.
    return {
        "epoch": np.array(steps, dtype=np.int64),
        **{k: np.array([h.get(s, np.nan) for s in steps], dtype=np.float64) for k, h in histories.items()},
    }


def time_to_target(run_curve: pd.DataFrame, target: float, metric: Metric = ACCURACY) -> tuple[float, float]:
    """(training seconds, epochs) until the workload's metric (test accuracy) first reaches
    `target`, in its direction; NaN if never."""
    if math.isnan(target) or metric.name not in run_curve:
        return math.nan, math.nan
    return first_reached(
        run_curve[metric.name].to_numpy(dtype=np.float64),
        run_curve["train_time_s"].to_numpy(dtype=np.float64),
        run_curve["epoch"].to_numpy(),
        target,
        metric,
    )


def first_reached(
    values: np.ndarray, seconds: np.ndarray, epochs: np.ndarray, target: float, metric: Metric
) -> tuple[float, float]:
    """`time_to_target` on a curve's arrays (the metric's values, the training clock, the epochs)."""
    if math.isnan(target):
        return math.nan, math.nan
    reached = metric.reached(values, target)  # NaN: never
    if not reached.any():
        return math.nan, math.nan
    first = int(reached.argmax())
    return float(seconds[first]), float(epochs[first] + 1)


def time_to_best(run_curve: pd.DataFrame, metric: Metric = ACCURACY) -> tuple[float, float, float]:
    """(the metric's best value, training seconds and epochs until it was first reached)."""
    best = metric.best_of(run_curve[metric.name]) if metric.name in run_curve else math.nan
    seconds, epochs = time_to_target(run_curve, best, metric)
    return best, seconds, epochs


def mean_std(values: pd.Series) -> tuple[float, float, int]:
    """(mean, sample standard deviation, count) of the defined values; std is NaN for one value."""
    values = values.dropna()
    return (
        float(values.mean()) if len(values) else math.nan,
        float(values.std(ddof=1)) if len(values) > 1 else math.nan,
        len(values),
    )
