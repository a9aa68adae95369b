"""A run whose tracking server goes away keeps training: its records wait in a spool on disk, go to
the server when it answers again, or later through `sync`; and two processes that reserve one job
at the same moment on a store without this host's lock never both run it.

The server's absence is played by the store's client failing as MLflow's HTTP client does when
nothing answers (tests/test_server.py and tests/test_two_hosts.py stop a real server)."""

import json
import logging
import subprocess

import pytest
from mlflow.exceptions import MlflowException, RestException

from benchmarks.engine import store as store_module
from benchmarks.engine import tracking as tracking_module
from benchmarks.engine.runner import run_job
from benchmarks.engine.spool import Spool, spool_dir
from benchmarks.engine.tracking import Tracker
from benchmarks.run_verbs import close_stale

from .conftest import run_cli, smoke_job

SERVER = "http://10.0.0.1:5000"
WRITES = ("log_batch", "log_inputs", "log_table", "set_terminated")


def away_for(tracker: Tracker, monkeypatch, first: int, last: float) -> dict:
    """Make the tracker's store writes number `first` to `last` (counting from 1) fail as calls to
    a server that does not answer do; the tracker is treated as a server's. Returns the counter
    (`calls["last"] = 0`: the server is back)."""
    tracker.remote = True
    calls = {"n": 0, "failed": 0, "last": last}
    for name in WRITES:
        real = getattr(tracker.client, name)

        def write(*args, _real=real, **kwargs):
            calls["n"] += 1
            if first <= calls["n"] <= calls["last"]:
                calls["failed"] += 1
                raise MlflowException(
                    "API request to http://10.0.0.1:5000/api failed with exception ConnectionError"
                )
            return _real(*args, **kwargs)

        monkeypatch.setattr(tracker.client, name, write)
    return calls


def job():
    return smoke_job("bp", t_max=3, max_epochs=3, patience=3)


def assert_complete(tracker: Tracker, run_id: str, status: str = "finished") -> None:
    """The run is in the store as if logged live: each epoch's metrics, its end, its dataset."""
    client = tracker.client
    assert [m.step for m in client.get_metric_history(run_id, "test_acc")] == [0, 1, 2]
    run = client.get_run(run_id)
    assert run.data.tags["status"] == status and run.info.end_time is not None
    assert run.info.status == {"finished": "FINISHED", "failed": "FAILED"}[status]
    assert run.inputs.dataset_inputs, "the dataset input was lost"


def test_a_server_away_mid_run_costs_no_record_and_says_so_once(new_store, monkeypatch, caplog):
    monkeypatch.setattr(tracking_module, "RETRY_S", 0.0)  # tried again at each record
    tracker = Tracker(new_store)
    calls = away_for(tracker, monkeypatch, first=3, last=9)  # from the first epoch's metrics on
    with caplog.at_level(logging.WARNING):
        result = run_job(job(), None, tracker, progress=False)
    assert result.status == "finished" and calls["failed"] == 7
    assert_complete(tracker, result.run_id)
    away = [r for r in caplog.records if "does not answer" in r.getMessage()]
    back = [r for r in caplog.records if "answers again" in r.getMessage()]
    assert len(away) == 1 and len(back) == 1, caplog.text
    assert "trains on" in away[0].getMessage() and str(spool_dir()) in away[0].getMessage()
    assert not list(spool_dir().iterdir())  # the spool is gone once its records are in the store


def test_a_server_away_to_the_end_leaves_one_line_and_sync_sends_the_run(new_store, monkeypatch, caplog):
    monkeypatch.setenv("BENCH_STORE_WAIT_S", "0.3")
    tracker = Tracker(new_store)
    calls = away_for(tracker, monkeypatch, first=3, last=float("inf"))
    with caplog.at_level(logging.WARNING):
        result = run_job(job(), None, tracker, progress=False)
    assert result.status == "finished"
    (path,) = spool_dir().iterdir()
    ended = [r for r in caplog.records if "did not answer by the end" in r.getMessage()]
    assert len(ended) == 1 and f"python -m benchmarks sync {path}" in ended[0].getMessage(), caplog.text
    assert tracker.client.get_run(result.run_id).data.tags["status"] == "running"  # nothing after call 2
    calls["last"] = 0  # the server is back
    proc = run_cli("sync")
    assert proc.returncode == 0 and "records sent to" in proc.stdout, proc.stderr
    assert_complete(Tracker(new_store), result.run_id)
    assert not path.exists()
    proc = run_cli("sync")  # nothing left: says so
    assert proc.returncode == 0 and "no spools" in proc.stdout


