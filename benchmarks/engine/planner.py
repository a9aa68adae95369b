"""`run claims`: the union of the claims' plans, estimated on this machine, run cheapest claim first
within a budget, resumable like `run`.

A claim's plan (reports/claims/_common.py: Plan, Need) names the table rows and the perf
benchmarks that decide it. Each job is built by its table's spec, so a job two claims share (or
that `run TABLE` made before) is run once: `run claims` skips finished jobs by their key. The
estimate of a job is the median wall time of finished runs of the same table, method, model and
profile in the store; without one, a guess per profile (or the job's time budget, if smaller).
"""

from __future__ import annotations

import collections
import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from core.errors import DataMissingError, UserError
from core.job import Job, Row

from .executor import OVER_BUDGET, Executor
from .speed import Speed
from .tracking import Tracker

log = logging.getLogger(__name__)

# A job's estimate where the store has no finished run like it and no calibration applies.
GUESS_S = {"smoke": 15.0, "quick": 300.0, "paper": 7200.0}
# A measuring job (Table 9's timing) where the store has none like it.
MEASURE_GUESS_S = {"smoke": 10.0, "quick": 60.0, "paper": 300.0}
START_S = 10.0  # start-up and evaluation around a job's training budget
PERF_GUESS_S = {"smoke": 60.0, "quick": 240.0, "paper": 300.0}


@dataclass
class Later:
    """A later stage of a claim's plan (Need.choose): the jobs it may pick from, and `pick`, which
    reads the store (its URI) and names the rows it picks, or None before the earlier runs ended."""

    candidates: list[Job]
    pick: Callable[[str | None], tuple[Row, ...] | None]
    rows: int  # rows it picks, for the estimate before it can

    def chosen(self, uri: str | None) -> list[Job] | None:
        """The candidates of the rows it picks now (None: it cannot pick yet)."""
        rows = self.pick(uri)
        return None if rows is None else [j for j in self.candidates if j.row in rows]


@dataclass
class ClaimPlan:
    """One claim's jobs and perf benchmarks at a profile, its later stages, and what could not be
    planned."""

    claim: object  # reports.claims.Claim
    jobs: list[Job] = field(default_factory=list)
    perf: tuple[str, ...] = ()
    perf_runs: int = 1  # results of each perf benchmark the verdict uses
    notes: list[str] = field(default_factory=list)
    later: list[Later] = field(default_factory=list)

    @property
    def every_job(self) -> list[Job]:
        """Its jobs and every job a later stage may pick."""
        return [*self.jobs, *(j for stage in self.later for j in stage.candidates)]


def parse_duration(text: str) -> float:
    """`--budget`: seconds from '90m', '2h', '1h30m', '45s' or a number of seconds."""
    import re

    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    parts = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
    )
    if not text.strip() or parts is None or not any(parts.groups()):
        raise UserError(f"--budget {text}: expected a duration such as 2h, 90m, 1h30m or 600 (seconds)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in parts.groups())
    total = hours * units["h"] + minutes * units["m"] + seconds * units["s"]
    if total <= 0:
        raise UserError(f"--budget {text}: must be more than 0")
    return total


def select_claims(claims: dict, only: str | None) -> list:
    """The claims `--only` names (comma-separated ids), or all; an unknown id exits 2 naming them."""
    if not only:
        return list(claims.values())
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in claims]
    if unknown:
        raise UserError(f"--only {', '.join(unknown)}: unknown claim; valid claims: {', '.join(claims)}")
    return [claims[name] for name in wanted]


def plan_claims(
    claims: list, specs: dict, profile: str, runs: int | None, devices: int | None, uri: str | None = None
) -> list[ClaimPlan]:
    """Each claim's jobs at `profile`: its needs' rows of its tables, `runs` per cell (default: the
    plan's, at least 3; smoke: the profile's one, since smoke decides nothing; a need's own runs
    over both). A need that chooses its rows from earlier runs picks them from the store at `uri`
    now if it can, else becomes a later stage that `run_claims` picks after the earlier jobs."""
    plans = []
    for claim in claims:
        per_cell = runs or (None if profile == "smoke" else claim.plan.runs)
        perf_runs = 1 if profile == "smoke" else max(runs or 0, claim.plan.perf_runs)
        plan = ClaimPlan(claim, perf=claim.plan.perf, perf_runs=perf_runs)
        for need in claim.plan.needs:
            if need.profiles and profile not in need.profiles:
                continue
            jobs = specs[need.table].jobs(profile, need.runs or per_cell, devices)
            jobs = [j for j in jobs if not need.methods or j.method in need.methods]
            jobs = [j for j in jobs if not need.models or j.model in need.models]
            jobs = [j for j in jobs if not need.rows or any(j.holds(row) for row in need.rows)]
            if not jobs:
                plan.notes.append(f"{need.table} has no jobs at {profile}")
            if need.choose is None:
                plan.jobs += jobs
                continue
            stage = Later(jobs, chooser(claim, need, specs, profile), need.chooses)
            chosen = stage.chosen(uri)
            if chosen is None:
                plan.later.append(stage)
            else:
                plan.jobs += chosen
        plan.jobs = list({(j.table, j.key): j for j in plan.jobs}.values())
        plans.append(plan)
    return plans


