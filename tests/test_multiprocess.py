"""--devices N: ranks as processes, the update exchange, drift, and a clean end when a rank dies."""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from .conftest import ON_CPU, run_cli, start_long_train

ASYNC2 = [
    "train",
    "--dataset",
    "cifar10",
    "--model",
    "resnet18",
    "--method",
    "async_lu",
    "--profile",
    "smoke",
    "--devices",
    "2",
    *ON_CPU,
]


def children(pid: int) -> set[int]:
    """Every live descendant of `pid`, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cmdline(pid: int) -> str:
    """A process's command line ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def test_async_lu_on_two_processes_exchanges_every_update(store):
    proc = run_cli(*ASYNC2, "--json", "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["epochs"] == 2
    client = MlflowClient(tracking_uri=store)
    drift = client.get_metric_history(result["run_id"], "system/replica_drift")
    assert [m.step for m in drift] == [0, 1]
    # After the epoch-end flush every replica holds every update: only float rounding differs.
    assert all(m.value < 1e-5 for m in drift)
    assert all(m.value > 0 for m in client.get_metric_history(result["run_id"], "system/exchange_rounds"))
    assert client.get_run(result["run_id"]).data.tags["devices"] == "2"


def wait_for_ranks(proc, store: str, count=2, timeout=300) -> set[int]:
    """The job's ranks, once they train: its run (the newest `running` one, opened by `proc`) has
    logged an epoch. 300 s: a fresh machine's first runs compile and migrate slowly."""
    client, deadline = MlflowClient(tracking_uri=store), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        ranks = {p for p in children(proc.pid) if "spawn_main" in cmdline(p)}
        experiment = client.get_experiment_by_name("adhoc")
        if len(ranks) < count or experiment is None:
            continue
        mine = f"tags.status = 'running' and tags.pid = '{proc.pid}'"
        for run in client.search_runs([experiment.experiment_id], filter_string=mine):
            if client.get_metric_history(run.info.run_id, "test_acc"):
                return ranks
    raise AssertionError("the ranks never trained an epoch")


@pytest.mark.slow  # a fault: run in CI (`make test-ci`), out of the 6-minute default run
@pytest.mark.ci
@pytest.mark.parametrize("method", ["async_lu", "layup"])
def test_a_killed_rank_fails_the_job_and_leaves_no_process(store, method):
    """kill -9 of one rank mid-training (layup: a worker whose peer's threads are mid-gossip with
    it): the job fails within 30 s with one line, and no process is left."""
    proc = start_long_train(store, *[method if arg == "async_lu" else arg for arg in ASYNC2])
    ranks = wait_for_ranks(proc, store)
    everything = children(proc.pid)
    os.kill(max(ranks), signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - killed < 30, stderr
    assert proc.returncode == 1, stderr
    assert "died with exit code" in stderr and "Traceback" not in stderr
    time.sleep(1)
    assert not [p for p in everything if alive(p)]


@pytest.mark.slow  # test_local_sgd's SIGINT test ends ranks and their workers, a deeper tree
def test_sigint_ends_every_rank(store):
    proc = start_long_train(store, *ASYNC2)
    wait_for_ranks(proc, store)
    everything = children(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    time.sleep(1)
    assert not [p for p in everything if alive(p)]
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs(
        [client.get_experiment_by_name("adhoc").experiment_id],
        filter_string="tags.method = 'async_lu' and tags.devices = '2'",
    )
    assert "interrupted" in {r.data.tags["status"] for r in runs}


def test_sigint_while_the_ranks_start_ends_cleanly(store):
    """Ctrl-C as soon as the ranks exist, while they still import and join the process group:
    exit 130 without a traceback (from the coordinator or a rank), and no process left."""
    proc = start_long_train(store, *ASYNC2)
    deadline = time.monotonic() + 120
    while not any("spawn_main" in cmdline(p) for p in children(proc.pid)):
        assert proc.poll() is None and time.monotonic() < deadline, "no rank was spawned"
        time.sleep(0.02)
    everything = children(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    time.sleep(1)
    assert not [p for p in everything if alive(p)]


@pytest.mark.slow
@pytest.mark.ci
def test_a_killed_coordinator_takes_its_ranks_and_the_next_command_closes_its_run(store, tmp_path):
    """kill -9 of the CLI process (an OOM kill): its ranks die with it (PR_SET_PDEATHSIG); `report`
    names the run it left RUNNING and leaves it, and `sync --close-stale` marks it failed (stale),
    so `run` redoes it."""
    proc = start_long_train(store, *ASYNC2)
    wait_for_ranks(proc, store)
    everything = children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and [p for p in everything if alive(p)]:
        time.sleep(0.2)
    assert not [p for p in everything if alive(p)], "ranks outlived their coordinator"
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("adhoc").experiment_id
    left = client.search_runs([experiment], filter_string="tags.status = 'running'")
    assert left  # the killed process could not close its run
    proc = run_cli("report", "table1", "--tracking-uri", store, "--out", str(tmp_path))  # a reader's verb
    assert proc.returncode == 0 and "was left running" in proc.stderr, proc.stderr
    assert client.get_run(left[0].info.run_id).data.tags["status"] == "running"  # said, not written
    proc = run_cli("sync", "--close-stale", "--tracking-uri", store)  # a writer's
    assert proc.returncode == 0 and "marked failed (stale)" in proc.stdout, proc.stderr
    for run in left:
        closed = client.get_run(run.info.run_id)
        assert closed.data.tags["status"] == "failed" and closed.data.tags["stop_reason"] == "stale"
        assert closed.info.status == "FAILED"
