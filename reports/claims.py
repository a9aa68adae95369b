"""`report claims`: every claim of the papers (docs/references.md) with a verdict computed from the
runs in MLflow: reproduced, not reproduced, inconclusive, or not measurable here.

A claim is one entry of CLAIMS (`@register_claim` on its rule). A rule reads the evidence (the
finished runs of the tables it names, per-run values computed as the table reports compute them,
`perf` results) and returns a Verdict with the numbers, the runs' ids, the profile and hardware.
Comparisons between methods are paired by run index (the same seed); with fewer than MIN_PAIRS
pairs a rule says `inconclusive` and shows the margins; with more, a one-sided paired t-test at
ALPHA decides. Thresholds (β within 25 %, a ratio at least X) decide on the measured means.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from core.registry import Registry

from .runs import base_method, latest_per_cell, load_runs, time_to_accuracy
from .tables import PROFILE_ORDER, experiment_of, paper_beta, speedups, training_per_run

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
INCONCLUSIVE, NOT_MEASURABLE = "inconclusive", "not measurable here"
MIN_PAIRS = 3  # paired runs a comparison needs before a test decides it (the paper's 3 runs per cell)
ALPHA = 0.05  # one-sided level of the paired t-test


@dataclass(frozen=True)
class Verdict:
    """What a rule concluded, why, and from which numbers and runs."""

    verdict: str
    reason: str
    evidence: str = ""  # our numbers, the runs' ids, profile, hardware
    runs: tuple[str, ...] = ()
    values: tuple[float, ...] = ()  # the paired margins the verdict was computed from


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
            spec = self.specs[table_id]
            runs = load_runs(self.uri, experiment_of(spec))
            if not runs.empty:
                runs = runs[runs["profile"] == self.profile]
                if spec.methods:
                    runs = runs[runs["method"].map(base_method).isin(spec.methods)]
            self._cache[key] = latest_per_cell(runs)
        return self._cache[key]

    def rows(self, table_ids: tuple[str, ...], methods: tuple[str, ...]) -> list[str]:
        """Each method and, after it, each of its variants with runs in the tables (the LAP-SGD
        baselines also as their authors' code runs them: `lapsgd[authors_code]`)."""
        labels = set()
        for table_id in table_ids:
            runs = self.runs(table_id)
            labels |= set(runs["method"]) if not runs.empty else set()
        return [
            m
            for method in methods
            for m in [method, *sorted(v for v in labels if base_method(v) == method != v)]
        ]

    def per_run(self, table_id: str) -> pd.DataFrame:
        """Per run: best accuracy, times to accuracy (reports.tables.training_per_run), hardware."""
        key = ("per_run", table_id)
        if key not in self._cache:
            runs = self.runs(table_id)
            targets = self.specs[table_id].targets.get(self.profile, {})
            metrics = self.specs[table_id].metrics
            per_run = training_per_run(self.uri, runs, targets, metrics) if not runs.empty else pd.DataFrame()
            if not per_run.empty:
                extra = runs.set_index("run_id")
                per_run["hardware"] = [extra.at[r, "hardware"] for r in per_run["run_id"]]
                column = "metrics.staleness_mean"
                per_run["staleness"] = [
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


def pairs(per_run: pd.DataFrame, a: str, b: str, value: str) -> pd.DataFrame:
    """Rows (model, run_index, a, b, run ids) where methods a and b both have a run of that index."""
    if per_run.empty:
        return pd.DataFrame(columns=["model", "run_index", "a", "b", "run_a", "run_b"])
    left = per_run[per_run["method"] == a][["model", "run_index", value, "run_id"]]
    right = per_run[per_run["method"] == b][["model", "run_index", value, "run_id"]]
    joined = left.merge(right, on=["model", "run_index"], suffixes=("_a", "_b"))
    return joined.rename(
        columns={f"{value}_a": "a", f"{value}_b": "b", "run_id_a": "run_a", "run_id_b": "run_b"}
    )


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
            f"({agree} of {n} in the claim's direction)"
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
    return INCONCLUSIVE, f"within noise: {described}; p = {p_greater:.3g} > {ALPHA}"


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
) -> Verdict | None:
    """Paired comparison of method a against b over the tables' runs; None if no pair exists."""
    per_run = gather(evidence, table_ids)
    rows = []
    for table_id in table_ids:
        joined = pairs(per_run[per_run["table"] == table_id] if not per_run.empty else per_run, a, b, value)
        rows += [(table_id, r.model, margin(r.a, r.b), r.run_a, r.run_b) for r in joined.itertuples()]
    if not rows:
        return None
    per_cell = pd.Series([(r[0], r[1]) for r in rows]).value_counts()  # pairs of each (table, model)
    verdict, reason = paired_verdict([r[2] for r in rows], what, runs_per_cell=int(per_cell.min()))
    cells = ", ".join(f"{t} {m} {mg:+.3g}" for t, m, mg, _, _ in rows)
    ids = short([r[3] for r in rows] + [r[4] for r in rows])
    return Verdict(verdict, reason, f"{what}: {cells}", ids, tuple(r[2] for r in rows))


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
) -> Verdict:
    """Paired comparisons (method a, method b, what) over the tables' runs, merged into one verdict
    (see `combine`); not measurable, naming what is missing, where no pair has runs."""
    parts = [compare(evidence, table_ids, a, b, value, margin, what) for a, b, what in pairs]
    parts = [p for p in parts if p is not None]
    if not parts:
        return no_runs(*missing)
    return merge(evidence, parts, hardware_of(gather(evidence, table_ids)))


