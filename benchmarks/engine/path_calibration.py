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

import functools
import math
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context

import pandas as pd

from reports.claims import CLAIMS, Claim, Evidence
from reports.claims.calibrate import RUNS, Rates, pooled_sd, shares
from reports.claims.stats import NOT_REPRODUCED, REPRODUCED
from reports.memory_store import MemoryStore

from ..tables import TABLES
from .path_cases import CASES, DEFAULT, Spreads, Workloads
from .planner import plan_claims
from .synthetic import RowTruth, write_job

PROFILE = "quick"
SCENARIOS = ("paper", "diverged", "edge", "opposite")
FALSE = ("edge", "opposite")  # a part false, one at a time


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
    runner writes them with curves drawn from the truths (keyed by model/label, table/label or
    label), on the case's hardware; a job of a row without a truth is left out."""
    store = MemoryStore()
    for job in planned_jobs(claim.id):
        keys = (f"{job.model}/{job.row.label}", f"{job.table}/{job.row.label}", job.row.label)
        truth = next((truths[k] for k in keys if k in truths), None)
        if truth is not None:
            write_job(store, job, truth, seed, CASES[claim.id].hardware)
    return store


@functools.cache
def planned_jobs(claim_id: str) -> tuple:
    """The jobs `run claims --profile quick --runs 10` runs for the claim (planned once a process)."""
    (plan,) = plan_claims([CLAIMS[claim_id]], TABLES, PROFILE, RUNS[-1], None)
    return tuple(plan.jobs)


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
    workload's metric) and log seconds per epoch (rows: table and label); None without a row of
    two runs."""
    groups = [g for _, g in per_run.groupby(["table", "label"]) if len(g) > 1]
    if not groups:
        return None
    acc = pooled_sd([g[value].tolist() for g in groups])
    time = pooled_sd(
        [[math.log(t / e) for t, e in zip(g["final_train_time_s"], g["epochs"], strict=True)] for g in groups]
    )
    runs = sum(len(g) for g in groups)
    return Spreads(acc, time, f"fitted: {uri}, {runs} runs in {len(groups)} rows")
