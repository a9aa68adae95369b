"""`report TABLE`: a table's runs from MLflow, summarised with the paper's columns beside the paper's numbers.

A spec's `kind` names its renderer, one file each in `reports/kinds/` (registered with
`@register_kind`). This module does what every kind shares: it reads the runs of the spec's
experiment, keeps those of the spec's rows (`reports.runs.with_rows`: a run's row is decided by its
params), computes the per-run values from the learning curves, and writes the Markdown, CSV and
index. The paper's values are read by the named fields of each row (`spec.paper_of(model, row)`)
and land in `paper_<field>` columns. Every report says which runs are missing or failed and renders
what exists. In a summary the column `method` is the row's label
(`lapsgd[workers_per_device=4,batch_size=128]`).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.registry import Registry

from .runs import latest_per_cell, load_runs, mean_std, with_rows
from .values import MEMORY, in_spec_order, training_per_run

PROFILE_ORDER = ("paper", "quick", "smoke")


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


@dataclass(frozen=True)
class Kind:
    """How a table kind is rendered: `render(section, spec, per_run, out_dir)` returns the summary.

    `per_run` is what `training_per_run` computes from the curves, or with `curves=False` the
    finished runs as MLflow gives them (Table 9's measurements). A kind with `runs=False` renders
    without runs: `render(spec, profile)` returns the sections (Table 10).
    """

    name: str
    render: Callable
    curves: bool = True
    runs: bool = True


KINDS: Registry[Kind] = Registry("report kind")


def register_kind(name: str, curves: bool = True, runs: bool = True) -> Callable[[Callable], Callable]:
    """Decorator on a kind's renderer (a module of `reports/kinds/`): register it as `name`."""

    def wrap(render: Callable) -> Callable:
        KINDS.add(name, Kind(name, render, curves, runs))
        return render

    return wrap


def table_runs(uri: str, spec) -> pd.DataFrame:
    """Every run of the spec's experiment that is of one of its rows (`with_rows`), newest first."""
    return with_rows(load_runs(uri, spec.experiment), spec)


def guest_notes(spec, runs: pd.DataFrame) -> list[str]:
    """One line naming the guest rows of this profile's runs: not the paper's, added by a user."""
    present = set(runs["method"]) if not runs.empty and "method" in runs else set()
    guests = [m for m in spec.guests if m in present]
    if not guests:
        return []
    return [
        f"Guest rows (not the paper's; `run {spec.id} --methods ...` put them into the table's "
        f"workloads at their defaults): {', '.join(guests)}."
    ]


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


# --- sections ---------------------------------------------------------------------------------
def build_sections(spec, uri: str, out_dir: Path, profile: str | None = None) -> list[Section]:
    """One Section per profile that has runs of this table (or the asked profile)."""
    kind = KINDS.lookup(spec.kind)
    if not kind.runs:
        return kind.render(spec, profile)
    stored = load_runs(uri, spec.experiment)
    if not stored.empty and "method" in stored:  # methods a user added (`run TABLE --methods X`)
        spec = spec.with_stored_methods(stored["method"].dropna().unique())
    runs = with_rows(stored, spec)
    profiles = (
        [profile] if profile else [p for p in PROFILE_ORDER if not runs.empty and p in set(runs["profile"])]
    )
    sections = []
    for prof in profiles:
        of_profile = runs[runs["profile"] == prof] if not runs.empty else runs
        finished = latest_per_cell(of_profile)
        section = Section(prof, pd.DataFrame(), pd.DataFrame(), uri=uri)
        section.missing = missing_cells(spec, prof, of_profile, finished)
        section.notes += guest_notes(spec, of_profile)
        if not finished.empty:
            section.hardware = sorted(set(finished["hardware"].dropna()))
        if not kind.curves:
            if not finished.empty:
                section.summary = in_spec_order(kind.render(section, spec, finished, out_dir), spec)
        else:
            targets = spec.target_values(prof)
            per_run = training_per_run(
                uri, finished, targets, spec.metrics, spec.setting_keys, spec.metric, spec.model_metrics
            )
            if not per_run.empty:
                section.per_run = per_run.drop(columns=["_curve"])
                summary = add_row_means(
                    kind.render(section, spec, per_run, out_dir), per_run, (MEMORY, *spec.metrics)
                )
                section.summary = in_spec_order(add_outcomes(summary, of_profile, finished), spec)
                if "contended" in section.summary:
                    section.notes.append(
                        "contended: runs during which other processes used more than 10 % of the machine's "
                        "CPU time (tag `contended`): their times and throughput are not this machine's alone."
                    )
        sections.append(section)
    return sections


def add_row_means(summary: pd.DataFrame, per_run: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Each of `metrics` that the report kind left out of a summary of rows (model and method), as
    the mean and std over each row's runs of the run's value: the peak memory (GiB: the job's
    processes summed, the highest epoch of a run) and every per-epoch metric the table declares
    (`TableSpec.metrics`, a run's mean over its epochs), so every report shows what its table names."""
    if summary.empty or not {"model", "method"} <= set(summary.columns):
        return summary
    keys = list(zip(summary["model"], summary["method"], strict=True))
    rows = per_run.groupby(["model", "label"], sort=False)
    nan = (math.nan, math.nan)
    for metric in metrics:
        if metric not in per_run or any(c == metric or c.startswith(f"{metric}_") for c in summary.columns):
            continue
        by_row = {key: mean_std(group[metric])[:2] for key, group in rows}
        summary[f"{metric}_mean"] = [by_row.get(k, nan)[0] for k in keys]
        summary[f"{metric}_std"] = [by_row.get(k, nan)[1] for k in keys]
    return summary


def add_outcomes(summary: pd.DataFrame, runs: pd.DataFrame, finished: pd.DataFrame) -> pd.DataFrame:
    """`diverged` and `failed` per row: cells (run indexes) of that model and method whose newest run
    ended so and which have no finished run. A diverged run is a finding: counted, not dropped (the
    means and the worst method's best are over the finished runs)."""
    if summary.empty or "method" not in summary:
        return summary
    cells = ["model", "label", "run_index"]
    done = set(finished[cells].itertuples(index=False, name=None)) if not finished.empty else set()
    newest = latest_per_cell(runs, status=None)
    ended = newest[[cell not in done for cell in newest[cells].itertuples(index=False, name=None)]]
    counts = ended.groupby(["model", "label", "status"]).size() if not ended.empty else pd.Series(dtype=int)

    def count(model: str, method: str, statuses: tuple[str, ...]) -> int:
        return int(sum(counts.get((model, method, status), 0) for status in statuses))

    present = set(zip(summary["model"], summary["method"], strict=True))
    row_of = dict(zip(ended["label"], ended["row_order"], strict=True)) if not ended.empty else {}
    only_ended = [
        k for k in dict.fromkeys(zip(ended["model"], ended["label"], strict=True)) if k not in present
    ]
    if only_ended:  # a method whose runs all diverged or failed still gets its row
        extra = pd.DataFrame([dict(model=m, method=me, runs=0, _row=row_of[me]) for m, me in only_ended])
        summary = pd.concat([summary, extra], ignore_index=True)
    keys = list(zip(summary["model"], summary["method"], strict=True))
    summary["diverged"] = [count(m, me, ("diverged",)) for m, me in keys]
    summary["failed"] = [count(m, me, ("failed", "interrupted")) for m, me in keys]
    contended = finished[finished["contended"]] if "contended" in finished else finished.iloc[0:0]
    if not contended.empty:  # runs timed while other processes used the machine (tag `contended`)
        flagged = contended.groupby(["model", "label"]).size()
        summary["contended"] = [int(flagged.get(key, 0)) for key in keys]
    return summary


def missing_cells(spec, profile: str, runs: pd.DataFrame, finished: pd.DataFrame) -> list[str]:
    """'model row run N: failed | not run ...' for every cell the spec expects (`spec.cells`)
    without a finished run."""
    cells = ["model", "label", "run_index"]
    have = set() if finished.empty else set(finished[cells].itertuples(index=False, name=None))
    newest = latest_per_cell(runs, status=None)
    status = (
        {}
        if newest.empty
        else dict(zip(newest[cells].itertuples(index=False, name=None), newest["status"], strict=True))
    )
    out = []
    present = set(runs["method"]) if not runs.empty else set()
    for cell in spec.cells(profile):
        if cell.row not in spec.rows:
            continue  # a view's other rows (002 Table 3 shows Table 2's LPP-SGD runs, not its LAP-SGD ones)
        if cell.row.method in spec.guests and cell.row.method not in present:
            continue  # a guest is expected only where a user ran it
        for run_index in range(cell.runs):
            key = (cell.model, cell.row.label, run_index)
            if key not in have:
                out.append(f"{cell.model} {cell.row.label} run {run_index}: {status.get(key, 'not run')}")
    return out


def add_paper(summary: pd.DataFrame, spec, fields: tuple[str, ...]) -> None:
    """The paper's value of each named field for each row, as column `paper_<field>`: the values of
    the spec row the runs are of (`spec.paper_of`), so a row that extends a table row
    (`lapsgd[reading=authors_code]`) shows that table row's."""
    rows = summary["_row"] if "_row" in summary else pd.Series(-1, index=summary.index)
    cells = [
        spec.paper_of(model, spec.rows[int(row)]) if row >= 0 else {}
        for model, row in zip(summary["model"], rows, strict=True)
    ]
    for name in fields:
        summary[f"paper_{name}"] = [paper_fmt(cell.get(name)) for cell in cells]


# --- figures ----------------------------------------------------------------------------------
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
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight": a legend beside the plots is kept
    plt.close(fig)
    return path


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


def target_lines(spec, profile: str) -> list[str]:
    """Each model's frozen target at `profile` with where it came from: what every method's time to
    target is measured against (benchmarks/tables/common/targets.py)."""
    return [
        f"Target of {model} (every method's): {target.value:g}, {target.source}."
        for model, target in spec.targets.get(profile, {}).items()
    ]


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
        lines += target_lines(spec, section.profile)
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


def verdict_table(claims_csv: Path) -> list[str]:
    """The claims' verdicts as a Markdown table (claim, verdict, effect and 95 % interval, profile)."""
    if not claims_csv.exists():
        return []
    verdicts = pd.read_csv(claims_csv)
    lines = ["| claim | verdict | effect [95 % CI] | profile |", "| --- | --- | --- | --- |"]
    for row in verdicts.itertuples():
        effect = "–"
        if "effect" in verdicts and not pd.isna(row.effect):
            interval = "" if pd.isna(row.effect_low) else f" [{row.effect_low:+.3g}, {row.effect_high:+.3g}]"
            effect = f"{row.effect:+.3g}{interval}"
        lines.append(f"| {row.id} | {row.verdict} | {effect} | {row.profile} |")
    return lines


def write_index(out_dir: Path, specs) -> Path:
    """reports/out/index.md: the claims' verdicts first, then every table and figure with links to
    the files of it that are in `out_dir`."""
    lines = ["# Reports", ""]
    if (out_dir / "claims.md").exists():
        lines += [
            "The papers' claims, with verdicts computed from the runs (the evidence, tests and what would "
            "settle each: [claims.md](claims.md)):",
            "",
            *verdict_table(out_dir / "claims.csv"),
            "",
        ]
    lines += ["| id | title | files |", "| --- | --- | --- |"]
    for spec in specs:
        names = [(f"{spec.id}.md", "md"), (f"{spec.id}.csv", "csv")]
        names += [(p.name, p.name) for p in sorted(out_dir.glob(f"{spec.id}-*.png"))]
        files = [f"[{label}]({name})" for name, label in names if (out_dir / name).exists()]
        lines.append(f"| `{spec.id}` | {spec.title} | {' '.join(files) or 'not written yet'} |")
    path = out_dir / "index.md"
    partial = out_dir / ".index.md.part"
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(path)  # readers see the old index or the new one, never half of it
    return path
