"""What the claims share: the Claim and Verdict types, the registry, the evidence (the runs of one
profile, read as the table reports read them) and the paired statistics that decide comparisons.

Comparisons between methods are paired by run index (the same seed); with fewer than MIN_PAIRS
pairs a rule says `inconclusive` and shows the margins; with more, a one-sided paired t-test at
ALPHA decides. Thresholds (β within 25 %, a ratio at least X) decide on the measured means.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd

from core.registry import Registry

from ..render import table_runs, training_per_run
from ..runs import latest_per_cell, load_runs

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
INCONCLUSIVE, NOT_MEASURABLE = "inconclusive", "not measurable here"
NOT_COMPARABLE = "not comparable at this profile"  # a guard failed: the comparison would mislead
NOT_RUN = "not run (budget)"  # `run claims --budget` left its runs out: measurable here, not measured
DECIDED = (REPRODUCED, NOT_REPRODUCED)
MIN_PAIRS = 3  # paired runs a comparison needs before a test decides it (the paper's 3 runs per cell)
ALPHA = 0.05  # one-sided level of the paired t-test
ACCURACY_TABLES = ("table1", "table3", "table6")  # CIFAR-10, CIFAR-100, IMDb: LU and BU runs
TTA_TABLES = ("table1", "table3")


@dataclass(frozen=True)
class Verdict:
    """What a rule concluded, why, and from which numbers and runs."""

    verdict: str
    reason: str
    evidence: str = ""  # our numbers, the runs' ids, profile, hardware
    runs: tuple[str, ...] = ()
    values: tuple[float, ...] = ()  # the paired margins the verdict was computed from
    test: str = ""  # how the values decided it (the statistical test, or the threshold)

    @property
    def effect(self) -> tuple[float, float, float]:
        """(mean margin, low, high): the mean of `values` and its two-sided 95 % t interval (NaN
        where there are no values; the interval is NaN for one value)."""
        return mean_interval(self.values)


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of `values` with the two-sided t interval at `level`."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    from scipy import stats

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half


def runs_to_settle(values) -> int | None:
    """Roughly how many pairs a one-sided paired t-test at ALPHA needs to decide an effect as large
    as the mean of `values`, with their spread, at 80 % power: ((z_a + z_b) sd / mean)^2. None
    where it cannot be told (fewer than two values, or no effect)."""
    values = [v for v in values if not math.isnan(v)]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    if mean == 0:
        return None
    return max(MIN_PAIRS, math.ceil(((1.645 + 0.842) * sd / abs(mean)) ** 2))


# Profiles that cut a claim's plan down to the cells that can decide it in an hour or two on a
# small machine (Need.profiles); the paper profile runs every cell the paper reports.
REDUCED = ("smoke", "quick")
FULL = ("paper",)


@dataclass(frozen=True)
class Need:
    """Runs a claim needs: the rows of `methods` in a table (every row where none are named), on
    `models` (every model of the table where none are named), at `profiles` (every profile where
    none are named)."""

    table: str
    methods: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """What decides a claim: table runs (`needs`), `perf` benchmarks, and the runs per cell (at
    least MIN_PAIRS: a paired test needs them). `run claims` runs the union of the plans."""

    needs: tuple[Need, ...] = ()
    perf: tuple[str, ...] = ()
    runs: int = MIN_PAIRS


@dataclass(frozen=True)
class Claim:
    """A claim of a paper and the rule that decides it from our runs."""

    id: str
    source: str  # paper, section or table
    statement: str
    paper: str  # the paper's own evidence
    decided_by: str  # which runs or measurements decide it
    settle: str  # what would settle it (the runs to make)
    rule: Callable[[Evidence], Verdict]
    plan: Plan = field(default_factory=Plan)
    # The hardware it needs where a CPU cannot measure it (a line for "not measurable here").
    needs_hardware: str = ""
    # GPUs a verdict needs (0: a CPU can decide it): `run claims` does not run the plan of a claim
    # the machine cannot decide, since its rule would read "not measurable" or "not comparable" anyway.
    needs_gpus: int = 0
    # The paper's own effect on the scale of the rule's margins, where it states one (claims.png).
    paper_effect: float | None = None

    @property
    def extension(self) -> bool:
        """Whether the claim is the suite's own, beyond the papers (its source says so)."""
        return self.source.startswith("beyond the papers")


