"""`report TABLE`: a table's runs from MLflow, summarised with the paper's columns beside the paper's numbers.

Each spec's `kind` picks its renderer (RENDERERS): `tta` (Tables 1, 3: time and epochs to a fixed
target and to the worst method's best), `best` (Tables 2, 4, 6: best accuracy, time and epochs to
it), `accuracy` (Table 5: test and train accuracy, time to the best), `speedup` (Tables 7, 8: bp's
time over the method's, to the lowest best accuracy), `timing` (Table 9), `curves` (Figures 2-4:
PNG learning curves), `hyperparameters` (Table 10, no runs), and 004's `threads` (F:B ratios),
`stragglers` (delays against none), `headline` (PD-ASGD against LPP-SGD and DDP) and `staleness`
(per-tensor staleness against depth, from each run's `staleness.json`). The paper's values are read by
the named fields of each cell (`spec.paper[cell]["tta_s"]`), and land in `paper_<field>` columns.
Every report says which runs are missing or failed and renders what exists.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from .runs import base_method, curve, latest_per_cell, load_runs, mean_std, time_to_accuracy, time_to_best

PROFILE_ORDER = ("paper", "quick", "smoke")
STALENESS_CELL = "F=1,B=2"  # the staleness figure's runs where a table has several thread ratios: 004's


@dataclass
class Section:
    """One profile's part of a report: the summary, the per-run values, and what is missing."""

    profile: str
    summary: pd.DataFrame
    per_run: pd.DataFrame
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hardware: list[str] = field(default_factory=list)
    figure: Path | None = None
    uri: str = ""  # the store, for renderers that read the runs' artifacts


def experiment_of(spec) -> str:
    """The MLflow experiment a spec's runs are in (views of shared runs use the first table's)."""
    for profile in PROFILE_ORDER:
        jobs = spec.jobs(profile)
        if jobs:
            return jobs[0].table
    return spec.id


def fmt(mean: float, std: float = math.nan, digits: int = 3) -> str:
    """'mean ± std' ('mean' for one run, '–' for none)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = f"{mean:.{digits}g}" if abs(mean) < 10 else f"{mean:.1f}"
    if std is not None and not math.isnan(std):
        text += f" ± {std:.{digits}g}" if abs(std) < 10 else f" ± {std:.1f}"
    return text


def paper_fmt(value: tuple[float, float | None] | None) -> str:
    """A paper value: (mean, std) -> 'mean ± std' ('mean' where the paper gives no std)."""
    if value is None:
        return "–"
    mean, std = value
    if isinstance(mean, str):  # a verdict (002's "Quality/Perf.")
        return mean
    return f"{mean:g}" if std is None else f"{mean:g} ± {std:g}"


# --- per-run values ---------------------------------------------------------------------------
FINAL_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "train_time_s")


def training_per_run(
    uri: str, finished: pd.DataFrame, targets: dict, metrics: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Per run: best accuracy, time/epochs to it, to the fixed target, and to the worst method's best;
    and the mean over its epochs of each of `metrics` and of `mfu` (per-epoch metrics the run logged)."""
    rows = []
    metrics = (*metrics, *(["mfu"] if "mfu" not in metrics else []))  # every training run logs it
    for _, run in finished.iterrows():
        c = curve(uri, run["run_id"], metrics)
        if c.empty or c["test_acc"].isna().all():
            continue
        best, best_s, best_epochs = time_to_best(c)
        at_best = c[c["epoch"] + 1 == best_epochs]["train_acc"]
        target = targets.get(run["model"], math.nan)
        target_s, target_epochs = time_to_accuracy(c, target)
        rows.append(
            dict(
                model=run["model"],
                method=run["method"],
                run_index=int(run["run_index"]),
                run_id=run["run_id"],
                best_acc=best,
                train_acc_best=float(at_best.iloc[0]) if len(at_best) else math.nan,
                tta_best_s=best_s,
                epochs_best=best_epochs,
                target=target,
                tta_target_s=target_s,
                epochs_target=target_epochs,
                # After the last epoch (002's tables report the end of training).
                **{f"final_{m}": float(c[m].iloc[-1]) for m in FINAL_METRICS},
                **{m: float(c[m].mean()) for m in metrics},
                _curve=c,
            )
        )
    per_run = pd.DataFrame(rows)
    if per_run.empty:
        return per_run
    # The paper's rule (Tables 1, 3): the best accuracy reached by the worst method, per model.
    # Taken as the lowest best accuracy of any run of that model, so every run reaches it.
    worst = per_run.groupby("model")["best_acc"].transform("min")
    per_run["worst_best"] = worst
    tta = [time_to_accuracy(c, w) for c, w in zip(per_run["_curve"], worst, strict=True)]
    per_run["tta_worst_s"] = [t[0] for t in tta]
    per_run["epochs_worst"] = [t[1] for t in tta]
    return per_run


