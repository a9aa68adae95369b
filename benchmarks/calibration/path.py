"""`calibrate-claims --path`: claims' error rates measured through the code that reads real runs
(docs/log/fidelity.md, "Error rates through the whole path").

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

import functools
import math
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context

import numpy as np
import pandas as pd

from reports.claims import CLAIMS, Claim, Evidence
from reports.claims.calibrate import RUNS, Rates, pooled_sd, shares
from reports.claims.stats import NOT_REPRODUCED, REPRODUCED
from reports.memory_store import MemoryStore

from ..engine.planner import plan_claims
from ..tables import TABLES
from .cases import CASES
from .stores import PerfTruth, RowTruth, write_job, write_perf
from .workloads import DEFAULT, Spreads, Workloads

PROFILE = "quick"  # the profile of every case but those that only the paper profile can decide
SCENARIOS = ("paper", "diverged", "edge", "opposite")
FALSE = ("edge", "opposite")  # a part false, one at a time


def truths_of(claim: Claim, scenario: str, false: int, workloads: Workloads = DEFAULT) -> dict[str, RowTruth]:
    """The rows' truths of a claim's stores in a scenario ("diverged": at the paper's effects, the
    first run of the case's row diverged)."""
    case = CASES[claim.id]
    truths = case.truths(effects(claim, scenario, false), workloads)
    if scenario == "diverged" and case.diverges:
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


def simulated_store(
    claim: Claim, truths: dict[str, RowTruth | PerfTruth], seed: int, store: MemoryStore | None = None
) -> MemoryStore:
    """The jobs and perf results `run claims --profile quick` makes for the claim, 10 per cell,
    written as the runner writes them with values drawn from the truths (a job's keyed by
    model/label, table/label, label or table/model; a perf benchmark's perf/NAME), on the case's
    hardware, into `store` (a new MemoryStore where None; a Tracker takes the same calls); a job of a
    row without a truth is left out."""
    store = MemoryStore() if store is None else store
    plan, hardware = planned(claim.id), CASES[claim.id].hardware
    written = set()

    def write(jobs) -> None:
        for job in jobs:
            keys = (
                f"{job.model}/{job.row.label}",
                f"{job.table}/{job.row.label}",
                job.row.label,
                f"{job.table}/{job.model}",
            )
            truth = next((truths[k] for k in keys if k in truths), None)
            if truth is not None and (job.table, job.key) not in written:  # `run` skips a job done
                write_job(store, job, truth, seed, hardware)
                written.add((job.table, job.key))

    write(plan.jobs)
    for stage in plan.later:  # a stage that picks its rows from the earlier runs (a screening)
        write(stage.chosen(store.uri) or [])
    for name in plan.perf:
        if (truth := truths.get(f"perf/{name}")) is not None:
            for index in range(plan.perf_runs):
                write_perf(store, name, truth, index, seed, hardware)
    return store


@functools.cache
def planned(claim_id: str):
    """What `run claims --profile quick` runs for the claim up to its design's last look (10 runs a
    cell, after a screening run where the plan has one), planned once a process."""
    claim = CLAIMS[claim_id]
    (plan,) = plan_claims([claim], TABLES, CASES[claim_id].profile, claim.plan.runs_at(claim.plan.last), None)
    return plan


def verdicts(claim: Claim, store: MemoryStore) -> dict[int, str]:
    """The claim's verdict at each look of its design (3, 5 and 10 runs a cell), on the store as it
    stood at that look (`Evidence.at_look` of `Plan.runs_at`: a screening run first, where the plan
    has one). The looks share the runs' values, read once: a look reads what the store held then
    (tests/test_path_calibration.py checks it against a store of only those runs)."""
    evidence = Evidence(store.uri, dict(TABLES), CASES[claim.id].profile)
    looks = enumerate(RUNS, start=1)
    return {runs: claim.judge(evidence.at_look(claim.plan.runs_at(look))).verdict for look, runs in looks}


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
        if scenario != "diverged" or CASES[claim_id].diverges  # perf results do not diverge
        for false in (range(len(CLAIMS[claim_id].parts)) if scenario in FALSE else [0])
    ]
    with ProcessPoolExecutor(workers or os.cpu_count(), mp_context=get_context("spawn")) as pool:
        results = list(pool.map(simulate, tasks))
    worst: dict[tuple[str, str, int], Rates] = {}
    for rates in results:
        for rate in rates:
            key = (rate.claim, rate.scenario, rate.runs)
            kept = worst.get(key, rate)
            if rate.reproduced > kept.reproduced:
                kept = rate
            worst[key] = replace(kept, changed=max(kept.changed, rate.changed))  # of any part
    return list(worst.values())


