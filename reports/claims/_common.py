"""What the claims share: the Claim and Verdict types, the registry, the evidence (the runs of one
profile, read as the table reports read them, failed and diverged runs kept) and the per-cell
measurements that `stats.py` decides.

A claim module declares its `Part`s (what it tests, in its paper's terms, with the band and why)
and a rule that measures them: `rule(evidence) -> Measured`, one `Cell` per table x model x
setting. `Claim.decide` turns the cells into a verdict by the one rule of `stats.py`; no claim
computes a verdict of its own. Each claim carries a rule `version`: a change of its logic
changes its verdicts on fixed evidence (tests/test_claims.py pins them) and must change the
version, with its history in docs/fidelity.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from core.job import Row
from core.registry import Registry

from ._per_run import TIME_COLUMNS, text_as_objects
from .evidence import Evidence
from .stats import (
    INCONCLUSIVE,
    MIN_RUNS,
    NOT_COMPARABLE,
    NOT_DECIDABLE,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    SEQUENTIAL,
    Cell,
    Design,
    Part,
    PartResult,
    decide,
)

PAPER_000 = "000 v1 (arXiv:2410.05985v1)"
PAPER_004 = "the 004 summary (a later version of arXiv:2410.05985)"
LAYUP_V4 = "000 v4's abstract (LayUp, arXiv:2410.05985v4)"
EXTENSION = "none: the suite's extension"
ACCURACY_TABLES = ("table1", "table3", "table6")  # CIFAR-10, CIFAR-100, IMDb: LU and BU runs
TTA_TABLES = ("table1", "table3")
# One margin for every "the same accuracy" of 000 (IMDb's LU vs BU, ImageNet's LU vs bp): the one
# place the paper shows that sameness with replicated runs is IMDb (Table 6: LU 85.15 ± 0.15, BU
# 85.06 ± 0.59, 3 runs each), whose own Welch 95 % interval on the gap is [-1.27, +1.45] points; so
# "the same" is equivalence within 1.5 points, and a tighter margin would ask more of us than of
# the paper (ImageNet's 73.42 vs 73.40 are single runs, which show no margin of their own).
SAME_ACCURACY_POINTS = 1.5
SAME_ACCURACY_WHY = (
    "000's 'the same accuracy': equivalent within 1.5 points, the one margin for every such sentence; 000's "
    "only replicated sameness (IMDb, 85.15 ± 0.15 vs 85.06 ± 0.59, 3 runs) has its own 95 % interval on the "
    "gap at [-1.27, +1.45] points"
)


@dataclass(frozen=True)
class Verdict:
    """What a claim's rule concluded, why, from which numbers and runs, under which rule version."""

    verdict: str
    reason: str
    evidence: str = ""  # our numbers, profile, hardware
    runs: tuple[str, ...] = ()
    results: tuple[PartResult, ...] = ()  # each part's verdict, band and cells
    version: str = ""

    @property
    def cells(self) -> tuple[Cell, ...]:
        """Every cell of every part."""
        return tuple(c for r in self.results for c in r.cells)


@dataclass(frozen=True)
class Measured:
    """What a rule measured: its cells and the text of its numbers. `unmeasurable`: why this store
    or machine cannot decide it (no runs, no GPU), read "not measurable here"; `guard`: an
    unfairness that could make the claim look true (a baseline stopped early), under which a
    "reproduced" reads "not comparable" (a verdict against the claim stands); `guard_against`: one
    that could make it look false (the claim's own method stopped early), under which a "not
    reproduced" reads "not comparable" (a verdict for the claim stands)."""

    cells: tuple[Cell, ...] = ()
    evidence: str = ""
    unmeasurable: str = ""
    guard: str = ""
    guard_against: str = ""


# Profiles that cut a claim's plan down to the cells that can decide it in an hour or two on a
# small machine (Need.profiles); the paper profile runs every cell the paper reports.
REDUCED = ("smoke", "quick")
FULL = ("paper",)


