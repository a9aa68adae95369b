"""`run claims --until-decided`: each claim's sequential design, look by look, only for its open
cells, resumable after a kill to the same verdicts. Jobs are written as the runner writes them
(benchmarks/calibration/stores.py) instead of trained, so the rounds' logic runs in seconds."""

from dataclasses import replace

import pytest

from benchmarks.calibration.stores import RowTruth, write_table
from benchmarks.engine.executor import RAN, Executor, Outcome
from benchmarks.engine.planner import Estimates
from benchmarks.engine.sequential import open_looks, run_until_decided
from benchmarks.engine.tracking import Tracker
from benchmarks.tables import TABLES
from reports.claims import CLAIMS, INCONCLUSIVE, Evidence

from .conftest import empty_store

CLAIM = "lu-more-accurate-than-bu"
# CIFAR-10: LU 1.5 points ahead with a spread that 3 runs cannot place against the 0.5-point band;
# IMDb: the same accuracy, its gap spread near the paper's.
TRUTHS = {
    "table1": {
        "async_lu": RowTruth(seconds=10.0, plateau=0.80, acc_spread=0.008),
        "async_bu": RowTruth(seconds=7.0, plateau=0.785, acc_spread=0.008),
    },
    "table6": {
        "async_lu": RowTruth(seconds=6.5, plateau=0.85, acc_spread=0.003),
        "async_bu": RowTruth(seconds=12.0, plateau=0.85, acc_spread=0.003),
    },
}


class Killed(Exception):
    """The process killed mid-round."""


class SyntheticExecutor(Executor):
    """An executor whose jobs write their runs as the runner would, from TRUTHS, instead of training;
    `kill_after`: raise Killed before that many jobs have run."""

    def __init__(self, tracker, kill_after: int | None = None):
        super().__init__(tracker)
        self.kill_after, self.jobs = kill_after, []

    def execute(self, job):
        if self.seen(job):
            return None
        self._seen.add((job.table, job.key))
        if self.is_finished(job):
            return None
        if self.kill_after is not None and len(self.jobs) >= self.kill_after:
            raise Killed
        from benchmarks.calibration.stores import write_job

        write_job(self.tracker, job, TRUTHS[job.table][job.row.label])
        self.jobs.append(job)
        return self._record(Outcome(job, RAN))


@pytest.fixture(autouse=True)
def design_at_quick(monkeypatch):
    """The claim's design run at quick, where it is marked not decidable (Claim.undecidable: `run
    claims` plans none of its runs there): the looks' machinery is what these tests read."""
    monkeypatch.setitem(CLAIMS, CLAIM, replace(CLAIMS[CLAIM], undecidable={}))


def store_at_first_look(tmp_path, name: str) -> Tracker:
    tracker = Tracker(empty_store(tmp_path / name))
    for table, truths in TRUTHS.items():
        write_table(tracker, table, "quick", truths, runs=3)
    return tracker


def until_decided(tracker: Tracker, kill_after: int | None = None) -> SyntheticExecutor:
    executor = SyntheticExecutor(tracker, kill_after)
    estimates = Estimates(tracker, "quick")
    executor.finished, executor.estimate = estimates.finished, estimates.job_s
    run_until_decided(
        [CLAIMS[CLAIM]], dict(TABLES), "quick", None, executor, estimates, lambda _: None, set()
    )
    return executor


def judged(tracker: Tracker):
    return CLAIMS[CLAIM].judge(Evidence(tracker.uri, dict(TABLES), "quick"))


@pytest.mark.ci
@pytest.mark.slow  # ~9 s of runs, in CI
def test_open_cells_get_the_next_looks_runs_and_nothing_else(tmp_path):
    tracker = store_at_first_look(tmp_path, "store.db")
    before = judged(tracker)
    assert before.verdict == INCONCLUSIVE and open_looks(
        CLAIMS[CLAIM], Evidence(tracker.uri, TABLES, "quick")
    )
    executor = until_decided(tracker)
    ran = {(j.table, j.model, j.label, j.run_index) for j in executor.jobs}
    assert ran and {j.run_index for j in executor.jobs} <= set(range(3, 10))
    # Only the rows of open cells: LU and BU of each workload the store has (table1's ResNet-50
    # too: `write_table` ran the whole table, as `run table1` would), each look's indices whole.
    assert {(t, label) for t, _, label, _ in ran} <= {
        (t, label) for t in TRUTHS for label in ("async_lu", "async_bu")
    }
    for table, model, label, _ in ran:
        indices = sorted(i for t, m, lab, i in ran if (t, m, lab) == (table, model, label))
        assert indices in ([3, 4], list(range(3, 10))), indices
    after = judged(tracker)
    # Every cell decided at a look, or open at the last: no further look to run.
    assert open_looks(CLAIMS[CLAIM], Evidence(tracker.uri, TABLES, "quick")) == {}
    for result in after.results:
        for cell in result.open:
            assert cell.look == 3, cell
    # A second command finds nothing left to run and reads the same verdict.
    assert until_decided(tracker).jobs == []
    assert judged(tracker).verdict == after.verdict


@pytest.mark.ci
@pytest.mark.slow  # two stores run to their last look, ~11 s: out of the default run
def test_a_kill_mid_round_resumes_to_the_same_verdicts(tmp_path):
    whole = store_at_first_look(tmp_path, "whole.db")
    until_decided(whole)
    killed = store_at_first_look(tmp_path, "killed.db")
    with pytest.raises(Killed):
        until_decided(killed, kill_after=3)
    resumed = until_decided(killed)
    assert resumed.jobs  # the rest of the rounds ran after the kill
    assert [(r.verdict, r.reason) for r in judged(killed).results] == [
        (r.verdict, r.reason) for r in judged(whole).results
    ]
    assert judged(killed).verdict == judged(whole).verdict


def test_a_dry_run_prints_the_design_and_what_its_last_look_would_cost(tmp_path):
    from benchmarks.engine.planner import plan_claims
    from benchmarks.engine.sequential import print_designs

    tracker = Tracker(empty_store(tmp_path / "dry.db"))
    claims = [CLAIMS[CLAIM], CLAIMS["beta-about-2"]]
    plans = plan_claims(claims, dict(TABLES), "quick", None, None, tracker.uri)
    lines: list[str] = []
    print_designs(plans, dict(TABLES), "quick", None, Estimates(tracker, "quick"), set(), lines.append)
    assert lines[0] == (
        "design (every claim): looks at 3, 5, 10 runs a cell (shares of the error 0.416, 0.204, 0.380; "
        "Pocock-type spending)"
    )
    # 12 jobs to the first look, 40 to the last (10 runs of each of its 4 rows), 300 s each unmeasured.
    assert lines[1] == f"  {CLAIM}: ~60.0 min to its first look, at most ~200.0 min to its last"
    assert lines[-1].startswith("--until-decided: at most 60 jobs, ~") and lines[-1].endswith("early")