def merge(evidence: Evidence, parts: list[Verdict], hardware: str) -> Verdict:
    """One verdict from several comparisons (see `combine`), with all their evidence."""
    verdict = combine([p.verdict for p in parts])
    reason = " | ".join(p.reason for p in parts)
    text = " | ".join(p.evidence for p in parts if p.evidence)
    runs = tuple(dict.fromkeys(r for p in parts for r in p.runs))
    values = tuple(v for p in parts for v in p.values)
    return Verdict(verdict, reason, f"{text}; profile {evidence.profile}; {hardware}", runs, values)


# --- the claims -----------------------------------------------------------------------------------
ACCURACY_TABLES = ("table1", "table3", "table6")  # CIFAR-10, CIFAR-100, IMDb: LU and BU runs
TTA_TABLES = ("table1", "table3")


@register_claim(
    id="lu-more-accurate-than-bu",
    source="000 Tables 2, 4, 6; Figures 2-4",
    statement="Async LU reaches a higher best test accuracy than Async BU, on every workload.",
    paper=(
        "CIFAR-10 93.7 vs 92.7 (R18), 93.9 vs 93.2 (R50); CIFAR-100 73.9 vs 71.8, 76.2 vs 73.7; "
        "IMDb 85.15 vs 85.06"
    ),
    decided_by="LU minus BU best test accuracy, paired by run index, in the runs of table1, table3, table6",
    settle="3 runs per cell: `run table1 --runs 3`, `run table3 --runs 3`, `run table6 --runs 3`",
)
def lu_more_accurate_than_bu(evidence: Evidence) -> Verdict:
    pairs = [("async_lu", "async_bu", "LU - BU best accuracy")]
    missing = ("table1/table3/table6 with both async_lu and async_bu", "run fig3, fig2 or table6")
    return comparisons(evidence, ACCURACY_TABLES, pairs, "best_acc", difference, missing)


@register_claim(
    id="bu-fastest-to-target",
    source="000 Tables 1, 3",
    statement="Async BU reaches the target accuracy fastest of Async LU/BU, LAP-SGD and LPP-SGD.",
    paper="CIFAR-10 R18: BU 173.4 s vs LU 223.8, LPP 461.0, LAP 706.3; similar on R50 and CIFAR-100",
    decided_by=(
        "training time to the lowest best accuracy of the model's runs (the paper's rule), "
        "log(t_other / t_BU) paired by run index against each other method, table1 and table3"
    ),
    settle="3 runs per cell of table1 and table3 (`run table1 --runs 3`)",
)
def bu_fastest_to_target(evidence: Evidence) -> Verdict:
    others = evidence.rows(TTA_TABLES, ("async_lu", "lapsgd", "lppsgd"))
    pairs = [(other, "async_bu", f"log(t_{other}/t_BU)") for other in others]
    return comparisons(evidence, TTA_TABLES, pairs, "tta_worst_s", log_ratio, ("table1/table3", "run table1"))


