"""Per-run values computed from the learning curves (best, times and epochs to targets, final
values, peak memory), and their summaries per row, in the spec's order: what every report kind and
the claims compute from."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from core.metric import ACCURACY, Metric

from .runs import CURVE, curve_arrays, first_reached, mean_std, time_to_target

FINAL_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "train_time_s")
# Every training run's peak memory (core/runtime/memory.py): a column of every report of runs.
MEMORY = "mem_peak_gib"


def run_values(c: Mapping[str, np.ndarray], metric: Metric, target: float, metrics: tuple[str, ...]) -> dict:
    """One run's values from its curve's arrays (`curve_arrays`): its best, times and epochs to it
    and to `target`, the final values, the mean of each of `metrics` and the peak memory."""
    seconds, epochs = c["train_time_s"], c["epoch"]
    # A curve without the metric has no best and reaches no target.
    values = c[metric.name] if metric.name in c else np.full(len(epochs), np.nan)
    best = nan_reduce(values, np.max if metric.direction == "max" else np.min)
    best_s, best_epochs = first_reached(values, seconds, epochs, best, metric)
    at_best = np.flatnonzero(epochs + 1 == best_epochs)
    target_s, target_epochs = first_reached(values, seconds, epochs, target, metric)
    return dict(
        best=best,
        best_acc=best if metric == ACCURACY else nan_reduce(c["test_acc"], np.max),
        train_acc_best=float(c["train_acc"][at_best[0]]) if len(at_best) else math.nan,
        tta_best_s=best_s,
        epochs_best=best_epochs,
        target=target,
        tta_target_s=target_s,
        epochs_target=target_epochs,
        # After the last epoch (002's tables report the end of training).
        **{f"final_{m}": float(c[m][-1]) for m in FINAL_METRICS},
        **{m: nan_reduce(c[m], np.mean) for m in metrics},
        **{MEMORY: nan_reduce(c[MEMORY], np.max)},  # the job's highest epoch peak
    )


def nan_reduce(values: np.ndarray, reduce: Callable) -> float:
    """`reduce` of the defined values as a float (NaN where none is), as pandas' max and mean skip NaN."""
    defined = values[~np.isnan(values)]
    return float(reduce(defined)) if len(defined) else math.nan


def training_per_run(
    uri: str,
    finished: pd.DataFrame,
    targets: dict,
    metrics: tuple[str, ...] = (),
    setting_keys: tuple[str, ...] = (),
    metric: Metric = ACCURACY,
    model_metrics: Mapping[str, Metric] | None = None,
) -> pd.DataFrame:
    """Per run: the best value of the workload's `metric` (`best`; `best_acc`: the best test
    accuracy, the same for the paper's classifiers), time/epochs to it, to the fixed target, and
    to the worst method's best; and the mean over its epochs of each of `metrics` and of `mfu`
    (per-epoch metrics the run logged)."""
    rows = []
    # The typed columns of the settings that define the spec's rows (`with_rows` adds them).
    settings = [c for c in finished.columns if c in setting_keys]
    metrics = (*metrics, *(["mfu"] if "mfu" not in metrics else []))  # every training run logs it
    default_metric, metric_of = metric, dict(model_metrics or {})
    # Only the columns a run's values need (iterrows built a Series per run of every column).
    identities = ("model", "method", "label", "row_order", "run_index", "run_id", *settings)
    for run in finished[[c for c in identities if c in finished]].to_dict("records"):
        metric = metric_of.get(run["model"], default_metric)
        logged = (*metrics, MEMORY, *([metric.name] if metric.name not in CURVE else []))
        arrays = curve_arrays(uri, run["run_id"], logged)
        if not len(arrays["epoch"]):
            continue
        values = run_values(arrays, metric, targets.get(run["model"], math.nan), metrics)
        if math.isnan(values["best"]):  # the metric never logged a value
            continue
        identity = dict(
            model=run["model"],
            method=run["method"],
            label=run["label"],
            row_order=float(run["row_order"]) if "row_order" in run else -1.0,
            **{key: run[key] for key in settings},
            run_index=int(run["run_index"]),
            run_id=run["run_id"],
        )
        rows.append({**identity, **values, "_curve": pd.DataFrame(arrays)})
    per_run = pd.DataFrame(rows)
    if per_run.empty:
        return per_run
    # The paper's rule (Tables 1, 3): the best accuracy reached by the worst method, per model.
    # Taken as the worst best value of any run of that model, so every run reaches it.
    models, best = per_run["model"].tolist(), per_run["best"].tolist()
    by_model = list(zip(best, models, strict=True))
    worst_of_model = {
        model: metric_of.get(model, default_metric).worst_of([b for b, m in by_model if m == model])
        for model in dict.fromkeys(models)
    }
    worst = [worst_of_model[m] for m in models]
    per_run["worst_best"] = worst
    tta = [
        time_to_target(c, w, metric_of.get(m, default_metric))
        for c, w, m in zip(per_run["_curve"], worst, models, strict=True)
    ]
    per_run["tta_worst_s"] = [t[0] for t in tta]
    per_run["epochs_worst"] = [t[1] for t in tta]
    return per_run


