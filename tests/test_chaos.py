"""`run claims` killed with kill -9 at random moments, resumed each time, ends where an uninterrupted
run ends: each job finished once, no run left running, the same verdicts (issue 43's chaos loop).

Slow (two `run claims --profile smoke`, ~15 min on 2 cores): run in CI by `.ci/run` (marker `ci`).
The moments come from `$CHAOS_SEED` (default: the clock), printed with any failure."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .conftest import LONG_JOBS, ROOT

KILLS = 10
# Seconds after its start that a command is killed: past the start-up (~5 s: imports, the store, the
# plans) often enough that every kill lands somewhere in the work, and sometimes inside it.
KILL_AFTER_S = (2.0, 25.0)
# What must match, claim by claim and cell by cell: the verdicts, their rule and the runs behind
# them (effects are timings at smoke for some claims: two runs never agree on those).
SAME = ("id", "verdict", "version", "profile", "part", "cell", "runs", "planned", "failed")


def run_claims(store: str, out: Path) -> subprocess.Popen:
    """`run claims --profile smoke --until-decided` on `store`, its report to `out`, in the background
    (smoke decides nothing, so no look follows the first: tests/test_until_decided.py kills rounds)."""
    args = [
        "run",
        "claims",
        "--profile",
        "smoke",
        "--until-decided",
        "--tracking-uri",
        store,
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", *args], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    LONG_JOBS.append(proc)
    return proc


def verdicts(out: Path) -> list[tuple]:
    """The report's verdict columns, row by row."""
    with (out / "claims.csv").open() as handle:
        return [tuple(row[c] for c in SAME) for row in csv.DictReader(handle)]


def runs_by_status(store: str) -> tuple[Counter, list[str]]:
    """(finished runs per (experiment, job_key), names of runs still RUNNING) in `store`."""
    client = MlflowClient(tracking_uri=store)
    finished, running = Counter(), []
    experiments = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiments, max_results=50_000):
        tags = run.data.tags
        if "job_key" in tags and tags.get("status") == "finished":
            finished[(run.info.experiment_id, tags["job_key"])] += 1
        if run.info.status == "RUNNING" or tags.get("status") == "running":
            running.append(run.info.run_name)
    return finished, running


@pytest.mark.slow
@pytest.mark.ci
def test_run_claims_killed_anywhere_resumes_to_the_same_verdicts(tmp_path):
    seed = int(os.environ.get("CHAOS_SEED") or time.time_ns() % 2**32)
    rng = random.Random(seed)
    chaos_store, chaos_out = f"sqlite:///{tmp_path / 'chaos.db'}", tmp_path / "chaos"
    kills, moments = 0, []
    while kills < KILLS:
        proc = run_claims(chaos_store, chaos_out)
        moment = rng.uniform(*KILL_AFTER_S)
        try:
            _, err = proc.communicate(timeout=moment)
            assert proc.returncode == 0, f"after {kills} kills ({moments}), seed {seed}: {err[-3000:]}"
            break  # it finished before its kill: the loop has no more work to cut
        except subprocess.TimeoutExpired:
            pass
        proc.send_signal(signal.SIGKILL)  # the CLI's process alone: its ranks end with it (PDEATHSIG)
        proc.communicate(timeout=60)
        kills += 1
        moments.append(round(moment, 1))
    note = f"CHAOS_SEED={seed}, killed at {moments} s"
    assert kills == KILLS, f"the work ended after {kills} kills: {note}"
    proc = run_claims(chaos_store, chaos_out)
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0 and "Traceback" not in err, f"{note}\n{err[-3000:]}"
    finished, running = runs_by_status(chaos_store)
    assert not running, f"left running: {running} ({note})"
    twice = {key: n for key, n in finished.items() if n > 1}
    assert not twice, f"jobs finished more than once: {twice} ({note})"

    reference_store, reference_out = f"sqlite:///{tmp_path / 'reference.db'}", tmp_path / "reference"
    proc = run_claims(reference_store, reference_out)
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0, err[-3000:]
    reference_finished, _ = runs_by_status(reference_store)
    assert len(finished) == len(reference_finished), note  # the same jobs, each once
    assert verdicts(chaos_out) == verdicts(reference_out), note
