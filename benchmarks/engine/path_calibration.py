"""`calibrate-claims --path`: claims' error rates measured through the code that reads real runs
(docs/fidelity.md, "Error rates through the whole path").

`reports.claims.calibrate` puts margins straight into cells. Here each simulated store holds runs
as the runner writes them (`synthetic.write_job`: tags, params, a test-accuracy curve against the
training clock per epoch) for the jobs `run claims` would run for the claim, in a `MemoryStore`,
and the claim is judged from it by `Claim.judge`: selecting runs, rows, targets, censoring,
pairing and guards all run. A `PathCase` turns each part's true effect on its band's scale into
the rows' truths, so the scenarios are those of the cell calibration: every part at the paper's
effect (power), one part at its band's edge or at the opposite effect, the others at the paper's.

One store of 10 runs per cell is written per simulation and judged on its first 3, 5 and 10 runs
(the design's looks), so the three counts see nested runs, as a growing store does. The run-to-
run spreads are fitted to a real store (`fit_spreads`); docs/fidelity.md names it.
"""

from __future__ import annotations

import math
import os
import statistics
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context

import pandas as pd

from reports.claims import CLAIMS, Claim, Evidence
from reports.claims.calibrate import RUNS, Rates
from reports.claims.stats import NOT_REPRODUCED, REPRODUCED
from reports.memory_store import MemoryStore

from ..tables import TABLES
from .planner import plan_claims
from .synthetic import RowTruth, write_job

PROFILE = "quick"
SCENARIOS = ("paper", "diverged", "edge", "opposite")
FALSE = ("edge", "opposite")  # a part false, one at a time
TAU = 1.5  # epochs for a curve to rise by 1 - 1/e of its plateau
SECONDS = 40.0  # a quick CIFAR-10 ResNet-18 epoch on 2 cores (pd-stragglers' runs: 40-47 s)
CIFAR_BEST = 0.75  # a row's best test accuracy after its epochs at quick, before the effects


@dataclass(frozen=True)
class Spreads:
    """Run-to-run spreads of one workload: best test accuracy (`acc`, a fraction) and log seconds
    per epoch (`time`), pooled within rows, with the store and runs they were fitted to."""

    acc: float
    time: float
    source: str


@dataclass(frozen=True)
class Workloads:
    """The spreads of each simulated workload's rows."""

    cifar: Spreads
    imdb_lu: Spreads
    imdb_bu: Spreads

    def text(self) -> str:
        """One line per workload: its spreads and where they come from."""
        return "\n".join(
            f"  {name}: best accuracy sd {s.acc * 100:.2f} points, "
            f"log seconds per epoch sd {s.time:.3f} ({s.source})"
            for name, s in (("CIFAR-10", self.cifar), ("IMDb LU", self.imdb_lu), ("IMDb BU", self.imdb_bu))
        )


# Fitted by `fit_workloads` to results/claims-stragglers.db (pd-stragglers at quick, CIFAR-10
# ResNet-18, async_lu at 4 delays, 16 runs on 2 cores, 2026-11-27), the one stored CIFAR workload
# with replicated runs; every CIFAR row takes them. IMDb: no replicated runs stored here, so 000
# Table 6's own spreads of 3 runs (LU 85.15 +/- 0.15, BU 85.06 +/- 0.59), CIFAR's time spread.
CIFAR = Spreads(acc=0.0107, time=0.022, source="fitted: pd-stragglers quick, 16 runs in 4 rows, 2026-11-27")
DEFAULT = Workloads(
    CIFAR,
    Spreads(acc=0.0015, time=CIFAR.time, source="000 Table 6's LU; time as CIFAR's"),
    Spreads(acc=0.0059, time=CIFAR.time, source="000 Table 6's BU; time as CIFAR's"),
)


def row(best: float, seconds: float, epochs: int, spreads: Spreads, tau: float = TAU) -> RowTruth:
    """A row whose runs reach `best` test accuracy on average at their last epoch (of `epochs`),
    `seconds` per epoch: the plateau that curve's last epoch reaches."""
    reach = 1 - math.exp(-epochs / tau)
    return RowTruth(seconds, best / reach, tau, spreads.time, spreads.acc / reach)


# Each case: the part effects (on the bands' scales, in the claim's part order) -> the rows' truths.
Truths = Callable[[tuple[float, ...], Workloads], dict[str, RowTruth]]