CLAIMS: Registry[Claim] = Registry("claim")


def register_claim(**fields) -> Callable[[Callable], Callable]:
    """Decorator on a rule `(evidence) -> Verdict`: register the claim it decides."""

    def wrap(rule: Callable) -> Callable:
        CLAIMS.add(fields["id"], Claim(rule=rule, **fields))
        return rule

    return wrap


# --- the evidence: runs of one profile, as the table reports read them ----------------------------
@dataclass
class Evidence:
    """The runs of one profile in one store, per table, loaded once."""

    uri: str
    specs: dict  # table id -> TableSpec
    profile: str
    _cache: dict = field(default_factory=dict)

    def runs(self, table_id: str) -> pd.DataFrame:
        """The newest finished run of each cell of the table (its experiment's, of this profile)."""
        key = ("runs", table_id)
        if key not in self._cache:
            runs = table_runs(self.uri, self.specs[table_id])
            if not runs.empty:
                runs = runs[runs["profile"] == self.profile]
            self._cache[key] = latest_per_cell(runs)
        return self._cache[key]

    def rows(self, table_ids: tuple[str, ...], methods: tuple[str, ...]) -> list[str]:
        """The label of each method's row and, after it, of each of its variants with runs in the
        tables (the LAP-SGD baselines also as their authors' code runs them: `lapsgd[authors_code]`)."""
        labels: dict[str, set[str]] = {}
        for table_id in table_ids:
            runs = self.runs(table_id)
            for method, label in zip(runs.get("method", []), runs.get("label", []), strict=True):
                labels.setdefault(method, set()).add(label)
        return [m for method in methods for m in [method, *sorted(labels.get(method, set()) - {method})]]

    def per_run(self, table_id: str) -> pd.DataFrame:
        """Per run: best accuracy, times to accuracy (reports.render.training_per_run), hardware."""
        key = ("per_run", table_id)
        if key not in self._cache:
            runs = self.runs(table_id)
            spec = self.specs[table_id]
            targets = spec.targets.get(self.profile, {})
            settings = tuple(dict.fromkeys(k for row in spec.rows for k, _ in row.settings))
            per_run = (
                training_per_run(self.uri, runs, targets, spec.metrics, settings, spec.metric)
                if not runs.empty
                else pd.DataFrame()
            )
            if not per_run.empty:
                extra = runs.set_index("run_id")
                per_run["hardware"] = [extra.at[r, "hardware"] for r in per_run["run_id"]]
                per_run["stop_reason"] = [
                    extra.at[r, "stop_reason"] if "stop_reason" in extra else "" for r in per_run["run_id"]
                ]
                late = [late_gain(c) for c in per_run["_curve"]]
                per_run["epochs"] = [len(c) for c in per_run["_curve"]]
                per_run["late_gain"] = [g for g, _ in late]
                per_run["late_epochs"] = [k for _, k in late]
                per_run["contended"] = [
                    extra.at[r, "contended"] == "true" if "contended" in extra else False
                    for r in per_run["run_id"]
                ]
                for name, column in (
                    ("staleness", "metrics.staleness_mean"),
                    ("update_delay_s", "metrics.update_delay_s_mean"),
                ):
                    per_run[name] = [
                        extra.at[r, column] if column in extra else math.nan for r in per_run["run_id"]
                    ]
            self._cache[key] = per_run
        return self._cache[key]

    def perf(self, name: str) -> pd.DataFrame:
        """`perf NAME` results logged to the experiment `perf` (newest first), any profile."""
        key = ("perf", name)
        if key not in self._cache:
            runs = load_runs(self.uri, "perf")
            self._cache[key] = (
                runs[runs["perf"] == name] if not runs.empty and "perf" in runs else pd.DataFrame()
            )
        return self._cache[key]