@dataclass(frozen=True)
class Need:
    """Runs a claim needs: the rows of `methods` in a table (every row where none are named), on
    `models` (every model of the table where none are named), at `profiles` (every profile where
    none are named), `runs` per cell (default: the plan's). `rows`: only the rows whose method and
    settings hold all values of one of these, the same settings the rule selects its runs by
    (`of_settings`), so a claim that reads a few rows of a large table runs only those. `choose`: a
    later stage whose rows (labels) the rule picks from the runs of the earlier needs, the same
    function its rule uses (None until it can pick); `chooses` rows, for the estimate before it can."""

    table: str
    methods: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    runs: int | None = None
    rows: tuple[dict, ...] = ()
    choose: Callable[[Evidence], tuple[Row, ...] | None] | None = None
    chooses: int = 0


@dataclass(frozen=True)
class Plan:
    """What decides a claim: table runs (`needs`), `perf` benchmarks (`perf_runs` results of each),
    the run indices of the design's first look (`runs`) and the sequential `design`, fixed before
    they run. `run claims` runs the union of the plans, and `--until-decided` the design's later
    looks of the cells still open."""

    needs: tuple[Need, ...] = ()
    perf: tuple[str, ...] = ()
    runs: int = MIN_RUNS
    perf_runs: int = MIN_RUNS
    design: Design = SEQUENTIAL

    def runs_at(self, look: int) -> int:
        """The run indices a cell holds at the design's look `look` (1-based): its first look's
        (`runs`, a screening's included), plus the runs the design adds after it."""
        return self.runs + self.design.looks[look - 1] - self.design.looks[0]

    @property
    def last(self) -> int:
        """The design's last look."""
        return len(self.design.looks)


@dataclass(frozen=True)
class Claim:
    """A claim of a paper, what it tests (`parts`, each with its band and why) and the rule that
    measures it from our runs."""

    id: str
    source: str  # paper, section or table
    statement: str
    paper: str  # the paper's own evidence
    decided_by: str  # which runs or measurements decide it
    settle: str  # what would settle it (the runs to make)
    rule: Callable[[Evidence], Measured]
    parts: tuple[Part, ...]
    version: str  # "N (date)": raised with every change of the rule's logic (docs/fidelity.md)
    # The text its sentence comes from (docs/references.md): PAPER_000 (v1), PAPER_004 (the summary
    # of a later version), LAYUP_V4 (v4's abstract), or EXTENSION (the suite's own question).
    paper_version: str
    plan: Plan = field(default_factory=Plan)
    # The hardware it needs where a CPU cannot measure it (a line for "not measurable here").
    needs_hardware: str = ""
    # GPUs a verdict needs (0: a CPU can decide it): `run claims` does not run the plan of a claim
    # the machine cannot decide, since its rule would read "not measurable" anyway.
    needs_gpus: int = 0
    # Profile -> why its design cannot decide the claim there (under 80 % "reproduced" at the
    # paper's own effect by the last look, `calibrate-claims --path`): `run claims` plans no runs for
    # it there, and an undecided verdict reads "not decidable here" with why (docs/fidelity.md).
    undecidable: Mapping[str, str] = field(default_factory=dict)

    @property
    def extension(self) -> bool:
        """Whether the claim is the suite's own, beyond the papers (its source says so)."""
        return self.source.startswith("beyond the papers")

    def decide(self, measured: Measured, explain: bool = True) -> Verdict:
        """The verdict on what the rule measured: stats.decide over the parts, then the guard
        (`explain`: the runs that would decide each open cell, in the reason)."""
        runs = tuple(dict.fromkeys(short(r for c in measured.cells for r in c.runs)))
        verdict, reason, results = decide(self.parts, measured.cells, explain, self.plan.design)
        if measured.unmeasurable:
            verdict, reason = NOT_MEASURABLE, measured.unmeasurable
        elif measured.guard and verdict == REPRODUCED:
            verdict, reason = NOT_COMPARABLE, f"{measured.guard} (the rule alone: {reason})"
        elif measured.guard_against and verdict == NOT_REPRODUCED:
            verdict, reason = NOT_COMPARABLE, f"{measured.guard_against} (the rule alone: {reason})"
        else:
            if measured.guard:
                reason = f"{reason}; also {measured.guard}, which could only favour the claim"
            if measured.guard_against:
                reason = f"{reason}; also {measured.guard_against}, which could only count against the claim"
        return Verdict(verdict, reason, measured.evidence, runs, results, self.version)

    def judge(self, evidence: Evidence) -> Verdict:
        """The claim's verdict on the evidence, from the runs its plan fixed. A verdict a guard makes
        "not comparable" is the earliest look's where the claim was decided, if any: a guard reads
        every run present, and a later look's runs never undo a decided verdict (the design keeps
        the first decision; since 2026-11-28)."""
        return self.decidable_here(self._judged(evidence), evidence.profile)

    def decidable_here(self, verdict: Verdict, profile: str) -> Verdict:
        """At a profile where the design cannot decide the claim (`undecidable`), an undecided
        verdict reads "not decidable here" with why; a decided one stands (its error rates hold at
        any power), and so does "not measurable" for want of hardware."""
        why = self.undecidable.get(profile)
        undecided = verdict.verdict == INCONCLUSIVE or (
            verdict.verdict == NOT_MEASURABLE and not self.needs_gpus
        )
        if why is None or not undecided:
            return verdict
        reason = f"at {profile}, {why} (the rule alone: {verdict.verdict}: {verdict.reason})"
        return replace(verdict, verdict=NOT_DECIDABLE, reason=reason)

    def _judged(self, evidence: Evidence) -> Verdict:
        planned = evidence.planned(self)
        verdict = self.decide(self.rule(planned))
        if verdict.verdict != NOT_COMPARABLE:
            return verdict
        cut = planned.most_runs
        for look in range(1, self.plan.last + 1):
            runs = self.plan.runs_at(look)
            if runs >= cut:
                break
            earlier = self.decide(self.rule(planned.at_look(runs)))
            if earlier.verdict in (REPRODUCED, NOT_REPRODUCED):
                decided = f"decided at look {look} ({runs} runs a cell): {earlier.reason}"
                return replace(earlier, reason=decided)
        return verdict