def chooser(claim, need, specs: dict, profile: str) -> Callable[[str | None], tuple[Row, ...] | None]:
    """The rows `need.choose` picks from the claim's planned runs in the store at a URI."""
    from reports.claims import Evidence

    def pick(uri: str | None) -> tuple[str, ...] | None:
        return need.choose(Evidence(uri, specs, profile).planned(claim)) if uri else None

    return pick


def drop_undecidable(plans: list[ClaimPlan], gpus: int, profile: str) -> None:
    """Empty the plans of claims that need more GPUs than this machine has (Claim.needs_gpus), or
    whose design cannot decide them at `profile` (Claim.undecidable): their runs could not decide
    them here, so they would only spend the budget."""
    for plan in plans:
        claim = plan.claim
        if not (plan.every_job or plan.perf):
            continue
        if claim.needs_gpus > gpus:
            why = (
                f"a verdict needs {claim.needs_gpus} GPU(s), this machine has {gpus} ({claim.needs_hardware})"
            )
        elif profile in claim.undecidable:
            why = f"not decidable at {profile}: {claim.undecidable[profile]}"
        else:
            continue
        plan.notes.append(f"not run: {why}")
        plan.jobs, plan.perf, plan.later = [], (), []


def drop_missing_data(plans: list[ClaimPlan], data_dir) -> dict[str, str]:
    """Take out of the plans the jobs whose dataset is not on disk (each dataset is looked up once:
    loading a present one builds its cache, which its jobs need anyway); returns dataset -> why.
    A claim without them is estimated without them and reads "not measurable here" where it
    needs them."""
    from .rank import get_dataset

    missing: dict[str, str] = {}
    checked: set[str] = set()
    for plan in plans:
        for job in plan.every_job:
            if job.synthetic_data or job.dataset in checked:
                continue
            checked.add(job.dataset)
            try:
                get_dataset(job, data_dir)
            except DataMissingError as err:
                missing[job.dataset] = str(err)

        def present(jobs: list[Job]) -> list[Job]:
            return [j for j in jobs if j.synthetic_data or j.dataset not in missing]

        gone = {j.dataset for j in plan.every_job} - {j.dataset for j in present(plan.every_job)}
        for dataset in sorted(gone):
            plan.notes.append(f"{dataset} not on disk: its jobs are left out")
        plan.jobs = present(plan.jobs)
        plan.later = [replace(stage, candidates=present(stage.candidates)) for stage in plan.later]
    return missing


