"""Runs and learning curves from MLflow as pandas frames, and the time-to-accuracy arithmetic.

Time to accuracy is read off the curves (docs/design.md): the training clock (`train_time_s`) at the
end of the first epoch whose test accuracy reaches the target, and the number of epochs to it.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from core.config import CHANGED_WHERE
from core.job import METHOD_SETTINGS, Row, Setting, logged_or_added, typed_like
from core.metric import ACCURACY, ENGINE, Metric, stored_names

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


def load_runs(uri: str, experiment: str) -> pd.DataFrame:
    """Every run of `experiment` (one row each, newest first), the one way a store is read: its tags
    and final metrics as columns by their own names (a method's diagnostics logged under ENGINE,
    core/metric.py, by theirs), `start_time` and `end_time`, and its params as logged (strings) in
    the column `params`, one dict a run. Superseded runs (a collision, a lost create, a reclaimed
    job) are left out."""
    in_memory = memory_store(uri)
    stored = in_memory.runs(experiment) if in_memory is not None else mlflow_runs(uri, experiment)
    if not stored:
        return pd.DataFrame()
    frame = pd.DataFrame([run_columns(run) for run in stored])
    if "superseded" in frame:
        frame = frame[frame["superseded"].isna()].reset_index(drop=True)
    if "closed_by" in frame:  # an end that landed after another process closed the run as stale
        late = (frame["status"] == "finished") & frame["closed_by"].notna()
        frame = frame[~late].reset_index(drop=True)
    if "run_index" in frame:  # training runs (perf results have none)
        frame["run_index"] = pd.to_numeric(frame["run_index"], errors="coerce").astype("Int64")
    if "method" in frame:  # until `with_rows` names each run's row from its params
        frame["label"] = frame["method"]
    return frame


def run_columns(run: StoredRun) -> dict:
    """A stored run as one row of `load_runs`: its metrics (a plain name before its ENGINE twin),
    then its tags (our `status`, not MLflow's), its clock and its params."""
    metrics = {
        name.removeprefix(ENGINE): value for name, value in run.metrics.items() if name.startswith(ENGINE)
    }
    metrics.update((name, value) for name, value in run.metrics.items() if not name.startswith(ENGINE))
    return {
        "run_id": run.run_id,
        "start_time": run.start_time,
        "end_time": run.end_time,
        **metrics,
        **run.tags,
        "params": run.params,
    }


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
    identities = [spec.run_row(m, p) for m, p in zip(runs["method"], logged, strict=True)]
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
    return pd.DataFrame(
        {
            "epoch": np.array(steps, dtype=np.int64),
            **{
                k: np.array([h.get(s, np.nan) for s in steps], dtype=np.float64) for k, h in histories.items()
            },
        }
    )


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