@register_claim(
    id="lu-faster-than-lap-lpp",
    source="000 Tables 1, 3",
    statement="Async LU reaches the target faster than LAP-SGD and LPP-SGD, up to 2.97x.",
    paper="CIFAR-100 R18: LU 226.4 s vs LAP 667.1 s (2.95x), LPP 672.9 s (2.97x); CIFAR-10 R18 3.16x / 2.06x",
    decided_by=(
        "log(t_LAP / t_LU), log(t_LPP / t_LU) to the model's lowest best accuracy, paired (table1, 3); "
        "against each reading of LAP/LPP-SGD with runs (002's text, and `reading=authors_code`)"
    ),
    settle="3 runs per cell of table1 and table3",
)
def lu_faster_than_lap_lpp(evidence: Evidence) -> Verdict:
    # Against each reading of the baselines there are runs of (`run table1 --set reading=authors_code`).
    pairs = [
        (base, "async_lu", f"log(t_{base}/t_LU)") for base in evidence.rows(TTA_TABLES, ("lapsgd", "lppsgd"))
    ]
    missing = ("table1/table3 with async_lu and lapsgd/lppsgd", "run table1 (or table3)")
    verdict = comparisons(evidence, TTA_TABLES, pairs, "tta_worst_s", log_ratio, missing)
    if not verdict.values:
        return verdict
    best = math.exp(max(verdict.values))
    return replace(verdict, evidence=f"largest speed-up {best:.2f}x; {verdict.evidence}")


@register_claim(
    id="async-more-accurate-than-lap-lpp",
    source="000 Tables 2, 4",
    statement="The async methods (LU and BU) reach a higher best accuracy than LAP-SGD and LPP-SGD.",
    paper="CIFAR-10 R18: LU 93.7, BU 92.7 vs LAP 88.2, LPP 87.8; CIFAR-100 R18: 73.9, 71.8 vs 61.3, 61.0",
    decided_by="best accuracy of each async method minus each baseline, paired by run index, table1/table3",
    settle="3 runs per cell of table1 and table3",
)
def async_more_accurate_than_lap_lpp(evidence: Evidence) -> Verdict:
    pairs = [
        (ours, base, f"{ours} - {base} best accuracy")
        for ours in ("async_lu", "async_bu")
        for base in evidence.rows(TTA_TABLES, ("lapsgd", "lppsgd"))
    ]
    missing = ("table1/table3 with async and LAP/LPP runs", "run table1 (or table3)")
    return comparisons(evidence, TTA_TABLES, pairs, "best_acc", difference, missing)


@register_claim(
    id="lu-staleness-below-bu-grows-with-depth",
    source="000 §3.4",
    statement="Layer-wise updates are less stale than block updates; staleness grows with the model's depth.",
    paper="§3.4: LU's expected staleness is below BU's; τ = βT(M-1)/2 grows with the number of layers M",
    decided_by=(
        "the runs' last-epoch `staleness_mean`: BU - LU paired by run index (table1, table3, table6), and LU "
        "ResNet-50 - ResNet-18 paired by run index (table1, table3)"
    ),
    settle="3 runs per cell of table1 or table3 (both ResNets)",
)
def lu_staleness(evidence: Evidence) -> Verdict:
    below = compare(
        evidence,
        ACCURACY_TABLES,
        "async_bu",
        "async_lu",
        "staleness",
        difference,
        "BU - LU staleness",
    )
    per_run = gather(evidence, TTA_TABLES)
    deeper = None
    if not per_run.empty:
        lu = per_run[per_run["method"] == "async_lu"]
        r18 = lu[lu["model"] == "resnet18"][["table", "run_index", "staleness", "run_id"]]
        r50 = lu[lu["model"] == "resnet50"][["table", "run_index", "staleness", "run_id"]]
        joined = r50.merge(r18, on=["table", "run_index"], suffixes=("_50", "_18"))
        if not joined.empty:
            margins = list(joined["staleness_50"] - joined["staleness_18"])
            verdict, reason = paired_verdict(margins, "LU ResNet-50 - ResNet-18 staleness")
            cells = ", ".join(
                f"{t} run {i} {m:+.3g}"
                for t, i, m in zip(joined["table"], joined["run_index"], margins, strict=True)
            )
            deeper = Verdict(
                verdict,
                reason,
                f"LU R50 - R18 staleness: {cells}",
                short([*joined["run_id_50"], *joined["run_id_18"]]),
            )
    parts = [p for p in (below, deeper) if p is not None]
    if not parts:
        return no_runs("table1/table3/table6 with async runs", "run fig3 (both ResNets)")
    if deeper is None:
        parts.append(Verdict(INCONCLUSIVE, "no LU runs of both ResNets to compare depths"))
    return merge(evidence, parts, hardware_of(gather(evidence, ACCURACY_TABLES)))