CLAIMS: Registry[Claim] = Registry("claim")


def register_claim(**fields) -> Callable[[Callable], Callable]:
    """Decorator on a rule `(evidence) -> Measured`: register the claim it measures."""

    def wrap(rule: Callable) -> Callable:
        CLAIMS.add(fields["id"], Claim(rule=rule, **fields))
        return rule

    return wrap


# --- rule helpers ---------------------------------------------------------------------------------
def short(run_ids) -> tuple[str, ...]:
    """Run ids as the report shows them (the first 8 characters, as the MLflow UI does)."""
    return tuple(str(r)[:8] for r in run_ids)


def hardware_of(frame: pd.DataFrame) -> str:
    """The hardware the runs used, for the evidence column."""
    if frame.empty or "hardware" not in frame:
        return "unknown"
    return "; ".join(sorted({str(h) for h in frame["hardware"].dropna()})) or "unknown"


def gpus(per_run: pd.DataFrame) -> int:
    """The fewest GPUs any of the runs had (their params `hardware_*`): 0 on a CPU or where unknown."""
    counts = per_run["gpus"].dropna() if "gpus" in per_run else pd.Series(dtype=float)
    return int(counts.min()) if len(counts) == len(per_run) and len(counts) else 0


def cores(per_run: pd.DataFrame) -> int | None:
    """The fewest CPU cores any of the runs' hosts had; None where unknown."""
    counts = per_run["cores"].dropna() if "cores" in per_run else pd.Series(dtype=float)
    return int(counts.min()) if len(counts) else None


