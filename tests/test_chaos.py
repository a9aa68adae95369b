"""Chaos loops. `run claims` killed with kill -9 at points of its jobs' lives that it logged (drawn
at random), resumed each time, ends where an uninterrupted run ends: each job finished once with
every epoch, no run left running, every cell's planned runs, every verdict inconclusive (issue 43).
The tracking server killed with kill -9 under two writing `run`s, each time once they have passed
more points, restarted each time: the store intact after each kill, the writers never failing, each
job finished once, every epoch of every run in it (issue 55). Kills land at logged points, not at
moments of the clock (benchmarks/engine/points.py).

Slow (~1.5 and ~4 min on 2 cores): the first runs in CI (marker `ci`), the second with `-m slow`
(CI kills the server under writers in tests/test_lab_load.py). The points come from
`$CHAOS_SEED` (default: the clock), printed with any failure."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from core.result import counts_as_finished

from .conftest import LONG_JOBS, ROOT
from .test_server import WRITERS, Server

KILLS = 4  # each kill costs a start-up and some work: 4 keep CI under 40 minutes
# Where a command is killed: the K-th time it passes a named point of a job's life
# (benchmarks/engine/points.py: a run just reserved, metrics just logged, an end about to be
# written, an end just written), K drawn up to these counts, so that kills land at every kind of
# point and, across kills, in different jobs.
KILL_POINTS = {"reserved": 3, "metrics": 8, "ending": 3, "ended": 3}


def seed_and_rng() -> tuple[int, random.Random]:
    """$CHAOS_SEED (default: the clock) and a generator of the kills' points from it."""
    seed = int(os.environ.get("CHAOS_SEED") or time.time_ns() % 2**32)
    return seed, random.Random(seed)


# Claims whose plans hold what a kill can cut: thread methods (table1), 3-process jobs (layup), a
# timing table (table9) and a plan's second stage picked from its first (the remedies' screening).
# Every claim's plan would do the same, at 3x the time (~13 min of CI).
CLAIMS = "bu-fastest-to-target,layup-faster-than-ddp,beta-about-2,gpt-remedy-closes-gap"


class Said:
    """A process's stderr, read line by line on a thread of its own: the points it passed, and
    whether it stopped at one (`$BENCH_POINTS`, benchmarks/engine/points.py)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines, self.points = proc, [], 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if line.startswith("point "):
                self.points += 1
                if line.rstrip().endswith("(stopped)"):
                    self.stopped.set()

    def stops(self, within_s: float = 900) -> bool:
        """Whether the process stops at its point (False: it ended first)."""
        deadline = time.monotonic() + within_s
        while not self.stopped.wait(0.2):
            if self.proc.poll() is not None:
                self.thread.join(timeout=30)  # the last lines, the stop's among them
                return self.stopped.is_set()
            assert time.monotonic() < deadline, "".join(self.lines[-30:])
        return True

    def text(self) -> str:
        self.thread.join(timeout=60)
        return "".join(self.lines)


def run_claims(store: str, out: Path, stop_at: str = "") -> subprocess.Popen:
    """`run claims --profile smoke --until-decided` on `store` for CLAIMS, its report to `out`, in the
    background (smoke decides nothing, so no look follows the first: tests/test_until_decided.py kills
    rounds); `stop_at` (`$BENCH_POINTS`): where it stops itself, to be killed there."""
    args = [
        "run",
        "claims",
        "--only",
        CLAIMS,
        "--profile",
        "smoke",
        "--until-decided",
        "--tracking-uri",
        store,
        "--out",
        str(out),
    ]
    env = {**os.environ, "BENCH_POINTS": stop_at} if stop_at else None
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True, env=env,
    )  # fmt: skip
    LONG_JOBS.append(proc)
    return proc


def runs_by_status(store: str) -> tuple[Counter, list[str]]:
    """(finished runs per (experiment, job_key), names of runs still RUNNING) in `store`."""
    client = MlflowClient(tracking_uri=store)
    finished, running = Counter(), []
    experiments = [e.experiment_id for e in client.search_experiments()]
    for run in client.search_runs(experiments, max_results=50_000):
        tags = run.data.tags
        if "job_key" in tags and counts_as_finished(tags):
            finished[(run.info.experiment_id, tags["job_key"])] += 1
        if run.info.status == "RUNNING" or tags.get("status") == "running":
            running.append(run.info.run_name)
    return finished, running


def every_job_finished_with_every_epoch(
    store: str, note: str, per_epoch: tuple[str, ...] = ("train_loss", "test_acc")
) -> None:
    """Every job with a run in `store` has a finished one (a killed job's failed run never stands
    alone), holding every epoch's `per_epoch` metrics and staleness where it logged any; a superseded
    run (a reservation that met another's: it trained nothing) is KILLED."""
    client = MlflowClient(tracking_uri=store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    jobs, finished = set(), set()
    for run in client.search_runs(experiments, max_results=50_000):
        tags = run.data.tags
        if tags.get("status") == "superseded":
            assert run.info.status == "KILLED", (run.info.run_name, note)
            continue
        jobs.add((run.info.experiment_id, tags["job_key"]))
        if not counts_as_finished(tags):
            continue
        finished.add((run.info.experiment_id, tags["job_key"]))
        if "epochs" not in run.data.metrics:  # a timing run (table9's): its measurement
            assert "beta" in run.data.metrics, (run.info.run_name, sorted(run.data.metrics), note)
            continue
        epochs = int(run.data.metrics["epochs"])
        staleness = ["system/staleness_mean"] if "system/staleness_mean" in run.data.metrics else []
        for name in dict.fromkeys((*per_epoch, *staleness)):  # staleness: the async methods'
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, name))
            assert steps == list(range(epochs)), (run.info.run_name, name, steps, note)
    assert jobs == finished, f"jobs without a finished run: {jobs - finished} ({note})"