@register_claim(
    id="beta-about-2",
    source="000 Table 9",
    statement="The backward pass takes about twice as long as the forward pass (β ≈ 2).",
    paper="A100: ResNet-18 β = 0.0102 / 0.0049 = 2.08; ResNet-50 β = 0.0299 / 0.0166 = 1.80",
    decided_by="β = backward / forward of the table9 runs, per model, within 25 % of the paper's",
    settle="`run table9` (3 runs per model) on the hardware to compare",
)
def beta_about_2(evidence: Evidence) -> Verdict:
    runs = evidence.runs("table9")
    if runs.empty or "metrics.beta" not in runs:
        return no_runs("table9", "run table9")
    spec = evidence.specs["table9"]
    lines, ok = [], []
    for model, group in runs.groupby("model"):
        ours = float(group["metrics.beta"].mean())
        cell = spec.paper.get(model)
        if cell is None:
            continue
        paper = paper_beta(cell)
        ok.append(abs(ours / paper - 1) <= 0.25)
        lines.append(
            f"{model} β {ours:.2f} over {len(group)} run(s) vs {paper:.2f} ({ours / paper - 1:+.0%})"
        )
    verdict = REPRODUCED if ok and all(ok) else NOT_REPRODUCED
    reason = (
        "every model within 25 % of the paper's β"
        if verdict == REPRODUCED
        else "a model's β is off by more than 25 %"
    )
    return Verdict(
        verdict,
        reason,
        f"{'; '.join(lines)}; profile {evidence.profile}; {hardware_of(runs)}",
        short(runs["run_id"]),
    )


@register_claim(
    id="speedup-approaches-1-plus-beta",
    source="000 §3.3",
    statement="With enough backward threads, Async LU's speed-up over backprop approaches 1 + β.",
    paper="§3.3: the forward/backward split bounds the speed-up by 1 + β (≈ 3 for β ≈ 2)",
    decided_by=(
        "`perf async` logged to MLflow: async_lu / bp samples/s with one intra-op thread each, over the "
        "bound min(1 + β, cores); reproduced at >= 80 % of the bound"
    ),
    settle="`python -m benchmarks perf async` (on a machine with at least 1 + β cores or a GPU)",
)
def speedup_approaches_bound(evidence: Evidence) -> Verdict:
    runs = evidence.perf("async")
    if runs.empty:
        return Verdict(
            NOT_MEASURABLE, "no `perf async` result in the store; run `python -m benchmarks perf async`"
        )
    newest = runs.iloc[0]
    ratio, bound, beta = (float(newest[f"metrics.{k}"]) for k in ("ratio_1thread", "bound", "beta"))
    cores = float(newest.get("metrics.cores", math.nan))
    share = ratio / bound
    verdict = REPRODUCED if share >= 0.8 else NOT_REPRODUCED
    capped = (
        f"; the bound is capped by {cores:.0f} cores (1 + β = {1 + beta:.2f})"
        if bound < 1 + beta - 1e-9
        else ""
    )
    return Verdict(
        verdict,
        f"{share:.0%} of the bound {'>=' if verdict == REPRODUCED else '<'} 80 %{capped}",
        f"speed-up {ratio:.2f}x, bound {bound:.2f}, β {beta:.2f}; {newest.get('hardware', 'unknown')}",
        short([newest["run_id"]]),
    )