def of_settings(per_run: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """The runs whose columns hold these values (`method="async_lu"`, `straggler_delay_frac=0.0`)."""
    keep = np.ones(len(per_run), dtype=bool)
    for key, value in settings.items():
        keep &= (per_run[key] == value).to_numpy(dtype=bool) if key in per_run else False
    return per_run[keep]


def gather(evidence: Evidence, table_ids: tuple[str, ...]) -> pd.DataFrame:
    """The per-run values of several tables, with a `table` column (read only: it is cached)."""
    key = ("gather", table_ids, evidence.runs_per_cell, evidence.first_look, evidence._cut)
    if key not in evidence._cache:
        with text_as_objects():  # Python strings, as per_run's text
            frames = [evidence.per_run(t).assign(table=t) for t in table_ids if not evidence.per_run(t).empty]
        evidence._cache[key] = pd.concat(frames, ignore_index=True).copy() if frames else pd.DataFrame()
    return evidence._cache[key]


def points(a: float, b: float) -> float:
    """The margin of "accuracy a is higher than b", in points."""
    return (a - b) * 100


def difference(a: float, b: float) -> float:
    """The margin of "a is higher than b"."""
    return a - b


def log_ratio(a: float, b: float) -> float:
    """The margin of "a is larger than b" (a time: "b is faster"), scale-free: log(a / b)."""
    if not (a > 0 and b > 0):
        return math.nan
    return math.log(a / b)


Selector = Row | dict  # a row, or the typed values of its columns (method, settings)


def select(frame: pd.DataFrame, selector: Selector) -> pd.DataFrame:
    """The runs of one row, or of every row whose columns hold these values."""
    if isinstance(selector, Row):
        return of_rows(frame, (selector,))
    if isinstance(selector, dict):
        return of_settings(frame, selector)
    raise TypeError(f"a row is selected by a Row or by typed column values, not {selector!r}")


def of_rows(per_run: pd.DataFrame, rows: Iterable[Row]) -> pd.DataFrame:
    """The runs of these rows (matched by the name each row derives: one per row)."""
    return per_run[per_run["label"].isin([row.label for row in rows])]


def compared_rows(
    evidence: Evidence, table_ids: tuple[str, ...], a: Selector, b: Selector, models: tuple[str, ...] = ()
) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """(table, model, row a's runs, row b's runs) of each table and model (of `models`, where named)
    where both rows have planned runs: what a cell compares."""
    for (table_id, model), group in groups(evidence, table_ids):
        if models and model not in models:
            continue
        left, right = select(group, a), select(group, b)
        if not left.empty and not right.empty:
            yield table_id, model, left, right


def groups(evidence: Evidence, table_ids: tuple[str, ...]) -> list[tuple[tuple[str, str], pd.DataFrame]]:
    """`gather`'s runs split by table and model, in first-seen order (read only: cached, since a
    claim compares many pairs of rows in the same groups)."""
    key = ("groups", table_ids, evidence.runs_per_cell, evidence.first_look, evidence._cut)
    if key not in evidence._cache:
        per_run = gather(evidence, table_ids)
        split = [] if per_run.empty else list(per_run.groupby(["table", "model"], sort=False))
        evidence._cache[key] = split
    return evidence._cache[key]


def paired_cells(
    evidence: Evidence,
    part: Part,
    table_ids: tuple[str, ...],
    a: Selector,
    b: Selector,
    value: str,
    margin: Callable[[float, float], float],
    what: str = "",
    models: tuple[str, ...] = (),
) -> list[Cell]:
    """One cell per table and model: margin(a's value, b's value) of each run index where rows a and
    b both have a planned run (a row's run missing leaves the cell short of its plan). Runs that
    failed or diverged count in the cell (`failed`). Times to a target are no margins here: a time a
    run never reached is censored, and censored.time_cells compares them."""
    if value in TIME_COLUMNS:
        raise ValueError(f"{value} is a time to a target, censored where missed: use censored.time_cells")
    cells = []
    for table_id, model, left, right in compared_rows(evidence, table_ids, a, b, models):
        columns = ["run_index", value, "status", "run_id"]
        joined = left[columns].merge(right[columns], on="run_index", suffixes=("_a", "_b"))
        joined = joined.sort_values("run_index")
        failed = sum(int(joined[f"status_{side}"].ne("finished").sum()) for side in "ab")
        name = f"{table_id} {model}" + (f" {what}" if what else "")
        cells.append(
            Cell(
                part.name,
                name,
                tuple(margin(x, y) for x, y in zip(joined[f"{value}_a"], joined[f"{value}_b"], strict=True)),
                tuple(joined["run_id_a"]) + tuple(joined["run_id_b"]),
                evidence.planned_runs,
                failed,
                rows=rows_of(table_id, model, left, right),
            )
        )
    return cells


def rows_of(table_id: str, model: str, *frames: pd.DataFrame) -> tuple[tuple[str, str, str], ...]:
    """(table, model, label) of the rows whose runs the frames hold (Cell.rows)."""
    return rows_of_labels(table_id, model, (label for frame in frames for label in frame["label"]))


def rows_of_labels(table_id: str, model: str, labels: Iterable) -> tuple[tuple[str, str, str], ...]:
    """(table, model, label) of each distinct label, in first-seen order (Cell.rows)."""
    return tuple((table_id, model, str(label)) for label in dict.fromkeys(labels))


def still_improving(per_run: pd.DataFrame, gain_points: float = 1.0) -> pd.DataFrame:
    """The runs whose best accuracy rose by more than `gain_points` over the last quarter of their
    epochs (at least the last one): not converged, so their best says little of the method's."""
    if per_run.empty or "late_gain" not in per_run:
        return per_run.iloc[0:0]
    return per_run[per_run["late_gain"] * 100 > gain_points]


def unfair_to_baselines(
    per_run: pd.DataFrame, baselines: tuple[Row, ...], gain_points: float = 1.0, role: str = "a baseline"
) -> str:
    """The guard of a claim that our method beats `baselines`: a baseline's run stopped on
    its time budget before its schedule ended, or still improving at its end (`still_improving`),
    could make the claim look true; '' where neither."""
    if per_run.empty:
        return ""
    compared = of_rows(per_run, baselines)
    cut = (
        compared[compared["stop_reason"] == "time_budget"]
        if "stop_reason" in compared
        else compared.iloc[0:0]
    )
    if not cut.empty:
        shown = ", ".join(
            f"{r.label} {r.model} run {r.run_index} after {r.epochs:.0f} epochs" for r in cut.itertuples()
        )
        return f"{role}'s runs stopped on their time budget before their schedule ended: {shown}"
    rising = still_improving(compared, gain_points)
    if not rising.empty:
        shown = ", ".join(
            f"{r.label} {r.model} run {r.run_index} +{r.late_gain * 100:.1f} points in its last "
            f"{r.late_epochs:.0f} of {r.epochs:.0f} epochs"
            for r in rising.itertuples()
        )
        return (
            f"{role} had not converged (its best accuracy still rose by more than {gain_points:g} points "
            f"at the end): {shown}; a longer profile (`--profile paper`) compares converged runs"
        )
    return ""


def cut_short(per_run: pd.DataFrame, rows: tuple[Row, ...]) -> str:
    """The guard of a claim between our own rows: one of `rows`' runs stopped on its time budget
    before its schedule ended; '' where none did."""
    if per_run.empty or "stop_reason" not in per_run:
        return ""
    ours = of_rows(per_run, rows)
    cut = ours[ours["stop_reason"] == "time_budget"]
    if cut.empty:
        return ""
    shown = ", ".join(
        f"{r.label} {r.model} run {r.run_index} after {r.epochs:.0f} epochs" for r in cut.itertuples()
    )
    return f"runs stopped on their time budget before their schedule ended: {shown}"


def contended_note(per_run: pd.DataFrame, rows: tuple[Row, ...] = ()) -> str:
    """'; N of the M compared runs were contended ...' where other processes used the machine
    during some of the compared runs (tag `contended`), else ''."""
    if per_run.empty or "contended" not in per_run:
        return ""
    compared = of_rows(per_run, rows) if rows else per_run
    busy = compared[compared["contended"].astype(bool)]
    if busy.empty:
        return ""
    return (
        f"; {len(busy)} of the {len(compared)} compared runs were contended (other processes used the "
        f"machine: their times are not its alone): {', '.join(short(busy['run_id']))}"
    )


def described(evidence: Evidence, per_run: pd.DataFrame, text: str = "") -> str:
    """The evidence column: the rule's own text, the profile and the hardware (and contention)."""
    head = f"{text}; " if text else ""
    return f"{head}profile {evidence.profile}; {hardware_of(per_run)}{contended_note(per_run)}"


def no_runs(tables: str, how: str) -> Measured:
    """Not measurable: the store has no planned runs of these tables in this profile."""
    return Measured(unmeasurable=f"no finished runs of {tables} in this profile; {how}")