@pytest.mark.slow
@pytest.mark.ci
def test_run_claims_killed_anywhere_resumes_to_the_same_verdicts(tmp_path):
    seed, rng = seed_and_rng()
    chaos_store, chaos_out = f"sqlite:///{tmp_path / 'chaos.db'}", tmp_path / "chaos"
    kills, points = 0, []
    while kills < KILLS:
        name = list(KILL_POINTS)[kills % len(KILL_POINTS)]  # every kind of point, in turn
        stop_at = f"{name}:{rng.randint(1, KILL_POINTS[name])}"
        proc = run_claims(chaos_store, chaos_out, stop_at)
        said = Said(proc)
        if not said.stops():
            err = said.text()
            assert proc.returncode == 0, f"after {kills} kills ({points}), seed {seed}: {err[-3000:]}"
            break  # it finished before its point: the loop has no more work to cut
        proc.send_signal(signal.SIGKILL)  # the CLI's process alone: its ranks end with it (PDEATHSIG)
        proc.wait(timeout=60)
        kills += 1
        points.append(stop_at)
    note = f"CHAOS_SEED={seed}, killed at the points {points}"
    assert kills == KILLS, f"the work ended after {kills} kills: {note}"
    proc = run_claims(chaos_store, chaos_out)
    _, err = proc.communicate(timeout=1800)
    assert proc.returncode == 0 and "Traceback" not in err, f"{note}\n{err[-3000:]}"
    finished, running = runs_by_status(chaos_store)
    assert not running, f"left running: {running} ({note})"
    twice = {key: n for key, n in finished.items() if n > 1}
    assert not twice, f"jobs finished more than once: {twice} ({note})"

    # What an uninterrupted run ends with, read from its plan and the store (running one after it took
    # a minute of CI): every cell holds the runs its first look plans, every verdict reads
    # inconclusive (smoke decides nothing), every job has a finished run with each epoch's metrics.
    rows = pd.read_csv(chaos_out / "claims.csv")
    rows = rows[rows["id"].isin(CLAIMS.split(","))]
    assert set(rows["id"]) == set(CLAIMS.split(",")), f"{set(rows['id'])} ({note})"
    short = rows[rows["runs"] != rows["planned"]]
    assert short.empty, f"{short[['id', 'cell', 'runs', 'planned']]}\n{note}"
    assert set(rows["verdict"]) == {"inconclusive"}, f"{rows[['id', 'verdict', 'reason']]}\n{note}"
    every_job_finished_with_every_epoch(chaos_store, note)