def summarise(per_run: pd.DataFrame, columns: list[str], keys=("model", "method")) -> pd.DataFrame:
    """mean, std and count of `columns` per (model, method)."""
    rows = []
    for key, group in per_run.groupby(list(keys), sort=False):
        row = dict(zip(keys, key, strict=True), runs=len(group))
        for column in columns:
            mean, std, _ = mean_std(group[column])
            row[f"{column}_mean"], row[f"{column}_std"] = mean, std
        rows.append(row)
    return pd.DataFrame(rows)


def in_spec_order(summary: pd.DataFrame, spec) -> pd.DataFrame:
    """Rows by model (ResNet-18 first) and then in the order of the spec's methods, as the paper's tables."""
    if summary.empty:
        return summary
    if "method" not in summary:
        return summary.sort_values("model", kind="stable").reset_index(drop=True)
    rank = {m: i for i, m in enumerate(spec.methods)}
    # A variant (`lapsgd[authors_code]`) follows its method; 002's cells keep the paper's row order.
    order = summary.assign(
        _rank=[rank.get(base_method(m), len(rank)) for m in summary["method"]],
        _cell=[paper_row_index(spec, m) for m in summary["method"]],
        _label=[natural_key(m) for m in summary["method"]],
    ).sort_values(["model", "_rank", "_cell", "_label"], kind="stable")
    return order.drop(columns=["_rank", "_cell", "_label"]).reset_index(drop=True)


def natural_key(label: str) -> str:
    """A label sortable with its numbers in numeric order (`delay=25%` before `delay=100%`)."""
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
                    model=model, method=run["method"], run_index=run_index, speedup=ref_s / run["tta_worst_s"]
                )
            )
    return pd.DataFrame(rows)


