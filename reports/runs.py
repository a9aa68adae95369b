"""Runs and learning curves from MLflow as pandas frames, and the time-to-accuracy arithmetic.

Time to accuracy is read off the curves (docs/design.md): the training clock (`train_time_s`) at the
end of the first epoch whose test accuracy reaches the target, and the number of epochs to it.
"""

from __future__ import annotations

import math

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from core.metric import ACCURACY, ENGINE, Metric, stored_names

CELL = ["profile", "model", "label", "run_index"]  # one run of one cell of a table
CURVE = ("test_acc", "test_loss", "train_time_s", "train_loss", "train_acc")  # every curve's metrics


def load_runs(uri: str, experiment: str) -> pd.DataFrame:
    """Every run of `experiment` (one row each, newest first) with its tags and final metrics."""
    mlflow.set_tracking_uri(uri)
    if MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment) is None:
        return pd.DataFrame()
    frame = mlflow.search_runs(experiment_names=[experiment], order_by=["attributes.start_time DESC"])
    if frame.empty:
        return frame
    # A method's diagnostics are logged under ENGINE (core/metric.py): read under their own names.
    for column in [c for c in frame.columns if c.startswith(f"metrics.{ENGINE}")]:
        plain = "metrics." + column.removeprefix(f"metrics.{ENGINE}")  # a run may have logged it plain
        frame[plain] = frame[column] if plain not in frame else frame[plain].fillna(frame[column])
        frame = frame.drop(columns=column)
    tags = {c: c.removeprefix("tags.") for c in frame.columns if c.startswith("tags.")}
    # Our tags (status: finished | diverged | failed | interrupted) replace MLflow's own columns.
    frame = frame.drop(columns=[c for c in tags.values() if c in frame.columns]).rename(columns=tags)
    if "run_index" in frame:  # training runs (perf results have none)
        frame["run_index"] = pd.to_numeric(frame["run_index"], errors="coerce").astype("Int64")
    if "method" in frame:
        # A run's label names its row in a report: the method, and its row's name where it has one
        # (a table's `U=4,B=128`, LAP-SGD as its authors' code runs it), as the runner tagged it. A
        # display name only: which row of a table a run is of is decided by its params (`with_rows`).
        named = frame["row_name"].fillna("") if "row_name" in frame else pd.Series("", index=frame.index)
        frame["label"] = frame["method"].where(named == "", frame["method"] + "[" + named + "]")
    return frame


def with_rows(runs: pd.DataFrame, spec) -> pd.DataFrame:
    """The runs that are of one of the spec's rows, with `row` (its index in `spec.rows`) and one
    typed column per setting that defines a row (`forward_threads`, `straggler_delay_frac`, ...).

    A run is of a row when it ran the row's method with the row's settings, read from its params.
    """
    if runs.empty:
        return runs
    params = [c for c in runs.columns if c.startswith("params.")]
    logged = runs[params].rename(columns=lambda c: c.removeprefix("params.")).to_dict("records")
    rows = [spec.row_of(method, p) for method, p in zip(runs["method"], logged, strict=True)]
    runs = runs.assign(row=rows)
    runs = runs[runs["row"] >= 0].copy()
    for key in dict.fromkeys(k for row in spec.rows for k, _ in row.settings):
        runs[key] = [dict(spec.rows[i].settings).get(key) for i in runs["row"]]
    return runs


def latest_per_cell(runs: pd.DataFrame, status: str | None = "finished") -> pd.DataFrame:
    """The newest run of each cell (profile, model, method, run index), optionally of one status."""
    if runs.empty:
        return runs
    chosen = runs if status is None else runs[runs["status"] == status]
    return chosen.drop_duplicates(subset=CELL, keep="first")  # runs are sorted newest first


def curve(uri: str, run_id: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """A run's per-epoch curve: epoch, test_acc, test_loss, train_time_s, train_loss, train_acc and
    the `extra` metrics (metric histories)."""
    client = MlflowClient(tracking_uri=uri)
    columns = {}
    for key in dict.fromkeys((*CURVE, *extra)):
        history = []
        for name in stored_names(key) if key not in CURVE else (key,):
            history = history or client.get_metric_history(run_id, name)
        columns[key] = pd.Series({m.step: m.value for m in history}, dtype="float64")
    frame = pd.DataFrame(columns).sort_index()
    frame.index.name = "epoch"
    return frame.reset_index()


def time_to_target(run_curve: pd.DataFrame, target: float, metric: Metric = ACCURACY) -> tuple[float, float]:
    """(training seconds, epochs) until the workload's metric (test accuracy) first reaches
    `target`, in its direction; NaN if never."""
    if math.isnan(target) or metric.name not in run_curve:
        return math.nan, math.nan
    values = run_curve[metric.name]
    reached = run_curve[[metric.reached(v, target) for v in values]]
    if reached.empty:
        return math.nan, math.nan
    first = reached.iloc[0]
    return float(first["train_time_s"]), float(first["epoch"] + 1)


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