class Estimates:
    """Seconds a job (or a perf benchmark) takes on this machine, from the store where it can."""

    def __init__(self, tracker: Tracker, profile: str, calibration: Speed | None = None):
        self.tracker, self.profile, self.calibration = tracker, profile, calibration
        self._walls: dict[str, dict[tuple, list[float]]] = {}
        self._anywhere: dict[tuple, list[float]] | None = None  # seconds per epoch, any table
        self._epoch_walls: dict[str, dict[tuple, list[float]]] = {}
        # Looked up once: the plans are re-costed after every claim, and a finished job (a logged
        # perf result) stays so, so asking the store again would only repeat its queries.
        self._finished: set[tuple[str, str]] = set()
        self._perf_counts: dict[str, int] | None = None

    def _any_experiment(self) -> dict[tuple, list[float]]:
        """Wall seconds per epoch of every experiment's finished runs, by (method, model, profile): a
        job new to its table is estimated from the same method and model run for another table,
        scaled to its own epochs (tables run the same workload for 1 epoch or for 5)."""
        if self._anywhere is None:
            self._anywhere = {}
            if self.tracker.uri:
                for experiment in self.tracker.client.search_experiments():
                    self._experiment(experiment.name)
                    for key, per_epoch in self._epoch_walls.get(experiment.name, {}).items():
                        self._anywhere.setdefault(key, []).extend(per_epoch)
        return self._anywhere

    def _experiment(self, experiment: str) -> dict[tuple, list[float]]:
        if experiment not in self._walls:
            from reports.runs import read_runs

            walls: dict[tuple, list[float]] = {}
            per_epoch: dict[tuple, list[float]] = {}
            for run in read_runs(self.tracker.uri, experiment) if self.tracker.uri else []:
                if run.status != "finished" or run.end_time is None:
                    continue
                # Like runs share method, model, profile and the row name their job gave them.
                key = (run.method, run.model, run.profile, run.row_name)
                seconds = (run.end_time - run.start_time).total_seconds()
                walls.setdefault(key, []).append(seconds)
                epochs = run.values.get("epochs", math.nan)
                if epochs >= 1:
                    per_epoch.setdefault(key[:3], []).append(seconds / epochs)
            self._walls[experiment] = walls
            self._epoch_walls[experiment] = per_epoch
        return self._walls[experiment]

    def finished(self, job: Job) -> bool:
        """Whether the store has a finished run of the job (remembered once seen)."""
        key = (job.table, job.key)
        if key not in self._finished and self.tracker.uri is not None:
            if self.tracker.finished_run(job.table, job.key) is not None:
                self._finished.add(key)
        return key in self._finished

    def job_s(self, job: Job) -> float:
        """0 for a finished job; else the median of like runs, the calibration's estimate, the time
        budget, or a guess."""
        if self.finished(job):
            return 0.0
        like = self._experiment(job.table).get((job.method, job.model, job.profile, job.row.name))
        if like:
            return statistics.median(like)
        per_epoch = self._any_experiment().get((job.method, job.model, job.profile))
        if per_epoch:
            seconds = statistics.median(per_epoch) * job.config.max_epochs
            return min(seconds, job.config.time_budget_s + START_S) if job.config.time_budget_s else seconds
        calibrated = self.calibration.job_s(job, START_S) if self.calibration is not None else None
        if calibrated is not None:
            return calibrated
        from methods import METHODS

        guesses = MEASURE_GUESS_S if METHODS[job.method].measures else GUESS_S
        guess = guesses.get(self.profile, guesses["quick"])
        return min(job.config.time_budget_s + START_S, guess) if job.config.time_budget_s else guess

    def record(self, job: Job, seconds: float) -> None:
        """Remember that `job` has just finished in `seconds`: the jobs like it still to run are then
        estimated from it (and the budget kept by it), not from a guess."""
        self._finished.add((job.table, job.key))
        # Stores not read yet will hold the run when they are read: only those read already learn it.
        if job.table in self._walls:
            self._walls[job.table].setdefault((job.method, job.model, job.profile, job.row.name), []).append(
                seconds
            )
        if self._anywhere is not None:
            per_epoch = seconds / max(1, min(job.config.max_epochs, 10_000))
            self._anywhere.setdefault((job.method, job.model, job.profile), []).append(per_epoch)

    def perf_s(self, name: str, wanted: int = 1) -> float:
        """Perf benchmark `name` until the store has `wanted` results: a guess per profile for each."""
        missing = max(0, wanted - self.perf_count(name))
        return missing * PERF_GUESS_S.get(self.profile, PERF_GUESS_S["quick"])

    def perf_done(self, name: str) -> None:
        """Remember that perf benchmark `name` has just logged a result."""
        self.perf_count(name)
        self._perf_counts[name] = self._perf_counts.get(name, 0) + 1

    def perf_count(self, name: str) -> int:
        """How many results of perf benchmark `name` the store holds (the experiment read once)."""
        if self._perf_counts is None:
            from reports.runs import read_runs

            runs = read_runs(self.tracker.uri, "perf") if self.tracker.uri else []
            self._perf_counts = collections.Counter(run.tags["perf"] for run in runs if "perf" in run.tags)
        return int(self._perf_counts.get(name, 0))


def later_cost(stage: Later, estimates: Estimates, planned: list[Job]) -> float:
    """Seconds a later stage would take before it can pick: its candidates' mean cost per row times
    the rows it picks, less the jobs the plan runs before it (a screening's runs)."""
    before = {(j.table, j.key) for j in planned}
    rows = {j.label for j in stage.candidates}
    total = sum(estimates.job_s(j) for j in stage.candidates if (j.table, j.key) not in before)
    return total / len(rows) * min(stage.rows, len(rows)) if rows else 0.0


def pending_cost(plan: ClaimPlan, estimates: Estimates, done: set) -> float:
    """Seconds the claim's jobs, later stages and perf benchmarks not run yet would take."""
    jobs = sum(estimates.job_s(j) for j in plan.jobs if (j.table, j.key) not in done)
    jobs += sum(later_cost(stage, estimates, plan.jobs) for stage in plan.later)
    return jobs + sum(estimates.perf_s(name, plan.perf_runs) for name in plan.perf if name not in done)


def priority(plan: ClaimPlan, estimates: Estimates, done: set) -> tuple[bool, float]:
    """The order claims run in: the papers' claims before the suite's extensions, each cheapest first."""
    return plan.claim.extension, pending_cost(plan, estimates, done)


