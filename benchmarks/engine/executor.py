"""The one loop that runs jobs, for `run TABLE` and `run claims`: skip what is finished, reserve,
run, record, show progress, keep to a budget. Each job ends as an `Outcome`; the caller prints
them. (The planner's calibration probe runs one job on data subsets through `run_job` itself:
nothing to skip or reserve.)"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.errors import DataMissingError, UserError
from core.job import Job
from core.result import RunResult

from .runner import JobFailed, run_job
from .tracking import Tracker

log = logging.getLogger(__name__)

# How a job ended in this command.
RAN, FINISHED_BEFORE, TAKEN, FAILED, NO_DATA, REFUSED, OVER_BUDGET = (
    "ran",  # it ran here: its result says finished, diverged, ...
    "finished before",  # the store had a finished run of it
    "taken",  # another process on the store is running it
    "failed",  # it raised: the run is marked failed
    "no data",  # its dataset is not on disk
    "refused",  # it cannot run as set (a batch larger than a process's data): no run was created
    "over budget",  # the budget left no room for it
)


@dataclass(frozen=True)
class Outcome:
    """What became of one job in this command."""

    job: Job
    state: str  # RAN, FINISHED_BEFORE, TAKEN, FAILED, NO_DATA, REFUSED or OVER_BUDGET
    result: RunResult | None = None  # for RAN and FAILED
    reason: str = ""  # for FAILED, NO_DATA and REFUSED: why, in one line with its fix


@dataclass
class Executor:
    """Runs jobs on one store, each at most once per command (views of the same runs share jobs).

    `estimate(job)` (seconds) and `budget_s` keep the command to a budget: a job whose estimate
    would pass 1.1x what is left is not started. `finished(job)` decides "finished before" (default:
    the store has a finished run of it); `ran(job, seconds)` hears of each job run.
    """

    tracker: Tracker
    data_dir: object = None
    budget_s: float | None = None
    estimate: Callable[[Job], float] | None = None
    finished: Callable[[Job], bool] | None = None
    ran: Callable[[Job, float], None] | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _no_data: dict[str, str] = field(default_factory=dict)  # dataset -> why it is missing

    def spent_s(self) -> float:
        """Seconds since the executor was made."""
        return time.monotonic() - self.started

    def fits(self, seconds: float, slack: float = 1.0) -> bool:
        """Whether `seconds` more fit in the budget (times `slack`)."""
        return self.budget_s is None or self.spent_s() + seconds <= self.budget_s * slack

    def seen(self, job: Job) -> bool:
        """Whether this command has tried `job` already (it tries each at most once)."""
        return (job.table, job.key) in self._seen

    def is_finished(self, job: Job) -> bool:
        """Whether the store holds a finished run of `job`."""
        if self.finished is not None:
            return self.finished(job)
        return self.tracker.finished_run(job.table, job.key) is not None

    def execute(self, job: Job) -> Outcome | None:
        """Run `job` unless it was seen in this command (None), is finished, taken, has no data or
        would pass the budget; record and return its outcome."""
        key = (job.table, job.key)
        if key in self._seen:
            return None
        self._seen.add(key)
        if job.dataset in self._no_data:
            return self._record(Outcome(job, NO_DATA, reason=self._no_data[job.dataset]))
        if self.is_finished(job):
            return self._record(Outcome(job, FINISHED_BEFORE))
        if self.estimate is not None and not self.fits(self.estimate(job), slack=1.1):
            return self._record(Outcome(job, OVER_BUDGET))
        started = time.monotonic()
        try:
            result = run_job(job, self.data_dir, self.tracker, reserve=True)  # another `run` may have it
        except DataMissingError as err:
            self._no_data[job.dataset] = str(err)  # its claims read "not measurable here"
            return self._record(Outcome(job, NO_DATA, reason=str(err)))
        except JobFailed as err:
            log.error("%s failed: %s", job.name, err)
            return self._record(Outcome(job, FAILED, err.result, reason=str(err)))
        except UserError as err:  # refused before its run was created; the other jobs go on
            return self._record(Outcome(job, REFUSED, reason=str(err)))
        if result is None:
            return self._record(Outcome(job, TAKEN))
        if self.ran is not None:
            self.ran(job, time.monotonic() - started)
        return self._record(Outcome(job, RAN, result))

    def execute_all(self, jobs: Iterable[Job], title: str) -> list[Outcome]:
        """Run `jobs` in order under a progress bar on a terminal (one log line per job in a file)."""
        from tqdm import tqdm

        jobs = list(jobs)
        on_terminal = sys.stderr.isatty()
        outcomes = []
        with tqdm(total=len(jobs), desc=title, unit="job", disable=not on_terminal) as bar:
            for index, job in enumerate(jobs, 1):
                bar.set_postfix_str(job.name)
                if not on_terminal:
                    log.info("job %d of %d: %s", index, len(jobs), job.name)
                outcome = self.execute(job)
                if outcome is not None:
                    outcomes.append(outcome)
                bar.update(1)
        return outcomes

    def _record(self, outcome: Outcome) -> Outcome:
        self.outcomes.append(outcome)
        return outcome


def tally(outcomes: list[Outcome], finished_before: int = 0) -> str:
    """One line: how many jobs ran, were finished before, taken, failed, diverged and not run."""
    states = (RAN, FINISHED_BEFORE, TAKEN, FAILED, NO_DATA, REFUSED, OVER_BUDGET)
    count = {s: sum(1 for o in outcomes if o.state == s) for s in states}
    diverged = sum(1 for o in outcomes if o.result is not None and o.result.status == "diverged")
    others = f", {count[TAKEN]} run by another process" if count[TAKEN] else ""
    budget = f", {count[OVER_BUDGET]} left out (budget)" if count[OVER_BUDGET] else ""
    return (
        f"{count[RAN]} run, {count[FINISHED_BEFORE] + finished_before} already finished{others}, "
        f"{count[FAILED]} failed, {diverged} diverged, {count[NO_DATA] + count[REFUSED]} not run{budget}"
    )


def not_run(outcomes: list[Outcome]) -> list[str]:
    """One line per cause of the jobs that could not run (missing data, refused, failed), naming the
    jobs and the fix; [] when every job ran or was finished before. The caller exits 1 on any."""
    causes: dict[str, list[Job]] = {}
    for outcome in outcomes:
        if outcome.state in (NO_DATA, REFUSED, FAILED):
            causes.setdefault(outcome.reason or outcome.state, []).append(outcome.job)
    lines = []
    for reason, jobs in causes.items():
        names = jobs[0].name if len(jobs) == 1 else f"{len(jobs)} jobs ({jobs[0].name}, ...)"
        lines.append(f"not run: {names}: {reason}")
    return lines