def late_gain(curve: pd.DataFrame) -> tuple[float, int]:
    """(how much the best test accuracy rose over the last quarter of the epochs, how many epochs
    that is: at least one); (0, 0) for a single epoch."""
    best = curve["test_acc"].cummax().dropna()
    if len(best) < 2:
        return 0.0, 0
    k = max(1, round(len(best) / 4))
    return float(best.iloc[-1] - best.iloc[-1 - k]), k


# --- rule helpers ---------------------------------------------------------------------------------
def short(run_ids) -> tuple[str, ...]:
    """Run ids as the report shows them (the first 8 characters, as the MLflow UI does)."""
    return tuple(str(r)[:8] for r in run_ids)


def hardware_of(frame: pd.DataFrame) -> str:
    """The hardware the runs used, for the evidence column."""
    if frame.empty or "hardware" not in frame:
        return "unknown"
    return "; ".join(sorted({str(h) for h in frame["hardware"].dropna()})) or "unknown"


def gpus(hardware: str) -> int:
    """GPUs the runs had, from the `hardware` tag ('NAME x COUNT'; a CPU's tag names cores): 0 on a CPU."""
    if " x " not in hardware or "cores)" in hardware:
        return 0
    try:
        return min(int(part.rsplit(" x ", 1)[1]) for part in hardware.split("; "))
    except (ValueError, IndexError):
        return 0


def pairs(per_run: pd.DataFrame, a: str, b: str, value: str, by: str = "label") -> pd.DataFrame:
    """Rows (model, run_index, a, b, run ids) where rows a and b (labels, or methods with
    `by="method"`) both have a run of that index."""
    if per_run.empty:
        return pd.DataFrame(columns=["model", "run_index", "a", "b", "run_a", "run_b"])
    left = per_run[per_run[by] == a][["model", "run_index", value, "run_id"]]
    right = per_run[per_run[by] == b][["model", "run_index", value, "run_id"]]
    joined = left.merge(right, on=["model", "run_index"], suffixes=("_a", "_b"))
    return joined.rename(
        columns={f"{value}_a": "a", f"{value}_b": "b", "run_id_a": "run_a", "run_id_b": "run_b"}
    )