def describe(plan: ClaimPlan, estimates: Estimates, done: set) -> str:
    """One claim's plan as `--dry-run` prints it."""
    tables: dict[str, set] = {}
    for job in plan.jobs:
        tables.setdefault(job.table, set()).add(job.label)
    pending = sum(1 for j in plan.jobs if (j.table, j.key) not in done and not estimates.finished(j))
    parts = [f"{t}: {', '.join(sorted(labels))}" for t, labels in tables.items()]
    parts += [
        f"then {stage.rows} rows of {stage.candidates[0].table} picked from those runs "
        f"(~{later_cost(stage, estimates, plan.jobs) / 60:.1f} min)"
        for stage in plan.later
        if stage.candidates
    ]
    parts += [f"perf {name}" for name in plan.perf]
    parts += plan.notes
    cost = pending_cost(plan, estimates, done)
    return f"{plan.claim.id}: {len(plan.jobs)} jobs ({pending} to run), ~{cost / 60:.1f} min — " + "; ".join(
        parts or ["nothing to run"]
    )


def run_claims(
    plans: list[ClaimPlan],
    executor: Executor,
    estimates: Estimates,
    run_perf: Callable[[str], None],
    dry_run: bool,
    out: Callable[[str], None] = print,
) -> list[tuple[str, float]]:
    """Run the plans through `executor` (its budget, if any), the papers' claims before the suite's
    extensions, cheapest remaining claim first, each shared job once; returns the claims left out
    by the budget (id, estimated seconds). `dry_run`: print the plans and the total, run nothing."""
    done: set = set()
    if dry_run:
        print_plans(plans, estimates, out)
        return []
    executor.estimate, executor.finished, executor.ran = estimates.job_s, estimates.finished, estimates.record
    left_out = []
    remaining = list(plans)
    while remaining:
        remaining.sort(key=lambda p: priority(p, estimates, done))
        plan = remaining.pop(0)
        cost = pending_cost(plan, estimates, done)
        # A claim with nothing left to run (its runs finished, or none planned here) is never left out.
        if cost > 0 and not executor.fits(cost):
            left_out.append((plan.claim.id, cost))
            continue
        if plan.every_job or plan.perf:
            log.info("claim %s: ~%.1f min to run", plan.claim.id, cost / 60)
        else:
            log.info("claim %s: nothing to run here (%s)", plan.claim.id, "; ".join(plan.notes) or "no plan")
        if not run_jobs(plan, plan.jobs, executor, estimates, done):
            left_out.append((plan.claim.id, pending_cost(plan, estimates, done)))
            continue
        while plan.later:
            stage = plan.later.pop(0)
            chosen = stage.chosen(estimates.tracker.uri)
            if chosen is None:
                log.warning("claim %s: cannot pick its rows (earlier runs missing)", plan.claim.id)
                continue
            plan.jobs += chosen
            if not run_jobs(plan, chosen, executor, estimates, done):
                left_out.append((plan.claim.id, pending_cost(plan, estimates, done)))
                break
        for name in plan.perf:
            while name not in done and estimates.perf_count(name) < plan.perf_runs:
                run_perf(name)
                estimates.perf_done(name)
            done.add(name)
    return left_out


def run_jobs(plan: ClaimPlan, jobs: list[Job], executor: Executor, estimates: Estimates, done: set) -> bool:
    """Run `jobs` of the plan through the executor; False where its budget stopped them."""
    for job in jobs:
        outcome = executor.execute(job)
        if outcome is not None and outcome.state == OVER_BUDGET:
            return False
        done.add((job.table, job.key))
    return True


def print_plans(plans: list[ClaimPlan], estimates: Estimates, out: Callable[[str], None]) -> None:
    """`--dry-run`: each claim's plan in the order it would run, then the total."""
    union = {(j.table, j.key): j for p in plans for j in p.jobs}
    total = sum(estimates.job_s(j) for j in union.values())
    total += sum(later_cost(stage, estimates, p.jobs) for p in plans for stage in p.later)
    wanted = {n: max(p.perf_runs for p in plans if n in p.perf) for p in plans for n in p.perf}
    total += sum(estimates.perf_s(name, count) for name, count in wanted.items())
    for plan in sorted(plans, key=lambda p: priority(p, estimates, set())):
        out(describe(plan, estimates, set()))
    out(
        f"total: {len(union)} jobs, ~{total / 60:.1f} min on this machine (estimated), "
        "the papers' claims first, each cheapest first"
    )


def minutes(seconds: float) -> str:
    """'12 min' (or '< 1 min')."""
    return "< 1 min" if seconds < 60 else f"{math.ceil(seconds / 60)} min"