def summarise(per_run: pd.DataFrame, columns: list[str], keys=("model", "label")) -> pd.DataFrame:
    """mean, std and count of `columns` per row (model and label; the label lands in `method`)."""
    rows = []
    for key, group in per_run.groupby(list(keys), sort=False):
        row = {("method" if k == "label" else k): v for k, v in zip(keys, key, strict=True)}
        row["runs"] = len(group)
        if "label" in keys:
            row["_row"] = float(group["row_order"].iloc[0]) if "row_order" in group else -1.0
        for column in columns:
            mean, std, _ = mean_std(group[column])
            row[f"{column}_mean"], row[f"{column}_std"] = mean, std
        rows.append(row)
    return pd.DataFrame(rows)


def in_spec_order(summary: pd.DataFrame, spec) -> pd.DataFrame:
    """Rows by model (ResNet-18 first), then in the order of the spec's rows (the paper's), a
    method's named rows (`lapsgd[reading=authors_code]`) after its plain row."""
    if summary.empty:
        return summary
    if "method" not in summary:
        return summary.sort_values("model", kind="stable").reset_index(drop=True)
    rank = (
        summary["_row"].fillna(-1).astype(float)
        if "_row" in summary
        else pd.Series(-1.0, index=summary.index)
    )
    order = summary.assign(
        _rank=[r if r >= 0 else math.inf for r in rank],
        _label=[natural_key(m) for m in summary["method"]],
    ).sort_values(["model", "_rank", "_label"], kind="stable")
    return order.drop(columns=["_rank", "_label", "_row"], errors="ignore").reset_index(drop=True)


def natural_key(label: str) -> str:
    """A label sortable with its numbers in numeric order (`straggler_delay_frac=0.25` before
    `straggler_delay_frac=1`)."""
    return re.sub(r"\d+(\.\d+)?", lambda m: f"{float(m.group()):012.3f}", label)


def speedups(per_run: pd.DataFrame, reference: str = "bp") -> pd.DataFrame:
    """Tables 7-8: per model and run index, bp's time to a* over each method's, a* the model's lowest best."""
    rows = []
    for (model, run_index), group in per_run.groupby(["model", "run_index"]):
        ref = group[group["method"] == reference]
        if ref.empty:
            continue
        ref_s = float(ref["tta_worst_s"].iloc[0])
        for _, run in group[group["method"] != reference].iterrows():
            rows.append(
                dict(
                    model=model,
                    method=run["method"],
                    label=run["label"],
                    row_order=run["row_order"],
                    run_index=run_index,
                    speedup=ref_s / run["tta_worst_s"],
                )
            )
    return pd.DataFrame(rows)


def relative_to(
    per_run: pd.DataFrame,
    reference: dict,
    columns: dict[str, tuple[str, Callable]],
    same: tuple[str, ...] = ("devices",),
) -> pd.DataFrame:
    """`per_run` with, for each of `columns` (name -> (column, f(value, reference value))), the value
    compared with the run of the same model, method, run index and `same` settings (where logged)
    whose settings are `reference` (the spec's: `forward_threads=1, backward_threads=1`); NaN where
    there is none, or where two runs could be it (two rows never read as one)."""
    shared = [column for column in same if column in per_run]
    keys = [
        (
            row["model"],
            row["method"],
            row["run_index"],
            *(None if pd.isna(row[c]) else row[c] for c in shared),
        )
        for _, row in per_run.iterrows()
    ]
    is_ref = pd.Series(True, index=per_run.index)
    for key, value in reference.items():
        is_ref &= per_run[key] == value if key in per_run else False
    candidates = Counter(k for k, ref in zip(keys, is_ref, strict=True) if ref)
    base = {
        k: row
        for k, (_, row), ref in zip(keys, per_run.iterrows(), is_ref, strict=True)
        if ref and candidates[k] == 1
    }
    out = per_run.copy()
    for name, (column, compare) in columns.items():
        out[name] = [
            compare(row[column], base[k][column]) if k in base else math.nan
            for k, (_, row) in zip(keys, per_run.iterrows(), strict=True)
        ]
    return out
