"""The per-run table the claims read: one row per planned run, failed and diverged runs kept, times
to the workload's frozen target censored where a run never reached it."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd

from core.result import Hardware

from ..values import training_per_run

TIME_COLUMNS = ("tta_target_s", "tta_best_s")
PAPERS_RULE = ("worst_best", "tta_worst_s", "epochs_worst")
# The runs' tags and final metrics a per-run row carries (`measured_runs`).
TAGS = (
    "status",
    "hardware",
    "stop_reason",
    "start_time",
    "contended",
    "staleness_mean",
    "update_delay_s_mean",
    "update_delay_s_sum",
)


def measured_runs(uri: str, spec, profile: str, runs: pd.DataFrame) -> pd.DataFrame:
    """`Evidence.per_run` of these runs (see there): times to the workload's frozen target."""
    if runs.empty:
        return pd.DataFrame()
    # Its text as Python strings, its columns of one dtype in one block: the claims select rows of
    # it thousands of times in calibrate-claims --path, and a selection takes from every block
    # (each column of pandas' Arrow-backed text is a block of its own).
    with text_as_objects():
        per_run = with_values(uri, spec, profile, runs)
    # 000's "lowest best of the runs" (the reports' column) moves with the runs scored: no claim reads it.
    per_run = per_run.drop(columns=[c for c in PAPERS_RULE if c in per_run])
    return with_censored_times(per_run).copy()  # a copy is consolidated


@contextlib.contextmanager
def text_as_objects() -> Iterator[None]:
    """Frames built inside take text as Python strings (object dtype) where pandas offers it: 3.x's
    `future.infer_string`, deprecated for 4.0, whose text stays Arrow-backed (slower, same values)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The 'future.infer_string' option is deprecated")
        try:
            pd.get_option("future.infer_string")
        except (KeyError, pd.errors.OptionError):  # a pandas without the option
            yield
            return
        with pd.option_context("future.infer_string", False):
            yield


def with_values(uri: str, spec, profile: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: the values of its curve (`training_per_run`), its status and tags; the runs that
    failed before their first evaluation kept without values."""
    targets = spec.target_values(profile)
    settings = spec.setting_keys
    per_run = training_per_run(uri, runs, targets, spec.metrics, settings, spec.metric, spec.model_metrics)
    measured = set(per_run["run_id"]) if not per_run.empty else set()
    # Runs that failed before their first evaluation: kept, with no values (a cell counts them).
    identity = ["model", "method", "label", "row_order", *settings, "run_index", "run_id"]
    unmeasured = runs.loc[~runs["run_id"].isin(measured), [c for c in identity if c in runs]]
    blank = [
        {
            **r,
            "row_order": float(r.get("row_order", -1)),
            "run_index": int(r["run_index"]),
            "_curve": pd.DataFrame(columns=["epoch", "test_acc", "train_time_s"]),
        }
        for r in unmeasured.to_dict("records")
    ]
    per_run = pd.concat([per_run, pd.DataFrame(blank)], ignore_index=True) if blank else per_run
    # Every run of per_run is one of `runs`: their tags, row by row (a tag no run has: `default`).
    wanted = [c for c in runs if c in TAGS]
    extra = (
        runs[["run_id", "params", *wanted]]
        .drop_duplicates("run_id")
        .set_index("run_id")
        .reindex(per_run["run_id"])
    )

    def tag(name: str, default=None) -> list:
        return extra[name].tolist() if name in extra else [default] * len(per_run)

    per_run["status"] = tag("status", "finished")
    per_run["hardware"] = tag("hardware")
    machines = [
        Hardware.from_params(params) if isinstance(params, dict) else None for params in extra["params"]
    ]
    per_run["gpus"] = [m.gpus if m else math.nan for m in machines]
    per_run["cores"] = [m.cores if m else math.nan for m in machines]
    per_run["stop_reason"] = tag("stop_reason", "")
    per_run["start_time"] = tag("start_time")
    per_run["contended"] = [isinstance(c, (bool, np.bool_)) and bool(c) for c in tag("contended", False)]
    per_run["staleness"] = tag("staleness_mean", math.nan)
    per_run["update_delay_s"] = tag("update_delay_s_mean", math.nan)
    per_run["update_delay_sum_s"] = tag("update_delay_s_sum", math.nan)
    late = [late_gain(c) for c in per_run["_curve"]]
    per_run["epochs"] = [len(c) for c in per_run["_curve"]]
    per_run["late_gain"] = [g for g, _ in late]
    per_run["late_epochs"] = [k for _, k in late]
    return per_run


def with_censored_times(per_run: pd.DataFrame) -> pd.DataFrame:
    """Each time to a target a run never reached, censored (flagged in `<column>_censored`: it is
    known only to need longer; censored.TimeCell compares such times): a finished run's at its own
    last training time (its budget ran out first), a diverged or failed run's at infinity: it never
    reaches the target (AlgoPerf's rule). A run that reached a target and then diverged or failed
    keeps its time: it reached it. The target is the workload's frozen one (common/targets.py),
    never taken from these runs."""
    # Whole columns from arrays: this runs for every look at every store of calibrate-claims --path.
    ends = np.array([float(c["train_time_s"].max()) if len(c) else math.nan for c in per_run["_curve"]])
    ended = (per_run["status"] != "finished").to_numpy()
    for column in TIME_COLUMNS:
        values = per_run[column].to_numpy(dtype=float) if column in per_run else np.full(len(per_run), np.nan)
        missed = np.isnan(values)
        per_run[f"{column}_censored"] = missed & (ended | ~np.isnan(ends))
        per_run[column] = np.where(missed, np.where(ended, math.inf, ends), values)
    return per_run


def late_gain(curve: pd.DataFrame) -> tuple[float, int]:
    """(how much the best test accuracy rose over the last quarter of the epochs, how many epochs
    that is: at least one); (0, 0) for a single epoch."""
    if "test_acc" not in curve:
        return 0.0, 0
    accuracy = curve["test_acc"].to_numpy(dtype=float)
    best = np.maximum.accumulate(accuracy[~np.isnan(accuracy)])  # the best so far at each evaluation
    if len(best) < 2:
        return 0.0, 0
    k = max(1, round(len(best) / 4))
    return float(best[-1] - best[-1 - k]), k