def speedup_cells(evidence: Evidence, table_ids: tuple[str, ...]) -> pd.DataFrame:
    """Per model and run index, Async LU's and DDP's speed-up over bp (reports.tables.speedups)."""
    frames = []
    for table_id in table_ids:
        per_run = evidence.per_run(table_id)
        if not per_run.empty:
            ratios = speedups(per_run)
            if not ratios.empty:
                frames.append(ratios.assign(table=table_id))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@register_claim(
    id="lu-speedup-about-ddp",
    source="000 Tables 7, 8",
    statement="On several devices Async LU's speed-up over single-device backprop is about DDP's.",
    paper="CIFAR-10 R18 1.86 vs 1.90, R50 2.02 vs 2.38; CIFAR-100 R18 1.83 vs 1.86, R50 2.02 vs 2.30 (3 GPU)",
    decided_by=(
        "speed-up over bp to the lowest best accuracy (table7, table8); LU / DDP per model within "
        "[0.75, 1.33] (the paper's own ratios lie in 0.85-0.98)"
    ),
    settle="3 runs per cell of table7 / table8 on several devices (`run table7 --runs 3 --devices 3`)",
)
def lu_speedup_about_ddp(evidence: Evidence) -> Verdict:
    cells = speedup_cells(evidence, ("table7", "table8"))
    if cells.empty:
        return no_runs("table7/table8 with bp, async_lu and ddp", "run table7")
    lines, ok, counts = [], [], []
    for (table, model), group in cells.groupby(["table", "model"]):
        lu = group[group["method"] == "async_lu"]["speedup"]
        ddp = group[group["method"] == "ddp"]["speedup"]
        if lu.empty or ddp.empty:
            continue
        ratio = float(lu.mean() / ddp.mean())
        ok.append(0.75 <= ratio <= 1.33)
        counts.append(min(len(lu), len(ddp)))
        lines.append(
            f"{table} {model}: LU {lu.mean():.2f}x, DDP {ddp.mean():.2f}x, ratio {ratio:.2f} "
            f"({counts[-1]} run(s))"
        )
    if not ok:
        return no_runs("table7/table8 with both async_lu and ddp", "run table7")
    hardware = hardware_of(gather(evidence, ("table7", "table8")))
    text = f"{'; '.join(lines)}; profile {evidence.profile}; {hardware}"
    if gpus(hardware) < 2:
        return Verdict(
            NOT_MEASURABLE,
            "needs several GPUs: these runs' devices are processes on one machine's CPU cores (or one GPU), "
            "whose speed-up over bp measures core sharing, not the paper's devices",
            text,
        )
    if min(counts) < MIN_PAIRS:
        rule = "within" if all(ok) else "outside"
        return Verdict(
            INCONCLUSIVE,
            f"too few runs: {min(counts)} per cell, {MIN_PAIRS} needed (the ratios are {rule} the band)",
            text,
        )
    verdict = REPRODUCED if all(ok) else NOT_REPRODUCED
    return Verdict(
        verdict,
        "every model's ratio in [0.75, 1.33]" if all(ok) else "a model's ratio is outside [0.75, 1.33]",
        text,
    )


@register_claim(
    id="imagenet-same-accuracy-3x-faster",
    source="000 Table 5",
    statement="On ImageNet-1k, Async LU on 3 devices reaches bp's accuracy about 3x faster.",
    paper="ResNet-50: LU 73.42 % in 134.24 ks vs bp 73.40 % in 403.77 ks (3.0x)",
    decided_by="table5 runs on real ImageNet: best accuracy within 1 point, bp's / LU's time to best >= 2.5",
    settle="ImageNet-1k on disk and 3 GPUs: `run table5 --profile paper`",
)
def imagenet_claim(evidence: Evidence) -> Verdict:
    runs = evidence.runs("table5")
    source = "params.data_source"
    real = runs[runs[source].fillna("synthetic") != "synthetic"] if source in runs else runs.iloc[0:0]
    if real.empty or evidence.profile == "smoke":
        return Verdict(
            NOT_MEASURABLE, "needs ImageNet-1k on disk (no table5 run on real ImageNet here) and GPUs"
        )
    per_run = evidence.per_run("table5")
    per_run = per_run[per_run["run_id"].isin(real["run_id"])]
    acc = pairs(per_run, "async_lu", "bp", "best_acc")
    tta = pairs(per_run, "async_lu", "bp", "tta_best_s")
    if acc.empty:
        return no_runs("table5 with both async_lu and bp", "run table5")
    ratios = list(tta["b"] / tta["a"])
    gaps = list((acc["a"] - acc["b"]) * 100)
    gaps_text = ", ".join(f"{g:+.2f}" for g in gaps)
    ratios_text = ", ".join(f"{r:.2f}x" for r in ratios)
    text = (
        f"accuracy gap (points) {gaps_text}; bp/LU time {ratios_text}; profile {evidence.profile}; "
        f"{hardware_of(per_run)}"
    )
    holds = all(abs(g) <= 1 for g in gaps) and all(r >= 2.5 for r in ratios)
    if len(ratios) < MIN_PAIRS:
        return Verdict(
            INCONCLUSIVE,
            f"too few runs: {len(ratios)} pair(s), {MIN_PAIRS} needed "
            f"(they {'agree' if holds else 'disagree'})",
            text,
        )
    return Verdict(
        REPRODUCED if holds else NOT_REPRODUCED,
        "accuracy within 1 point and >= 2.5x faster in every pair" if holds else "a pair misses",
        text,
    )