def of_settings(per_run: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """The runs of rows with these typed settings (`straggler_delay_frac=0.0`), by their setting columns."""
    keep = pd.Series(True, index=per_run.index)
    for key, value in settings.items():
        keep &= per_run[key] == value if key in per_run else False
    return per_run[keep]


def paired_verdict(margins: list[float], what: str, runs_per_cell: int | None = None) -> tuple[str, str]:
    """Verdict on paired margins (positive: the claim holds in that pair).

    Fewer than MIN_PAIRS pairs, or fewer than MIN_PAIRS runs in some cell (`runs_per_cell`: the
    smallest count of pairs of one workload): inconclusive (too few runs). Otherwise a one-sided
    paired t-test at ALPHA each way: reproduced, not reproduced, or inconclusive (within noise).
    """
    margins = [m for m in margins if not math.isnan(m)]
    n = len(margins)
    if n == 0:
        return INCONCLUSIVE, f"no paired runs for {what}"
    shown = ", ".join(f"{m:+.3g}" for m in margins)
    fewest = n if runs_per_cell is None else runs_per_cell
    if min(n, fewest) < MIN_PAIRS:
        agree = sum(m > 0 for m in margins)
        count = f"{n} pair(s)" if n < MIN_PAIRS else f"{fewest} run(s) in a cell"
        return INCONCLUSIVE, (
            f"too few runs: {count}, {MIN_PAIRS} per cell needed; margins {shown} "
            f"({agree} of {n} in the claim's direction){settle_hint(margins)}"
        )
    mean = sum(margins) / n
    std = math.sqrt(sum((m - mean) ** 2 for m in margins) / (n - 1))
    if std == 0:
        p_greater = 0.0 if mean > 0 else 1.0
        p_less = 0.0 if mean < 0 else 1.0
    else:
        from scipy import stats

        p_greater = float(stats.ttest_1samp(margins, 0.0, alternative="greater").pvalue)
        p_less = float(stats.ttest_1samp(margins, 0.0, alternative="less").pvalue)
    described = f"{n} pairs, mean margin {mean:+.3g} (margins {shown})"
    if p_greater <= ALPHA:
        return REPRODUCED, f"{described}; one-sided paired t-test p = {p_greater:.3g} <= {ALPHA}"
    if p_less <= ALPHA:
        return NOT_REPRODUCED, f"{described}; the opposite holds, p = {p_less:.3g} <= {ALPHA}"
    return INCONCLUSIVE, f"within noise: {described}; p = {p_greater:.3g} > {ALPHA}{settle_hint(margins)}"


def settle_hint(margins) -> str:
    """'; about N pairs would settle it' from the spread seen (runs_to_settle), or ''."""
    needed = runs_to_settle(margins)
    return f"; about {needed} pairs would settle it (from the spread seen)" if needed else ""


PAIRED_TEST = f"one-sided paired t-test at {ALPHA}, pairs by run index (seed)"


def still_improving(per_run: pd.DataFrame, gain_points: float = 1.0) -> pd.DataFrame:
    """The runs whose best accuracy rose by more than `gain_points` over the last quarter of their
    epochs (at least the last one): not converged, so their best says little of the method's."""
    if per_run.empty or "late_gain" not in per_run:
        return per_run.iloc[0:0]
    return per_run[per_run["late_gain"] * 100 > gain_points]


def comparability(
    per_run: pd.DataFrame, labels: tuple[str, ...], converged: tuple[str, ...] = (), gain_points: float = 1.0
) -> Verdict | None:
    """NOT_COMPARABLE, with the numbers that show why, when a run of the compared rows (`labels`)
    stopped on its time budget before its schedule ended, or a run of a row that must have
    converged (a baseline, `converged`) was still improving (`still_improving`); None if fair."""
    if per_run.empty:
        return None
    compared = per_run[per_run["label"].isin(labels)]
    cut = compared[compared.get("stop_reason", pd.Series(dtype=str)) == "time_budget"]
    if not cut.empty:
        shown = ", ".join(
            f"{r.label} {r.model} run {r.run_index} after {r.epochs:.0f} epochs" for r in cut.itertuples()
        )
        return Verdict(
            NOT_COMPARABLE, f"runs stopped on their time budget before their schedule ended: {shown}"
        )
    rising = still_improving(compared[compared["label"].isin(converged)], gain_points)
    if not rising.empty:
        shown = ", ".join(
            f"{r.label} {r.model} run {r.run_index} +{r.late_gain * 100:.1f} points in its last "
            f"{r.late_epochs:.0f} of {r.epochs:.0f} epochs"
            for r in rising.itertuples()
        )
        return Verdict(
            NOT_COMPARABLE,
            f"a baseline had not converged (its best accuracy still rose by more than {gain_points:g} "
            f"points at the end): {shown}; a longer profile (`--profile paper`) compares converged runs",
        )
    return None


def combine(verdicts: list[str]) -> str:
    """All parts reproduced: reproduced; any part not reproduced: not reproduced; else inconclusive."""
    if any(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    if verdicts and all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if verdicts and all(v == NOT_MEASURABLE for v in verdicts):
        return NOT_MEASURABLE
    return INCONCLUSIVE


def no_runs(tables: str, how: str) -> Verdict:
    """Not measurable: the store has no finished runs of these tables in this profile."""
    return Verdict(NOT_MEASURABLE, f"no finished runs of {tables} in this profile; {how}")


def gather(evidence: Evidence, table_ids: tuple[str, ...]) -> pd.DataFrame:
    """The per-run values of several tables, with a `table` column."""
    frames = [evidence.per_run(t).assign(table=t) for t in table_ids if not evidence.per_run(t).empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def compare(
    evidence: Evidence,
    table_ids: tuple[str, ...],
    a: str,
    b: str,
    value: str,
    margin: Callable[[float, float], float],
    what: str,
    where: dict | None = None,
) -> Verdict | None:
    """Paired comparison of row a against row b (labels) over the tables' runs; None if no pair
    exists. With `where` (typed settings), methods a and b compared within the rows of those settings."""
    per_run = gather(evidence, table_ids)
    if where is not None and not per_run.empty:
        per_run = of_settings(per_run, where)
    by = "method" if where is not None else "label"
    rows = []
    for table_id in table_ids:
        of_table = per_run[per_run["table"] == table_id] if not per_run.empty else per_run
        joined = pairs(of_table, a, b, value, by)
        rows += [(table_id, r.model, margin(r.a, r.b), r.run_a, r.run_b) for r in joined.itertuples()]
    if not rows:
        return None
    per_cell = pd.Series([(r[0], r[1]) for r in rows]).value_counts()  # pairs of each (table, model)
    verdict, reason = paired_verdict([r[2] for r in rows], what, runs_per_cell=int(per_cell.min()))
    cells = ", ".join(f"{t} {m} {mg:+.3g}" for t, m, mg, _, _ in rows)
    ids = short([r[3] for r in rows] + [r[4] for r in rows])
    return Verdict(verdict, reason, f"{what}: {cells}", ids, tuple(r[2] for r in rows), PAIRED_TEST)


def difference(a: float, b: float) -> float:
    """The margin of "a is higher than b"."""
    return a - b


def log_ratio(slower: float, faster: float) -> float:
    """The margin of "`faster` takes less time than `slower`", scale-free across workloads."""
    return math.log(slower / faster)


def comparisons(
    evidence: Evidence,
    table_ids: tuple[str, ...],
    pairs: list[tuple[str, str, str]],
    value: str,
    margin: Callable[[float, float], float],
    missing: tuple[str, str],
    converged: tuple[str, ...] = (),
) -> Verdict:
    """Paired comparisons (row a, row b, what) over the tables' runs, merged into one verdict (see
    `combine`); not measurable, naming what is missing, where no pair has runs; not comparable
    where a compared run was cut short or a row of `converged` (a baseline) had not converged."""
    parts = [compare(evidence, table_ids, a, b, value, margin, what) for a, b, what in pairs]
    parts = [p for p in parts if p is not None]
    if not parts:
        return no_runs(*missing)
    per_run = gather(evidence, table_ids)
    merged = merge(evidence, parts, hardware_of(per_run))
    labels = tuple(dict.fromkeys(label for a, b, _ in pairs for label in (a, b)))
    merged = replace(merged, evidence=merged.evidence + contended_note(per_run, labels))
    guard = comparability(per_run, labels, converged)
    if guard is not None:
        return replace(merged, verdict=guard.verdict, reason=guard.reason)
    return merged


def contended_note(per_run: pd.DataFrame, labels: tuple[str, ...]) -> str:
    """'; N of the M compared runs were contended ...' where other processes used the machine
    during some of the compared runs (tag `contended`), else ''."""
    if per_run.empty or "contended" not in per_run:
        return ""
    compared = per_run[per_run["label"].isin(labels)]
    busy = compared[compared["contended"].astype(bool)]
    if busy.empty:
        return ""
    return (
        f"; {len(busy)} of the {len(compared)} compared runs were contended (other processes used the "
        f"machine: their times are not its alone): {', '.join(short(busy['run_id']))}"
    )


def merge(evidence: Evidence, parts: list[Verdict], hardware: str) -> Verdict:
    """One verdict from several comparisons (see `combine`), with all their evidence."""
    verdict = combine([p.verdict for p in parts])
    reason = " | ".join(p.reason for p in parts)
    text = " | ".join(p.evidence for p in parts if p.evidence)
    runs = tuple(dict.fromkeys(r for p in parts for r in p.runs))
    values = tuple(v for p in parts for v in p.values)
    test = "; ".join(dict.fromkeys(p.test for p in parts if p.test))
    return Verdict(verdict, reason, f"{text}; profile {evidence.profile}; {hardware}", runs, values, test)