def test_sync_refuses_a_running_jobs_spool_and_closes_a_dead_ones_run(new_store, monkeypatch, caplog):
    tracker = Tracker(new_store)
    run_id = tracker.start("test", "a-run", dict(job_key="k", status="running"), {})
    spool = Spool.create(tracker.uri, run_id, "a-run")
    spool.append(dict(op="metrics", metrics=[["test_acc", 0.5, 1, 0], ["test_acc", 0.6, 2, 1]]))
    lines = spool.path.read_text().splitlines()

    def written_by(pid: str) -> None:
        header = {**json.loads(lines[0]), "pid": pid, "pid_start": ""}
        spool.path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")

    with subprocess.Popen(["sleep", "30"]) as job:  # a job's process, alive
        written_by(str(job.pid))
        proc = run_cli("sync", str(spool.path))
        job.kill()
    assert proc.returncode == 1 and "is still running" in proc.stderr and spool.path.exists(), proc.stderr
    written_by(str(job.pid))  # now dead
    # The next command on the store sends it (its process died before the run's end: failed, stale).
    with caplog.at_level(logging.WARNING):
        close_stale(tracker)
    assert "run a-run: 3 records from the spool" in caplog.text  # the metrics, the failed tags, the end
    run = tracker.client.get_run(run_id)
    assert run.data.tags["status"] == "failed" and run.data.tags["stop_reason"] == "stale"
    assert [m.value for m in tracker.client.get_metric_history(run_id, "test_acc")] == [0.5, 0.6]
    assert not spool.path.exists()


def test_a_request_the_server_refuses_is_an_error_not_a_spool(new_store, monkeypatch):
    tracker = Tracker(new_store)
    tracker.remote = True
    run_id = tracker.start("test", "a-run", dict(job_key="k", status="running"), {})

    def refuse(*args, **kwargs):
        raise RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad metric"})  # a 400

    monkeypatch.setattr(tracker.client, "log_batch", refuse)
    with pytest.raises(MlflowException, match="bad metric"):
        tracker.log_metrics(run_id, {"x": 1.0}, step=0)
    assert not list(spool_dir().iterdir())


def test_a_spool_that_was_partly_sent_sends_only_the_rest(tmp_path, new_store):
    tracker = Tracker(new_store)
    run_id = tracker.start("test", "a-run", dict(job_key="k", status="running"), {})
    spool = Spool.create(tracker.uri, run_id, "a-run")
    for step in range(3):
        spool.append(dict(op="table", columns={"step": [step]}, artifact_file="t.json"))
    spool.mark_sent(2)  # the first two rows reached the store before the server went away
    loaded = Spool.load(spool.path)
    assert loaded.sent == 2 and [r["columns"]["step"] for r in loaded.pending()] == [[2]]
    (tmp_path / "not-a-spool.jsonl").write_text('{"x": 1}\n')
    proc = run_cli("sync", str(tmp_path / "not-a-spool.jsonl"))
    assert proc.returncode == 1 and "is not a spool of this suite" in proc.stderr, proc.stderr


def test_two_processes_reserving_one_job_at_once_never_both_run_it(new_store, monkeypatch):
    """Without the lock (a server): B checks, A creates its run, B creates its own: B looks again,
    sees A's and steps back (its run deleted); A goes on."""
    first, second = Tracker(new_store), Tracker(new_store)
    monkeypatch.setattr(tracking_module.time, "sleep", lambda seconds: None)
    for tracker in (first, second):
        monkeypatch.setattr(tracker, "lock", _no_lock)
    tags = dict(job_key="the-job", status="running")
    real_taken, checks = second.taken, []

    def taken_as_the_other_starts(*args, **kwargs):
        answer = real_taken(*args, **kwargs)
        if not checks:  # between B's first check and B's create: A reserves
            checks.append(first.start("test", "a", tags, {}, reserve=True))
        return answer

    monkeypatch.setattr(second, "taken", taken_as_the_other_starts)
    assert second.start("test", "b", tags, {}, reserve=True) is None
    runs = first.client.search_runs([first.experiment_id("test")])
    assert [r.info.run_id for r in runs] == checks  # only A's run is left (B's was deleted)


def _no_lock():
    import contextlib

    return contextlib.nullcontext()


def test_a_store_lock_held_too_long_is_one_line_not_a_hang(tmp_path):
    """Every wait on the store ends: a lock another process holds (here, another open file) past
    the wait is a StorageError naming it."""
    import fcntl
    import time

    from core.errors import StorageError

    path = tmp_path / "mlflow.db.lock"
    with open(path, "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(StorageError, match="was held by another process for 0 s"):
            with store_module.file_lock(path, wait_s=0.3):
                pass
        assert time.monotonic() - started < 5
    with store_module.file_lock(path, wait_s=0.3):  # released: taken at once
        pass


def test_a_new_store_is_created_whole_or_not_at_all(tmp_path):
    """A process killed while MLflow builds a new store's schema leaves no store (the next command
    builds it again), and its scratch file is cleared then."""
    store = tmp_path / "mlflow.db"
    left = tmp_path / ".mlflow.db.99999.new"
    left.write_bytes(b"half a schema")  # what a kill -9 mid-build leaves
    tracker = Tracker(f"sqlite:///{store}")
    assert store.is_file() and not left.exists()
    assert [e.name for e in tracker.client.search_experiments()] == ["Default"]
    assert not list(tmp_path.glob(".*.new"))


def test_doctor_names_the_spools_waiting_and_the_verb_that_sends_them():
    from benchmarks.doctor import check_spools

    assert check_spools().ok is None and "none waiting" in check_spools().found
    Spool.create("http://10.0.0.1:5000", "0123abcd", "bp · resnet18 · run0")
    check = check_spools()
    assert "1 run(s) waiting" in check.found and "python -m benchmarks sync" in check.fix
    assert check.needed is False  # information: a waiting spool does not fail doctor