@register_claim(
    id="imdb-lu-twice-as-fast",
    source="000 Table 6, Figure 4",
    statement="On IMDb, Async LU reaches the same accuracy as Async BU about twice as fast.",
    paper="LU 85.15 % in 49.3 s (6 epochs) vs BU 85.06 % in 83.41 s (12 epochs): 1.7x in time, 2x in epochs",
    decided_by=(
        "table6 runs paired by run index: best accuracies within 1 point, and BU's / LU's time to the lower "
        "of the two best accuracies >= 1.6 (log ratio tested against log 1.6)"
    ),
    settle="3 runs per method: `run table6 --runs 3`",
)
def imdb_claim(evidence: Evidence) -> Verdict:
    per_run = evidence.per_run("table6")
    if per_run.empty:
        return no_runs("table6", "run table6")
    margins, lines, ids, gaps = [], [], [], []
    lu = per_run[per_run["method"] == "async_lu"].set_index("run_index")
    bu = per_run[per_run["method"] == "async_bu"].set_index("run_index")
    for index in sorted(set(lu.index) & set(bu.index)):
        target = min(lu.at[index, "best_acc"], bu.at[index, "best_acc"])
        t_lu = time_to_accuracy(lu.at[index, "_curve"], target)[0]
        t_bu = time_to_accuracy(bu.at[index, "_curve"], target)[0]
        margins.append(math.log(t_bu / t_lu) - math.log(1.6))
        gaps.append((lu.at[index, "best_acc"] - bu.at[index, "best_acc"]) * 100)
        lines.append(f"run {index}: BU/LU {t_bu / t_lu:.2f}x to {target:.3f}, LU-BU {gaps[-1]:+.2f} points")
        ids += [lu.at[index, "run_id"], bu.at[index, "run_id"]]
    if not margins:
        return no_runs("table6 with both async_lu and async_bu", "run table6")
    verdict, reason = paired_verdict(margins, "log(t_BU/t_LU) - log 1.6")
    if any(abs(g) > 1 for g in gaps) and verdict == REPRODUCED:
        verdict, reason = NOT_REPRODUCED, f"{reason}; but the accuracies differ by more than 1 point"
    return Verdict(
        verdict, reason, f"{'; '.join(lines)}; profile {evidence.profile}; {hardware_of(per_run)}", short(ids)
    )


# --- 004 (the later version of 000) -----------------------------------------------------------------
def cell_rows(per_run: pd.DataFrame, method: str) -> pd.DataFrame:
    """The runs of `method`'s cells (`async_lu[F=1,B=2]`, ...), with the cell in a column."""
    if per_run.empty:
        return per_run
    rows = per_run[per_run["method"].map(base_method) == method]
    return rows.assign(cell=[label.partition("[")[2].rstrip("]") for label in rows["method"]])


@register_claim(
    id="004-thread-ratio-1-2-best",
    source="004",
    statement=(
        "A 1:2 forward:backward thread ratio matches the 2x longer backward pass and is the best ratio."
    ),
    paper="004: 1 forward and 2 backward threads raise hardware utilisation (no other ratio reported)",
    decided_by=(
        "pd-threads: log(samples/s at F=1,B=2 / the best of the other ratios), per method, model and "
        "run index"
    ),
    settle="3 runs per cell of pd-threads (F:B in 1:1, 1:2, 1:3, 2:2, 2:4)",
)
def thread_ratio_1_2_best(evidence: Evidence) -> Verdict:
    per_run = evidence.per_run("pd-threads")
    margins, lines, ids = [], [], []
    for method in ("async_lu", "async_bu"):
        rows = cell_rows(per_run, method)
        for (model, run_index), group in rows.groupby(["model", "run_index"]) if not rows.empty else []:
            rates = dict(zip(group["cell"], group["samples_per_s"], strict=True))
            others = {c: r for c, r in rates.items() if c != "F=1,B=2"}
            if "F=1,B=2" not in rates or not others:
                continue
            best = max(others, key=others.get)
            margins.append(math.log(rates["F=1,B=2"] / others[best]))
            lines.append(
                f"{method} {model} run {run_index}: 1:2 {rates['F=1,B=2']:.0f}/s, "
                f"best other {best} {others[best]:.0f}/s"
            )
            ids += list(group["run_id"])
    if not margins:
        return no_runs("pd-threads (the 1:2 cell and another)", "run pd-threads")
    fewest = int(per_run.groupby("method").size().min())
    verdict, reason = paired_verdict(margins, "log(rate at 1:2 / best other rate)", runs_per_cell=fewest)
    text = f"{'; '.join(lines)}; profile {evidence.profile}; {hardware_of(per_run)}"
    return Verdict(verdict, reason, text, short(ids), tuple(margins))