def bu_fastest(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """Every other row slower than BU by exp(effect) per epoch; the curves alike, so the target
    (the lowest best) is reached after as many epochs in expectation."""
    (lead,) = effects
    slower = SECONDS * math.exp(lead)
    return {
        "async_bu": row(CIFAR_BEST, SECONDS, 5, w.cifar),
        **{m: row(CIFAR_BEST, slower, 5, w.cifar) for m in ("async_lu", "lapsgd", "lppsgd")},
    }


def lu_faster(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """LPP slower than LU by the every-cell part's effect, LAP by the best-cell part's."""
    every, best = effects
    return {
        "async_lu": row(CIFAR_BEST, SECONDS, 5, w.cifar),
        "lppsgd": row(CIFAR_BEST, SECONDS * math.exp(every), 5, w.cifar),
        "lapsgd": row(CIFAR_BEST, SECONDS * math.exp(best), 5, w.cifar),
    }


def async_more_accurate(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """LAP and LPP `effect` points below LU and BU."""
    (gap,) = effects
    return {
        **{m: row(CIFAR_BEST, SECONDS, 5, w.cifar) for m in ("async_lu", "async_bu")},
        **{m: row(CIFAR_BEST - gap / 100, SECONDS, 5, w.cifar) for m in ("lapsgd", "lppsgd")},
    }


def lu_more_accurate(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """CIFAR: BU the first part's points below LU; IMDb (table6): the second's."""
    cifar, imdb = effects
    return {
        "table1/async_lu": row(CIFAR_BEST, SECONDS, 5, w.cifar),
        "table1/async_bu": row(CIFAR_BEST - cifar / 100, SECONDS, 5, w.cifar),
        "table6/async_lu": row(0.85, 6.5, 8, w.imdb_lu),
        "table6/async_bu": row(0.85 - imdb / 100, 6.5, 8, w.imdb_bu),
    }


def imdb_twice(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """BU exp(first effect) slower per epoch than LU (each reaches its best at its last epoch), and
    the second effect's points less accurate."""
    speed, gap = effects
    return {
        "async_lu": row(0.85, 6.5, 8, w.imdb_lu),
        "async_bu": row(0.85 - gap / 100, 6.5 * math.exp(speed), 8, w.imdb_bu),
    }


def stragglers(effects: tuple[float, ...], w: Workloads) -> dict[str, RowTruth]:
    """LU's best accuracy moved by the effect (points) at each delay level, one epoch at quick."""
    (drop,) = effects
    delayed = [f"async_lu[straggler_delay_frac={d}]" for d in ("0.25", "0.5", "1")]
    return {
        "async_lu": row(0.48, SECONDS, 1, w.cifar, tau=0.5),
        **{m: row(0.48 + drop / 100, SECONDS * 1.1, 1, w.cifar, tau=0.5) for m in delayed},
    }


@dataclass(frozen=True)
class PathCase:
    """How a claim's stores are simulated: its rows' truths from its parts' effects, and the row
    (its truths' key) whose run diverges in the "diverged" scenario, which counts against the
    claim, with that row's epochs (it diverges at its last but one, at least its first)."""

    truths: Truths
    diverges: str
    epochs: int


CASES: dict[str, PathCase] = {
    "bu-fastest-to-target": PathCase(bu_fastest, "async_bu", 5),
    "lu-faster-than-lap-lpp": PathCase(lu_faster, "async_lu", 5),
    "async-more-accurate-than-lap-lpp": PathCase(async_more_accurate, "async_lu", 5),
    "lu-more-accurate-than-bu": PathCase(lu_more_accurate, "table1/async_lu", 5),
    "imdb-lu-twice-as-fast": PathCase(imdb_twice, "async_lu", 8),
    "004-stragglers-cost-under-2.5-points": PathCase(stragglers, "async_lu[straggler_delay_frac=1]", 1),
}


def truths_of(claim: Claim, scenario: str, false: int, workloads: Workloads = DEFAULT) -> dict[str, RowTruth]:
    """The rows' truths of a claim's stores in a scenario ("diverged": at the paper's effects, the
    first run of the case's row diverged)."""
    case = CASES[claim.id]
    truths = case.truths(effects(claim, scenario, false), workloads)
    if scenario == "diverged":
        at = max(1, case.epochs - 1)
        truths[case.diverges] = replace(truths[case.diverges], ends={0: ("diverged", at)})
    return truths


def effects(claim: Claim, scenario: str, false: int) -> tuple[float, ...]:
    """Each part's true effect: at the paper's, but part `false` at its edge or the opposite."""
    out = []
    for index, part in enumerate(claim.parts):
        value = part.paper
        if index == false and scenario == "edge":
            value = part.edge
        elif index == false and scenario == "opposite":
            value = 2 * part.edge - part.paper
        out.append(value)
    return tuple(out)


def simulated_store(claim: Claim, truths: dict[str, RowTruth], seed: int) -> MemoryStore:
    """The jobs `run claims --profile quick` runs for the claim, 10 per cell, written as the
    runner writes them with curves drawn from the truths (keyed by label, or table/label)."""
    store = MemoryStore()
    (plan,) = plan_claims([claim], TABLES, PROFILE, RUNS[-1], None)
    for job in plan.jobs:
        truth = truths.get(f"{job.table}/{job.row.label}", truths.get(job.row.label))
        if truth is not None:
            write_job(store, job, truth, seed)
    return store


def verdicts(claim: Claim, store: MemoryStore) -> dict[int, str]:
    """The claim's verdict on the store's first 3, 5 and 10 runs per cell."""
    out = {}
    for runs in RUNS:
        view = store.first_runs(runs)
        out[runs] = claim.judge(Evidence(view.uri, dict(TABLES), PROFILE)).verdict
    return out


def calibrate_path(
    sims: int = 100,
    seed: int = 0,
    only: tuple[str, ...] = (),
    workloads: Workloads = DEFAULT,
    workers: int = 0,
) -> list[Rates]:
    """Each path case's verdict shares in each scenario and runs per cell, `sims` stores each (a
    false scenario: its worst part, each part made false in turn), over `workers` processes (0:
    one per core)."""
    tasks = [
        (claim_id, scenario, false, sims, seed, workloads)
        for claim_id in CASES
        if not only or claim_id in only
        for scenario in SCENARIOS
        for false in (range(len(CLAIMS[claim_id].parts)) if scenario in FALSE else [0])
    ]
    with ProcessPoolExecutor(workers or os.cpu_count(), mp_context=get_context("spawn")) as pool:
        results = list(pool.map(simulate, tasks))
    worst: dict[tuple[str, str, int], Rates] = {}
    for rates in results:
        for rate in rates:
            key = (rate.claim, rate.scenario, rate.runs)
            if key not in worst or rate.reproduced > worst[key].reproduced:
                worst[key] = rate
    return list(worst.values())


def simulate(task: tuple[str, str, int, int, int, Workloads]) -> list[Rates]:
    """One claim's verdict shares in one scenario with part `false` made false, per runs per cell."""
    claim_id, scenario, false, sims, seed, workloads = task
    claim = CLAIMS[claim_id]
    truths = truths_of(claim, scenario, false, workloads)
    counts: dict[int, list[str]] = {n: [] for n in RUNS}
    base = [seed, zlib.crc32(claim_id.encode()), SCENARIOS.index(scenario), false]
    for sim in range(sims):
        store = simulated_store(claim, truths, seed=zlib.crc32(str([*base, sim]).encode()))
        for runs, verdict in verdicts(claim, store).items():
            counts[runs].append(verdict)
    return [shares(claim_id, scenario, runs, got) for runs, got in counts.items()]


def shares(claim: str, scenario: str, runs: int, verdicts: list[str]) -> Rates:
    """The share of each verdict among `verdicts`."""
    n = len(verdicts)
    reproduced, not_reproduced = verdicts.count(REPRODUCED) / n, verdicts.count(NOT_REPRODUCED) / n
    return Rates(claim, scenario, runs, reproduced, not_reproduced, 1 - reproduced - not_reproduced, n)


FIT_TABLES = ("table1", "table3", "table6", "pd-stragglers")  # the tables the path cases write


def fit_workloads(uri: str, profile: str = PROFILE) -> Workloads:
    """The default workloads with the spreads fitted to a store's finished runs of `profile` where
    it has replicated runs: CIFAR-10's from its ResNet-18 rows, IMDb's (both rows) from its LSTM's."""
    evidence = Evidence(uri, dict(TABLES), profile)
    frames = []
    for table in FIT_TABLES:
        runs = evidence.all_runs(table)
        if runs.empty:
            continue
        per_run = evidence.per_run(table)
        dataset = runs.set_index("run_id")["dataset"]
        frames.append(per_run.assign(table=table, dataset=[dataset.get(r) for r in per_run["run_id"]]))
    if not frames:
        return DEFAULT
    per_run = pd.concat(frames, ignore_index=True)
    per_run = per_run[(per_run["status"] == "finished") & (per_run["epochs"] > 0)]
    cifar = fitted(per_run[(per_run["dataset"] == "cifar10") & (per_run["model"] == "resnet18")], uri)
    imdb = fitted(per_run[per_run["dataset"] == "imdb"], uri)
    return Workloads(cifar or DEFAULT.cifar, imdb or DEFAULT.imdb_lu, imdb or DEFAULT.imdb_bu)


def fitted(per_run: pd.DataFrame, uri: str) -> Spreads | None:
    """The pooled within-row spreads of the runs' best test accuracy and log seconds per epoch (rows:
    table and label); None without a row of two runs."""
    groups = [g for _, g in per_run.groupby(["table", "label"]) if len(g) > 1]
    if not groups:
        return None
    dof = sum(len(g) - 1 for g in groups)

    def pooled(values) -> float:
        return math.sqrt(sum(statistics.variance(v) * (len(v) - 1) for v in values) / dof)

    acc = pooled([g["best_acc"].tolist() for g in groups])
    time = pooled(
        [[math.log(t / e) for t, e in zip(g["final_train_time_s"], g["epochs"], strict=True)] for g in groups]
    )
    runs = sum(len(g) for g in groups)
    return Spreads(acc, time, f"fitted: {uri}, {runs} runs in {len(groups)} rows")