def simulate(task: tuple[str, str, int, int, int, Workloads]) -> list[Rates]:
    """One claim's verdict shares in one scenario with part `false` made false, per runs per cell,
    and the share of stores whose verdict changed after an earlier look decided it."""
    claim_id, scenario, false, sims, seed, workloads = task
    claim = CLAIMS[claim_id]
    truths = truths_of(claim, scenario, false, workloads)
    counts: dict[int, list[str]] = {n: [] for n in RUNS}
    changed = dict.fromkeys(RUNS, 0)
    base = [seed, zlib.crc32(claim_id.encode()), SCENARIOS.index(scenario), false]
    for sim in range(sims):
        store = simulated_store(claim, truths, seed=zlib.crc32(str([*base, sim]).encode()))
        decided = None
        for runs, verdict in verdicts(claim, store).items():
            counts[runs].append(verdict)
            changed[runs] += decided is not None and verdict != decided
            decided = decided or (verdict if verdict in (REPRODUCED, NOT_REPRODUCED) else None)
    return [
        replace(shares(claim_id, scenario, n, got), changed=changed[n] / sims) for n, got in counts.items()
    ]


POWER = 0.8  # "reproduced" at the paper's effect by the last look, below which a claim is marked


def power_marks(rates: list[Rates]) -> list[str]:
    """Where the design's power and the claim's mark disagree, one line each: a claim under 80 %
    "reproduced" at the paper's effect by its last look that is not marked not decidable at its
    case's profile (Claim.undecidable), or one marked that reaches it; each beyond two standard
    errors of the rate over its stores, which few stores may move by chance."""
    lines = []
    for rate in rates:
        if rate.scenario != "paper" or rate.runs != RUNS[-1]:
            continue
        claim, profile = CLAIMS[rate.claim], CASES[rate.claim].profile
        slack = 2 * math.sqrt(POWER * (1 - POWER) / rate.sims)
        marked = profile in claim.undecidable
        if not marked and rate.reproduced < POWER - slack:
            lines.append(
                f"{rate.claim}: {rate.reproduced * 100:.0f} % 'reproduced' at the paper's effect by "
                f"{rate.runs} runs a cell, under {POWER * 100:.0f} %, and not marked not decidable "
                f"at {profile}"
            )
        elif marked and rate.reproduced > POWER + slack:
            lines.append(
                f"{rate.claim}: marked not decidable at {profile}, yet {rate.reproduced * 100:.0f} % "
                f"'reproduced' at the paper's effect by {rate.runs} runs a cell"
            )
    return lines


FIT_TABLES = ("table1", "table3", "table6", "pd-stragglers", "layup")  # the tables the path cases write


def fit_workloads(uri: str, profile: str = PROFILE) -> Workloads:
    """The default workloads with the spreads fitted to a store's finished runs of `profile` where
    it has replicated runs: CIFAR-10's from its ResNet-18 rows, IMDb's (both rows) from its LSTM's,
    the GPT's from its GPT rows."""
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
    gpt = fitted(per_run[per_run["model"] == "gpt"], uri, "best")
    return Workloads(
        cifar or DEFAULT.cifar, imdb or DEFAULT.imdb_lu, imdb or DEFAULT.imdb_bu, gpt or DEFAULT.gpt
    )


def fitted(per_run: pd.DataFrame, uri: str, value: str = "best_acc") -> Spreads | None:
    """The pooled within-row spreads of the runs' best test accuracy (or `value`: "best", the
    workload's metric) and log seconds per epoch (rows: table and label), and how much of them two
    rows' runs of one seed share; None without a row of two runs."""
    per_run = per_run.assign(
        log_s=[math.log(t / e) for t, e in zip(per_run["final_train_time_s"], per_run["epochs"], strict=True)]
    )
    groups = [g for _, g in per_run.groupby(["table", "label"]) if len(g) > 1]
    if not groups:
        return None
    acc = pooled_sd([g[value].tolist() for g in groups])
    time = pooled_sd([g["log_s"].tolist() for g in groups])
    share, pairs = seed_correlation(per_run, (value, "log_s"))
    runs = sum(len(g) for g in groups)
    seeds = f", seed correlation from {pairs} of two rows' runs" if pairs else ", no rows share seeds: 0"
    return Spreads(acc, time, f"fitted: {uri}, {runs} runs in {len(groups)} rows{seeds}", share)


def seed_correlation(per_run: pd.DataFrame, values: tuple[str, ...]) -> tuple[float, int]:
    """(the mean correlation of two rows' residuals over the run indices they share, at least 3,
    over each pair of rows of a table and model and each of `values`, floored at 0; the pairs): the
    seed's share of the run-to-run variance. (0, 0) where no two rows share 3 run indices."""
    correlations = []
    for _, table in per_run.groupby(["table", "model"]):
        for value in values:
            wide = table.pivot_table(index="run_index", columns="label", values=value, aggfunc="first")
            residuals = wide - wide.mean()
            matrix = residuals.corr(min_periods=3).to_numpy()
            upper = matrix[np.triu_indices_from(matrix, k=1)]
            correlations += [c for c in upper if not math.isnan(c)]
    if not correlations:
        return 0.0, 0
    return max(0.0, float(np.mean(correlations))), len(correlations)