@register_claim(
    id="004-mfu-above-ddp",
    source="004",
    statement="PD-ASGD's model FLOPs utilisation is above DDP's.",
    paper="004: MFU 53.8 % (PD-ASGD) vs 35.1 % (DDP), ResNet-18",
    decided_by=(
        "MFU (mean over epochs) of async_lu - ddp, paired by run index: pd-headline, and pd-stragglers "
        "without delay"
    ),
    settle="3 runs per cell of pd-headline (paper profile on GPUs)",
)
def mfu_above_ddp(evidence: Evidence) -> Verdict:
    parts = [
        compare(evidence, ("pd-headline",), "async_lu", "ddp", "mfu", difference, "MFU LU - DDP"),
        compare(
            evidence,
            ("pd-stragglers",),
            "async_lu[delay=0%]",
            "ddp[delay=0%]",
            "mfu",
            difference,
            "MFU LU - DDP, no delay",
        ),
    ]
    parts = [p for p in parts if p is not None]
    if not parts:
        return no_runs("pd-headline or pd-stragglers with async_lu and ddp", "run pd-headline")
    return merge(evidence, parts, hardware_of(gather(evidence, ("pd-headline", "pd-stragglers"))))


@register_claim(
    id="004-stragglers-cost-under-2.5-points",
    source="004",
    statement=(
        "Straggler delays cost PD-ASGD under 2.5 points of accuracy, because faster devices do not wait."
    ),
    paper="004: accuracy within 2.5 points under straggler delays",
    decided_by=(
        "pd-stragglers: 2.5 - (async_lu's best accuracy without delay - with it), in points, per delay "
        "level and run index; ddp's and lapsgd's drops and time ratios shown beside"
    ),
    settle="3 runs per cell of pd-stragglers",
)
def stragglers_under_2_5_points(evidence: Evidence) -> Verdict:
    per_run = evidence.per_run("pd-stragglers")
    margins, lines, ids = [], [], []
    for method in ("async_lu", "ddp", "lapsgd"):
        rows = cell_rows(per_run, method)
        for run_index, group in rows.groupby("run_index") if not rows.empty else []:
            by_cell = group.set_index("cell")
            if "delay=0%" not in by_cell.index:
                continue
            ref = by_cell.loc["delay=0%"]
            for cell, run in by_cell.drop(index="delay=0%").iterrows():
                drop = (ref["best_acc"] - run["best_acc"]) * 100
                slower = run["tta_target_s"] / ref["tta_target_s"]
                lines.append(
                    f"{method} {cell} run {run_index}: drop {drop:+.2f} pts, time to target x{slower:.2f}"
                )
                if method == "async_lu":
                    margins.append(2.5 - drop)
                    ids += [ref["run_id"], run["run_id"]]
    if not margins:
        return no_runs("pd-stragglers with async_lu at delay 0 and another level", "run pd-stragglers")
    fewest = int(cell_rows(per_run, "async_lu").groupby("cell").size().min())
    verdict, reason = paired_verdict(margins, "2.5 - LU's accuracy drop (points)", runs_per_cell=fewest)
    text = f"{'; '.join(lines)}; profile {evidence.profile}; {hardware_of(per_run)}"
    return Verdict(verdict, reason, text, short(dict.fromkeys(ids)), tuple(margins))