SERVER_KILLS = 4  # 5 took ~40 s more of CI
PER_EPOCH = ("train_loss", "test_acc", "system/staleness_mean")
# The server is killed once the writers have passed this many more points of their jobs' lives
# (benchmarks/engine/points.py: runs reserved, metrics logged, ends written) since its start,
# and restarted after a pause of SERVER_DOWN_S.
POINTS_UP, SERVER_DOWN_S = (2, 10), (1.0, 6.0)
WRITE = ("run", "fig3", "--profile", "smoke", "--runs", "2")  # table1's 8 smoke jobs (fig3: a view)


def writer(uri: str, credentials: dict[str, str]) -> subprocess.Popen:
    """`run fig3 --profile smoke --runs 2` on the server at `uri` as a writer of the lab, in the
    background: a job that starts while the server is away waits for it (up to 60 s)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", *WRITE, "--tracking-uri", uri], cwd=ROOT,
        env={**os.environ, **credentials, "BENCH_POINTS": "say"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    LONG_JOBS.append(proc)
    return proc


def writing(store: str, writers: list[subprocess.Popen], within_s: float = 180) -> None:
    """Wait until every writer has opened a run in `store` (each is past its start-up)."""
    client, deadline = MlflowClient(tracking_uri=store), time.monotonic() + within_s
    while True:
        experiment = client.get_experiment_by_name("table1")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if len({r.data.tags.get("pid") for r in runs}) >= len(writers):
            return
        assert time.monotonic() < deadline and all(w.poll() is None for w in writers), "a writer ended"
        time.sleep(0.2)


def intact(store: str) -> str:
    """SQLite's own check of the store's file: 'ok', or what is wrong."""
    with sqlite3.connect(store.removeprefix("sqlite:///")) as db:
        return "; ".join(row[0] for row in db.execute("PRAGMA integrity_check"))


@pytest.mark.slow  # not in CI (~3.5 min): tests/test_lab_load.py kills the server at a random point there
def test_a_server_killed_under_two_writers_loses_and_doubles_nothing(tmp_path):
    seed, rng = seed_and_rng()
    server = Server(tmp_path / "mlflow.db", auth=True).start().add_lab_users()  # docs/methods.md's lab
    writers, kills = [writer(server.uri, credentials) for credentials in WRITERS], []
    said = [Said(w) for w in writers]
    try:
        writing(server.store, writers)  # a command that starts while its server is away ends (exit 1)
        while len(kills) < SERVER_KILLS and any(w.poll() is None for w in writers):
            at = sum(s.points for s in said) + rng.randint(*POINTS_UP)
            while sum(s.points for s in said) < at and any(w.poll() is None for w in writers):
                time.sleep(0.05)
            server.stop(signal.SIGKILL)
            kills.append(at)
            note = f"CHAOS_SEED={seed}, after kill {len(kills)}"
            assert intact(server.store) == "ok", note
            time.sleep(rng.uniform(*SERVER_DOWN_S))
            server.start()
        note = f"CHAOS_SEED={seed}, killed at the writers' points {kills}"
        for w in writers:
            w.wait(timeout=600)
    finally:
        server.stop()
    for proc, err in zip(writers, [s.text() for s in said], strict=True):  # none failed
        assert proc.returncode == 0 and "Traceback" not in err, f"{note}\n{err[-3000:]}"
    assert len(kills) >= 3, f"the writers ended after {len(kills)} kills: {note}"
    assert intact(server.store) == "ok", note
    finished, running = runs_by_status(server.store)
    assert not running, f"left running: {running} ({note})"
    assert len(finished) == 8 and set(finished.values()) == {1}, f"{finished} ({note})"
    every_job_finished_with_every_epoch(server.store, note, PER_EPOCH)  # table1's: every row async
    print(f"\n{note}")