# --- renderers: one per table kind --------------------------------------------------------------
def render_tta(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Tables 1, 3: time and epochs to the fixed target and to the worst method's best."""
    targets = spec.targets.get(section.profile, {})
    summary = summarise(per_run, ["tta_target_s", "epochs_target", "tta_worst_s", "epochs_worst", "mfu"])
    reached = per_run.groupby(["model", "method"], sort=False)["tta_target_s"]
    counts = {key: (int(group.notna().sum()), len(group)) for key, group in reached}
    summary["target_reached"] = [
        "{} of {}".format(*counts[key]) for key in zip(summary["model"], summary["method"], strict=True)
    ]  # the means above are over the runs that reached the target
    summary["target"] = [targets.get(m, math.nan) for m in summary["model"]]
    summary["worst_best"] = [per_run[per_run["model"] == m]["worst_best"].iloc[0] for m in summary["model"]]
    add_paper(summary, spec, ("tta_s", "epochs"))
    section.notes.append(
        "Targets: fixed (the spec's, per profile) and the paper's rule, the best accuracy reached by the "
        "worst method (taken as the lowest best accuracy of any run of the model)."
    )
    return summary


def render_best(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Tables 2, 4, 6: best accuracy, time and epochs to it."""
    summary = summarise(per_run, ["best_acc", "tta_best_s", "epochs_best", "mfu"])
    add_paper(summary, spec, ("best_acc_pct", "tta_s", "epochs"))
    return summary


def render_accuracy(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Table 5: test and train accuracy at the best epoch, time to it."""
    summary = summarise(per_run, ["best_acc", "train_acc_best", "tta_best_s"])
    add_paper(summary, spec, ("test_acc_pct", "train_acc_pct", "tta_s"))
    return summary


def render_speedup(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Tables 7, 8: bp's time to a* over each method's."""
    ratios = speedups(per_run)
    if ratios.empty:
        return pd.DataFrame()
    summary = summarise(ratios, ["speedup"])
    add_paper(summary, spec, ("speedup",))
    return summary


def render_throughput(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Tables of how methods run: best accuracy and the spec's per-epoch metrics (mean over epochs)."""
    return summarise(per_run, ["best_acc", *spec.metrics])


def render_final(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """002's tables: train/test loss and accuracy after the last epoch, the training time, the
    spec's per-epoch metrics (means over epochs), and 002's numbers and verdict beside them."""
    summary = summarise(per_run, [f"final_{m}" for m in FINAL_METRICS] + list(spec.metrics))
    add_paper(
        summary, spec, ("train_loss", "train_acc_pct", "test_loss", "test_acc_pct", "time_s", "quality")
    )
    return summary


def render_curves(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Figures 2-4: the learning curves as a PNG, best accuracy and time to it as a table."""
    section.figure = draw_curves(spec, section.profile, per_run, out_dir)
    return summarise(per_run, ["best_acc", "tta_best_s"])


def cell_of(label: str) -> str:
    """The cell of a row label: `F=1,B=2` of `async_lu[F=1,B=2]`, "" for none."""
    return label.partition("[")[2].rstrip("]")


def relative_to(per_run: pd.DataFrame, reference_cell: str, columns: dict[str, Callable]) -> pd.DataFrame:
    """`per_run` with, for each of `columns` (name -> f(value, reference value)), the value compared
    with the same model's and method's run of `reference_cell` at the same run index (NaN without one)."""
    base = per_run["method"].map(base_method)
    keys = list(zip(per_run["model"], base, per_run["run_index"], strict=True))
    is_ref = per_run["method"].map(cell_of) == reference_cell
    reference = {k: row for k, (_, row), ref in zip(keys, per_run.iterrows(), is_ref, strict=True) if ref}
    out = per_run.copy()
    for name, (column, compare) in columns.items():
        out[name] = [
            compare(row[column], reference[k][column]) if k in reference else math.nan
            for k, (_, row) in zip(keys, per_run.iterrows(), strict=True)
        ]
    return out


def render_threads(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """004's thread ratios: samples/s (and against the method's F=1,B=1), MFU, staleness, accuracy."""
    per_run = relative_to(per_run, "F=1,B=1", {"speedup_vs_1to1": ("samples_per_s", lambda a, b: a / b)})
    section.figure = draw_threads(spec, section.profile, per_run, out_dir)
    summary = summarise(per_run, [*spec.metrics, "speedup_vs_1to1", "best_acc", "tta_target_s"])
    add_paper(summary, spec, ("setting",))
    wanted = [f"{m} {v:.0%}" for m, v in spec.targets.get(section.profile, {}).items()]
    section.notes.append(
        "speedup_vs_1to1: samples/s over the same method's F=1,B=1 run (000's bound for 1 forward and "
        f"B >= β backward threads is 1 + β). tta_target_s: time to {', '.join(wanted)}."
    )
    return summary


def render_stragglers(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """004's straggler delays: accuracy and its drop, time to the target and samples/s against no delay."""
    per_run = relative_to(
        per_run,
        "delay=0%",
        {
            "acc_drop_pts": ("best_acc", lambda a, ref: (ref - a) * 100),
            "tta_vs_no_delay": ("tta_target_s", lambda a, ref: a / ref),
            "rate_vs_no_delay": ("samples_per_s", lambda a, ref: a / ref),
        },
    )
    summary = summarise(
        per_run,
        ["best_acc", "acc_drop_pts", "tta_target_s", "tta_vs_no_delay", "samples_per_s", "rate_vs_no_delay"],
    )
    add_paper(summary, spec, ("max_drop_pts",))
    section.notes.append(
        "acc_drop_pts: the run without delay's best accuracy minus this run's, in points; "
        "tta_vs_no_delay and rate_vs_no_delay: this run's time to the target and samples/s over the "
        "run without delay's (same method, same run index)."
    )
    return summary


def render_headline(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """004's headline: time to the target per method, and how many times faster async_lu reached it."""
    lu = per_run[per_run["method"] == "async_lu"].set_index(["model", "run_index"])["tta_target_s"]
    per_run = per_run.assign(
        pd_asgd_speedup=[
            t / lu.get((m, i), math.nan)
            for m, i, t in zip(per_run["model"], per_run["run_index"], per_run["tta_target_s"], strict=True)
        ]
    )
    summary = summarise(per_run, ["best_acc", "tta_target_s", "epochs_target", "pd_asgd_speedup"])
    add_paper(summary, spec, ("speedup",))
    section.notes.append(
        "pd_asgd_speedup: this method's time to the target over async_lu's (same run index); "
        "004 reports 2.14 for LPP-SGD and 1.34 for DDP."
    )
    return summary


def staleness_per_tensor(uri: str, per_run: pd.DataFrame) -> pd.DataFrame:
    """The last epoch's per-tensor staleness of each run that logged it (the `staleness.json` table
    artifact of the async methods), with the tensor's relative depth (0 input, 1 output)."""
    client = MlflowClient(tracking_uri=uri)
    frames = []
    with tempfile.TemporaryDirectory() as tmp:
        for _, run in per_run.iterrows():
            try:
                path = client.download_artifacts(run["run_id"], "staleness.json", tmp)
            except Exception:  # noqa: BLE001  (a run of a method without the table)
                continue
            table = json.loads(Path(path).read_text())
            frame = pd.DataFrame(table["data"], columns=table["columns"])
            frame = frame[frame["epoch"] == frame["epoch"].max()].copy()
            frame["relative_depth"] = frame["depth"] / max(frame["depth"].max(), 1)
            frames.append(frame.assign(model=run["model"], method=run["method"], run_index=run["run_index"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def render_staleness(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """000 §3.4: staleness per parameter tensor against its depth, LU against BU, with the formula."""
    tensors = staleness_per_tensor(section.uri, per_run)
    if tensors.empty:
        section.notes.append("No run has the per-tensor staleness table (`staleness.json`).")
        return pd.DataFrame()
    tensors = tensors[tensors["method"].map(cell_of).isin(["", STALENESS_CELL])]
    section.figure = draw_staleness(spec, section.profile, tensors, out_dir)
    ends = tensors.groupby(["model", "method", "run_index"], sort=False)
    rows = []
    for (model, method, run_index), group in ends:
        group = group.sort_values("depth")
        rows.append(
            dict(
                model=model,
                method=method,
                run_index=run_index,
                tensors=len(group),
                staleness_input=float(group["staleness_mean"].iloc[0]),
                staleness_output=float(group["staleness_mean"].iloc[-1]),
                staleness_mean=float(group["staleness_mean"].mean()),
            )
        )
    columns = ["tensors", "staleness_input", "staleness_output", "staleness_mean"]
    summary = summarise(pd.DataFrame(rows), columns)
    section.notes.append(
        f"The last epoch of each run ({STALENESS_CELL} where the table has several ratios), staleness in "
        "updates of that tensor between the forward pass's read and the pass's own update. 000 §3.4: a "
        "block update waits βT·m/M longer than a layer-wise one at layer m of M (from the input), "
        "τ = βT(M-1)/2 summed over layers; with one pass finishing per forward time T that is β·m/M "
        "updates, drawn for β = 2 in the right panel against the measured BU - LU."
    )
    return summary


# Table kinds whose numbers come from the runs' learning curves.
CURVE_RENDERERS = {
    "tta": render_tta,
    "best": render_best,
    "accuracy": render_accuracy,
    "speedup": render_speedup,
    "curves": render_curves,
    "throughput": render_throughput,
    "final": render_final,
    "threads": render_threads,
    "stragglers": render_stragglers,
    "headline": render_headline,
    "staleness": render_staleness,
}


def paper_beta(cell: dict) -> float:
    """β = backward / forward of a Table 9 cell of the paper."""
    return cell["backward_s"][0] / cell["forward_s"][0]


def render_timing(section: Section, spec, finished: pd.DataFrame) -> None:
    """Table 9: forward, backward and β per model, beside the paper's."""
    if finished.empty:
        return
    per_run = finished[
        ["model", "run_index", "metrics.forward_s", "metrics.backward_s", "metrics.beta"]
    ].rename(columns=lambda c: c.removeprefix("metrics."))
    section.per_run = per_run
    summary = summarise(per_run, ["forward_s", "backward_s", "beta"], keys=("model",))
    paper = [spec.paper.get(m, {}) for m in summary["model"]]
    for column in ("forward_s", "backward_s"):
        summary[f"paper_{column}"] = [paper_fmt(cell.get(column)) for cell in paper]
    summary["paper_beta"] = [f"{paper_beta(cell):.2f}" if cell else "–" for cell in paper]
    section.summary = in_spec_order(summary, spec)


def render_hyperparameters(spec, profile: str | None) -> list[Section]:
    """Table 10: each workload's hyperparameters under a profile (`spec.computed`), the paper's beside."""
    sections = []
    for prof in [profile] if profile else ["paper", "quick"]:
        ours = spec.computed(prof)
        names = list(next(iter(spec.paper.values())))
        rows = []
        for name in names:
            row = {"hyperparameter": name}
            for (dataset, model), values in ours.items():
                paper = spec.paper[(dataset, model)][name]
                row[f"{dataset}/{model}"] = f"{values[name]:g} (paper {paper if paper is not None else '–'})"
            rows.append(row)
        sections.append(Section(prof, pd.DataFrame(rows), pd.DataFrame()))
    return sections


# --- sections ---------------------------------------------------------------------------------
def build_sections(spec, uri: str, out_dir: Path, profile: str | None = None) -> list[Section]:
    """One Section per profile that has runs of this table (or the asked profile)."""
    if spec.kind == "hyperparameters":
        return render_hyperparameters(spec, profile)
    runs = load_runs(uri, experiment_of(spec))
    if not runs.empty and spec.methods:
        runs = runs[runs["method"].map(base_method).isin(spec.methods)]
    profiles = (
        [profile] if profile else [p for p in PROFILE_ORDER if not runs.empty and p in set(runs["profile"])]
    )
    sections = []
    for prof in profiles:
        of_profile = runs[runs["profile"] == prof] if not runs.empty else runs
        finished = latest_per_cell(of_profile)
        section = Section(prof, pd.DataFrame(), pd.DataFrame(), uri=uri)
        section.missing = missing_cells(spec, prof, of_profile, finished)
        if not finished.empty:
            section.hardware = sorted(set(finished["hardware"].dropna()))
        if spec.kind == "timing":
            render_timing(section, spec, finished)
        else:
            per_run = training_per_run(uri, finished, spec.targets.get(prof, {}), spec.metrics)
            if not per_run.empty:
                section.per_run = per_run.drop(columns=["_curve"])
                summary = CURVE_RENDERERS[spec.kind](section, spec, per_run, out_dir)
                section.summary = in_spec_order(add_outcomes(summary, of_profile, finished), spec)
        sections.append(section)
    return sections


def add_outcomes(summary: pd.DataFrame, runs: pd.DataFrame, finished: pd.DataFrame) -> pd.DataFrame:
    """`diverged` and `failed` per row: cells (run indexes) of that model and method whose newest run
    ended so and which have no finished run. A diverged run is a finding: counted, not dropped (the
    means and the worst method's best are over the finished runs)."""
    if summary.empty or "method" not in summary:
        return summary
    cells = ["model", "method", "run_index"]
    done = set(finished[cells].itertuples(index=False, name=None)) if not finished.empty else set()
    newest = latest_per_cell(runs, status=None)
    ended = newest[[cell not in done for cell in newest[cells].itertuples(index=False, name=None)]]
    counts = ended.groupby(["model", "method", "status"]).size() if not ended.empty else pd.Series(dtype=int)

    def count(model: str, method: str, statuses: tuple[str, ...]) -> int:
        return int(sum(counts.get((model, method, status), 0) for status in statuses))

    present = set(zip(summary["model"], summary["method"], strict=True))
    only_ended = [
        k for k in dict.fromkeys(zip(ended["model"], ended["method"], strict=True)) if k not in present
    ]
    if only_ended:  # a method whose runs all diverged or failed still gets its row
        extra = pd.DataFrame([dict(model=m, method=me, runs=0) for m, me in only_ended])
        summary = pd.concat([summary, extra], ignore_index=True)
    keys = list(zip(summary["model"], summary["method"], strict=True))
    summary["diverged"] = [count(m, me, ("diverged",)) for m, me in keys]
    summary["failed"] = [count(m, me, ("failed", "interrupted")) for m, me in keys]
    return summary


def missing_cells(spec, profile: str, runs: pd.DataFrame, finished: pd.DataFrame) -> list[str]:
    """'model method run N: failed | not run ...' for every expected cell without a finished run."""
    cells = ["model", "method", "run_index"]
    have = set() if finished.empty else set(finished[cells].itertuples(index=False, name=None))
    newest = latest_per_cell(runs, status=None)
    status = (
        {}
        if newest.empty
        else dict(zip(newest[cells].itertuples(index=False, name=None), newest["status"], strict=True))
    )
    out = []
    for job in spec.jobs(profile):
        if spec.methods and job.method not in spec.methods:
            continue  # a view's other rows (002 Table 3 shows Table 2's LPP-SGD runs, not its LAP-SGD ones)
        cell = (job.model, job.label, job.run_index)
        if cell not in have:
            out.append(f"{job.model} {job.label} run {job.run_index}: {status.get(cell, 'not run')}")
    return out


def add_paper(summary: pd.DataFrame, spec, fields: tuple[str, ...]) -> None:
    """The paper's value of each named field for each (model, method) row, as column `paper_<field>`.

    A row shows the paper's values of its own label if the spec has them (002's cells:
    `lapsgd[U=4,B=128]`), else of the label without its first variant part (`lapsgd[authors_code,
    U=4,B=128]` shows `lapsgd[U=4,B=128]`'s), else of its method (`lapsgd[authors_code]` shows
    `lapsgd`'s: the paper has one row per method).
    """
    cells = [
        paper_cell(spec, model, label)
        for model, label in zip(summary["model"], summary["method"], strict=True)
    ]
    for name in fields:
        summary[f"paper_{name}"] = [paper_fmt(cell.get(name)) for cell in cells]


def paper_labels(label: str) -> list[str]:
    """The labels whose paper values a row shows, in order of preference (add_paper says which)."""
    method, _, rest = label.partition("[")
    parts = rest.rstrip("]").split(",") if rest else []
    candidates = [label]
    if len(parts) > 1:
        candidates.append(f"{method}[{','.join(parts[1:])}]")
    return [*candidates, method]


def paper_cell(spec, model: str, label: str) -> dict:
    """The paper's cell for a row (add_paper says which)."""
    for candidate in paper_labels(label):
        if (model, candidate) in spec.paper:
            return spec.paper[(model, candidate)]
    return {}


def paper_row_index(spec, label: str) -> float:
    """Where the paper lists a row's cell (a variant right after its cell's row); inf if nowhere."""
    order: dict[str, int] = {}
    for key in spec.paper:
        if isinstance(key, tuple):
            order.setdefault(key[1], len(order))
    for offset, candidate in enumerate(paper_labels(label)):
        if candidate in order:
            return order[candidate] + (0.5 if offset else 0.0)
    return math.inf


def _pyplot():
    """matplotlib's pyplot on the file-only backend, and seaborn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    return plt, sns


def save_figure(fig, title: str, spec_id: str, profile: str, out_dir: Path) -> Path:
    """Title, lay out and write a report's figure as `<id>-<profile>.png`; returns its path."""
    import matplotlib.pyplot as plt

    fig.suptitle(textwrap.fill(title, int(fig.get_figwidth() * 14)), fontsize=10)
    fig.tight_layout()
    path = out_dir / f"{spec_id}-{profile}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_threads(spec, profile: str, per_run: pd.DataFrame, out_dir: Path) -> Path:
    """Samples/s and mean staleness per F:B cell, LU against BU, one column per model."""
    plt, sns = _pyplot()
    data = per_run.assign(cell=per_run["method"].map(cell_of), base=per_run["method"].map(base_method))
    models = list(dict.fromkeys(data["model"]))
    order = sorted(set(data["cell"]), key=natural_key)
    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 7), squeeze=False)
    for col, model in enumerate(models):
        of_model = data[data["model"] == model]
        panels = (("samples_per_s", "samples/s"), ("staleness_mean", "mean staleness"))
        for row, (metric, label) in enumerate(panels):
            ax = axes[row][col]
            sns.barplot(data=of_model, x="cell", y=metric, hue="base", order=order, errorbar="sd", ax=ax)
            ax.set_xlabel("forward:backward threads")
            ax.set_ylabel(label)
            ax.set_title(f"{model} ({profile})", fontsize=10)
    return save_figure(fig, spec.title, spec.id, profile, out_dir)


def draw_staleness(spec, profile: str, tensors: pd.DataFrame, out_dir: Path, beta: float = 2.0) -> Path:
    """Left: staleness per tensor against relative depth, LU and BU. Right: BU - LU with β·m/M."""
    plt, sns = _pyplot()
    data = tensors.assign(base=tensors["method"].map(base_method))
    models = list(dict.fromkeys(data["model"]))
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        of_model = data[data["model"] == model]
        left, right = axes[row]
        style = dict(x="relative_depth", y="staleness_mean", hue="base", errorbar="sd")
        sns.lineplot(data=of_model, ax=left, **style)
        left.set_title(f"{model} ({profile}): staleness per parameter tensor", fontsize=10)
        mean = of_model.groupby(["base", "depth"])["staleness_mean"].mean().unstack(0)
        if {"async_lu", "async_bu"} <= set(mean.columns):
            depth = mean.index / max(mean.index.max(), 1)
            right.plot(depth, mean["async_bu"] - mean["async_lu"], label="measured BU - LU")
            right.plot([0, 1], [0, beta], "--", label=f"000 §3.4: β·m/M, β = {beta:g}")
            right.legend()
        right.set_title("relative staleness of block updates", fontsize=10)
        for ax in (left, right):
            ax.set_xlabel("relative depth (0 input, 1 output)")
            ax.set_ylabel("updates")
    return save_figure(fig, spec.title, spec.id, profile, out_dir)


def draw_curves(spec, profile: str, per_run: pd.DataFrame, out_dir: Path) -> Path:
    """Test accuracy vs epoch (mean line, band = ±1 std over runs) and vs training time (one line per run)."""
    from matplotlib.ticker import MaxNLocator

    plt, sns = _pyplot()

    long = pd.concat(
        [c.assign(model=m, method=me, run=r) for c, m, me, r in
         zip(per_run["_curve"], per_run["model"], per_run["method"], per_run["run_index"], strict=True)],
        ignore_index=True,
    )  # fmt: skip
    long["epochs"] = long["epoch"] + 1  # epochs completed when the point was evaluated
    models = sorted(dict.fromkeys(long["model"]))
    hue_order = [m for m in spec.methods if m in set(long["method"])]
    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 7.5), squeeze=False)
    for col, model in enumerate(models):
        data = long[long["model"] == model]
        top, bottom = axes[0][col], axes[1][col]
        style = dict(data=data, y="test_acc", hue="method", hue_order=hue_order)
        sns.lineplot(x="epochs", errorbar="sd", ax=top, **style)
        sns.lineplot(x="train_time_s", units="run", estimator=None, ax=bottom, **style)
        runs = data.groupby("method")["run"].nunique()
        spread = "mean, band ±1 std over runs" if runs.min() > 1 else "one run per method: no band"
        top.set_title(f"{model} ({profile}): {spread}", fontsize=10)
        bottom.set_title("each run against its training clock", fontsize=10)
        top.set_xlabel("epoch")
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.set_xlabel("training time (s)")
        for ax in (top, bottom):
            ax.set_ylabel("test accuracy")
    synthetic = " (smoke: synthetic data in the dataset's shape)" if profile == "smoke" else ""
    return save_figure(fig, spec.title + synthetic, spec.id, profile, out_dir)


# --- files ------------------------------------------------------------------------------------
def display(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with each (x_mean, x_std) pair as one 'mean ± std' column."""
    out = pd.DataFrame(index=summary.index)
    for column in summary.columns:
        if column.endswith("_std"):
            continue
        if column.endswith("_mean"):
            base = column.removesuffix("_mean")
            scale = (
                100.0 if base in ("best_acc", "train_acc_best", "final_train_acc", "final_test_acc") else 1.0
            )
            out[base + (" (%)" if scale == 100.0 else "")] = [
                fmt(m * scale, s * scale)
                for m, s in zip(summary[column], summary[base + "_std"], strict=True)
            ]
        elif column in ("target", "worst_best"):
            out[column + " (%)"] = [fmt(v * 100) for v in summary[column]]
        else:
            out[column] = summary[column]
    return out


def write_report(spec, uri: str, out_dir: Path, profile: str | None = None) -> list[Path]:
    """Write reports/out/<id>.md and <id>.csv (and PNGs for figures); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = build_sections(spec, uri, out_dir, profile)
    lines = [f"# {spec.id}: {spec.title}", "", f"Paper: {spec.source}." if spec.source else ""]
    if spec.reading:
        lines += ["", f"Reading: {spec.reading}"]
    if not sections:
        lines += ["", f"No runs yet. Run them with `python -m benchmarks run {spec.id}`."]
    frames = []
    for section in sections:
        lines += ["", f"## Profile `{section.profile}`", ""]
        if section.hardware:
            lines.append(f"Hardware: {'; '.join(section.hardware)}.")
        for note in section.notes:
            lines.append(f"{note}")
        if not section.summary.empty:
            lines += ["", display(section.summary).to_markdown(index=False)]
            frames.append(section.summary.assign(profile=section.profile))
        else:
            lines += ["", "No finished runs."]
        if section.figure is not None:
            lines += ["", f"![{spec.id} {section.profile}]({section.figure.name})"]
        if section.missing:
            lines += ["", f"Missing or unfinished ({len(section.missing)}):", ""]
            lines += [f"- {m}" for m in section.missing]
    md_path, csv_path = out_dir / f"{spec.id}.md", out_dir / f"{spec.id}.csv"
    md_path.write_text("\n".join(lines).strip() + "\n")
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    combined.to_csv(csv_path, index=False)
    return [md_path, csv_path] + [s.figure for s in sections if s.figure is not None]


def write_index(out_dir: Path, specs) -> Path:
    """reports/out/index.md: the claims' verdicts first, then every table and figure with links to
    the files of it that are in `out_dir`."""
    lines = ["# Reports", ""]
    if (out_dir / "claims.md").exists():
        lines += ["The papers' claims, with verdicts computed from the runs: [claims.md](claims.md).", ""]
    lines += ["| id | title | files |", "| --- | --- | --- |"]
    for spec in specs:
        names = [(f"{spec.id}.md", "md"), (f"{spec.id}.csv", "csv")]
        names += [(p.name, p.name) for p in sorted(out_dir.glob(f"{spec.id}-*.png"))]
        files = [f"[{label}]({name})" for name, label in names if (out_dir / name).exists()]
        lines.append(f"| `{spec.id}` | {spec.title} | {' '.join(files) or 'not written yet'} |")
    path = out_dir / "index.md"
    path.write_text("\n".join(lines) + "\n")
    return path