@register_claim(
    id="004-faster-than-lppsgd-and-ddp",
    source="004",
    statement=(
        "PD-ASGD reaches its target 2.14x faster than LPP-SGD, 1.34x faster than DDP (CIFAR-100, ResNet-18)."
    ),
    paper="004: 2.14x over LPP-SGD, 1.34x over DDP",
    decided_by=(
        "pd-headline: log(t_LPP / t_LU) and log(t_DDP / t_LU) to the fixed target, paired by run index "
        "(quick is a CIFAR-10 stand-in); the ratios shown against 2.14 and 1.34"
    ),
    settle="3 runs per cell of pd-headline at the paper profile (CIFAR-100, GPUs)",
)
def faster_than_lppsgd_and_ddp(evidence: Evidence) -> Verdict:
    pairs = [("lppsgd", "async_lu", "log(t_LPP/t_LU)"), ("ddp", "async_lu", "log(t_DDP/t_LU)")]
    missing = ("pd-headline", "run pd-headline")
    verdict = comparisons(evidence, ("pd-headline",), pairs, "tta_target_s", log_ratio, missing)
    if evidence.profile != "paper" and verdict.verdict != NOT_MEASURABLE:
        verdict = replace(verdict, evidence=f"CIFAR-10 stand-in, not 004's CIFAR-100; {verdict.evidence}")
    return verdict


# --- the report -----------------------------------------------------------------------------------
def smoke_caveat(verdict: Verdict, profile: str) -> Verdict:
    """Smoke runs (synthetic data, 2 epochs) decide nothing: their verdicts read inconclusive."""
    if profile != "smoke" or verdict.verdict not in (REPRODUCED, NOT_REPRODUCED):
        return verdict
    reason = (
        "smoke runs (synthetic data, 2 epochs) cannot decide it; "
        f"the rule alone says {verdict.verdict}: {verdict.reason}"
    )
    return Verdict(INCONCLUSIVE, reason, verdict.evidence, verdict.runs)


def evaluate(uri: str, specs: dict, profile: str | None = None) -> list[tuple[Claim, str, Verdict]]:
    """(claim, profile, verdict) for every claim: in `profile`, or in the first of paper, quick,
    smoke where the claim is measurable."""
    results = []
    evidence = {p: Evidence(uri, specs, p) for p in ([profile] if profile else PROFILE_ORDER)}
    for claim in CLAIMS.values():
        chosen = None
        for prof, ev in evidence.items():
            verdict = smoke_caveat(claim.rule(ev), prof)
            chosen = chosen or (prof, verdict)
            if verdict.verdict != NOT_MEASURABLE:
                chosen = (prof, verdict)
                break
        results.append((claim, *chosen))
    return results


def cell(text: str) -> str:
    """Text safe in a Markdown table cell."""
    return text.replace("|", "/").replace("\n", " ")


def write_claims(uri: str, specs: dict, out_dir: Path, profile: str | None = None) -> list[Path]:
    """reports/out/claims.md and claims.csv: one row per claim with its verdict; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = evaluate(uri, specs, profile)
    rows = []
    for claim, prof, verdict in results:
        runs = f" Runs: {', '.join(verdict.runs)}." if verdict.runs else ""
        rows.append(
            dict(
                claim=f"**{claim.id}** ({claim.source}): {claim.statement}",
                paper=claim.paper,
                ours=(verdict.evidence or f"– (profile {prof})") + runs,
                verdict=f"**{verdict.verdict}**: {verdict.reason}",
                settle=claim.settle,
                profile=prof,
            )
        )
    counts = pd.Series([v.verdict for _, _, v in results]).value_counts()
    lines = [
        "# Claims: computed verdicts",
        "",
        f"Each claim's verdict is computed from the runs in {uri} (`reports/claims.py`): methods are "
        f"paired by run index; from {MIN_PAIRS} pairs a one-sided paired t-test at {ALPHA} decides, "
        "with fewer the verdict is inconclusive.",
        "",
        "Totals: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".",
        "",
        "| claim | paper's evidence | our evidence | verdict | what would settle it |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {cell(row['claim'])} | {cell(row['paper'])} | {cell(row['ours'])} "
            f"| {cell(row['verdict'])} | {cell(row['settle'])} |"
        )
    md_path, csv_path = out_dir / "claims.md", out_dir / "claims.csv"
    md_path.write_text("\n".join(lines) + "\n")
    pd.DataFrame(
        [
            dict(
                id=c.id,
                source=c.source,
                verdict=v.verdict,
                reason=v.reason,
                evidence=v.evidence,
                runs=" ".join(v.runs),
                profile=p,
            )
            for c, p, v in results
        ]
    ).to_csv(csv_path, index=False)
    return [md_path, csv_path]
