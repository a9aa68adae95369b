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

from benchmarks.engine import spool as spool_module
from benchmarks.engine import store as store_module
from benchmarks.engine import tracking as tracking_module
from benchmarks.engine.runner import run_job
from benchmarks.engine.spool import Spool, spool_dir
from benchmarks.engine.tracking import Tracker
from benchmarks.run_verbs import close_stale
from core.errors import ServerAway
from core.runtime.processes import identity

from .conftest import run_cli, smoke_job

SERVER = "http://10.0.0.1:5000"
NO_ANSWER = "API request to http://10.0.0.1:5000/api failed with exception ConnectionError"  # MLflow's
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
                raise MlflowException(NO_ANSWER)
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


@pytest.mark.ci
@pytest.mark.slow  # a job trained through an away store: ~5 s, in CI
def test_a_full_spool_disk_never_ends_training_and_a_server_back_gets_every_record(
    new_store, monkeypatch, caplog, full_disk
):
    """The spool's disk refuses every write (ENOSPC): the job trains on, says so in one line, keeps
    its records in memory and sends them all when the server answers again."""
    monkeypatch.setattr(tracking_module, "RETRY_S", 0.0)
    monkeypatch.setenv("BENCH_SPOOL_DIR", str(full_disk))
    tracker = Tracker(new_store)
    calls = away_for(tracker, monkeypatch, first=3, last=9)
    with caplog.at_level(logging.WARNING):
        result = run_job(job(), None, tracker, progress=False)
    assert result.status == "finished" and calls["failed"] == 7
    assert_complete(tracker, result.run_id)
    said = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(said) == 1 and "No space left on device" in said[0] and "memory" in said[0], caplog.text
    assert len([r for r in caplog.records if "answers again" in r.getMessage()]) == 1, caplog.text


@pytest.mark.ci
@pytest.mark.slow  # a job trained through an away store: ~5 s, in CI
def test_a_full_spool_disk_with_the_server_away_to_the_end_counts_what_is_lost(
    new_store, monkeypatch, caplog, full_disk
):
    """Away to the end with the spool's disk full: training reaches its last epoch, and one line at
    the end says how many records were lost."""
    monkeypatch.setenv("BENCH_STORE_WAIT_S", "0.3")
    monkeypatch.setenv("BENCH_SPOOL_DIR", str(full_disk))
    tracker = Tracker(new_store)
    away_for(tracker, monkeypatch, first=3, last=float("inf"))
    with caplog.at_level(logging.WARNING):
        result = run_job(job(), None, tracker, progress=False)
    assert result.status == "finished" and result.epochs == 3
    ended = [r.getMessage() for r in caplog.records if "did not answer by the end" in r.getMessage()]
    assert len(ended) == 1 and "of its records, kept in memory" in ended[0] and "are lost" in ended[0], ended
    lost = int(ended[0].split(": ", 1)[1].split(" of its records")[0])
    assert lost >= 5, ended  # 3 epochs' metrics, the final tags and the end at least


@pytest.mark.ci
@pytest.mark.slow  # a job trained through an away store: ~5 s, in CI
def test_records_past_the_spools_cap_are_counted_and_said_once(new_store, monkeypatch, caplog):
    """A spool past its cap drops later records (never the run's end), counts them and says the
    count once, when its records reach the server."""
    monkeypatch.setattr(tracking_module, "RETRY_S", 1e9)  # tried again only at the run's end
    monkeypatch.setattr(spool_module, "SPOOL_LIMIT_BYTES", 2000)
    monkeypatch.setenv("BENCH_STORE_WAIT_S", "5")
    tracker = Tracker(new_store)
    calls = away_for(tracker, monkeypatch, first=3, last=float("inf"))
    real_finish = tracker.finish

    def server_back_at_the_end(*args, **kwargs):
        calls["last"] = 0
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(tracker, "finish", server_back_at_the_end)
    with caplog.at_level(logging.WARNING):
        result = run_job(job(), None, tracker, progress=False)
    assert result.status == "finished"
    run = tracker.client.get_run(result.run_id)
    assert run.info.status == "FINISHED"  # the end is never dropped
    said = [r.getMessage() for r in caplog.records if "were not kept" in r.getMessage()]
    assert len(said) == 1 and "records past the spool's cap" in said[0], caplog.text


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
    sees A's and steps back (its run ended `superseded`, never deleted: a writer may not); A goes on."""
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
    assert [r.info.run_id for r in runs if r.data.tags["status"] != "superseded"] == checks  # A's
    (stepped_back,) = [r for r in runs if r.info.run_id not in checks]
    assert stepped_back.data.tags["superseded"] == "collision" and stepped_back.info.status == "KILLED"
    from reports.runs import load_runs

    assert list(load_runs(first.uri, "test")["run_id"]) == checks  # readers ignore it


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


def _rows(tracker: Tracker, run_id: str, tmp_path) -> list[list]:
    path = tracker.client.download_artifacts(run_id, "staleness.json", str(tmp_path))
    return json.loads(open(path).read())["data"]


def test_a_record_sent_twice_is_in_the_store_once(tmp_path, new_store, monkeypatch):
    """A crash between sending a spool's records and marking them sent (or a request that timed out
    once the server had applied it): `sync` sends them again, and the table's rows are there once."""
    tracker = Tracker(new_store)
    run_id = tracker.start("test", "a-run", dict(job_key="k", status="running"), {})
    tracker.log_table(run_id, {"epoch": [0, 0], "tensor": ["a", "b"]}, "staleness.json")  # live
    tracker.remote = True
    real = tracker.client.log_table

    def applied_then_timed_out(*args, **kwargs):
        real(*args, **kwargs)
        raise MlflowException("API request to http://10.0.0.1:5000/api failed with exception ReadTimeout")

    monkeypatch.setattr(tracker.client, "log_table", applied_then_timed_out)
    tracker.log_table(run_id, {"epoch": [1, 1], "tensor": ["a", "b"]}, "staleness.json")
    (path,) = spool_dir().iterdir()  # ...after the server had applied it: the record waits anyway
    spool = Spool.load(path)
    assert [r["id"] for r in spool.records] == [1] and spool.records[0]["columns"]["record_id"] == [1, 1]
    spool.append(dict(op="end", status="FINISHED", end_time=1))
    monkeypatch.undo()
    proc = run_cli("sync", str(path))
    assert proc.returncode == 0 and "2 records sent" in proc.stdout, proc.stderr
    rows = _rows(Tracker(new_store), run_id, tmp_path)
    assert sorted((row[0], row[1]) for row in rows) == [(0, "a"), (0, "b"), (1, "a"), (1, "b")], rows


def test_a_row_group_the_store_lost_to_a_late_write_is_written_again_at_the_runs_end(
    tmp_path, new_store, caplog
):
    """A write that timed out here and that the server finished after a later one puts an earlier
    version of the table back (seen in CI's lab load test: a finished run without its last epoch's
    rows). At the run's end its tables are checked and each lost group is written again, in one line."""
    tracker = Tracker(new_store)
    run_id = tracker.start("test", "a-run", dict(job_key="k", status="running"), {})
    tracker.log_table(run_id, {"epoch": [0, 0], "tensor": ["a", "b"]}, "staleness.json")
    saved = tracker.client.download_artifacts(run_id, "staleness.json", str(tmp_path))
    earlier = json.loads(open(saved).read())
    tracker.log_table(run_id, {"epoch": [1, 1], "tensor": ["a", "b"]}, "staleness.json")
    late = tmp_path / "late" / "staleness.json"  # the earlier version, landing last
    late.parent.mkdir()
    late.write_text(json.dumps(earlier))
    tracker.client.log_artifact(run_id, str(late))
    assert len(_rows(tracker, run_id, tmp_path / "a")) == 2
    with caplog.at_level(logging.WARNING):
        tracker.finish(run_id, "finished", {})
    rows = _rows(tracker, run_id, tmp_path / "b")
    assert sorted((row[0], row[1]) for row in rows) == [(0, "a"), (0, "b"), (1, "a"), (1, "b")], rows
    assert caplog.text.count("had lost 1 of the 2 row groups of its staleness.json") == 1, caplog.text
    with caplog.at_level(logging.WARNING):  # nothing lost: nothing written, nothing said
        run_id = tracker.start("test", "b-run", dict(job_key="j", status="running"), {})
        tracker.log_table(run_id, {"epoch": [0], "tensor": ["a"]}, "staleness.json")
        tracker.finish(run_id, "finished", {})
    assert caplog.text.count("row groups of its") == 1 and len(_rows(tracker, run_id, tmp_path / "c")) == 1


def test_a_torn_last_line_is_skipped_in_one_line_and_a_torn_middle_is_an_error(new_store, caplog):
    spool = Spool.create(new_store, "0123abcd", "a-run")
    spool.append(dict(op="metrics", metrics=[["test_acc", 0.5, 1, 0]], id=0))
    with spool.path.open("a") as handle:
        handle.write('{"op": "metrics", "metr')  # a power cut mid-write
    with caplog.at_level(logging.WARNING):
        loaded = Spool.load(spool.path)
    assert len(loaded.records) == 1 and caplog.text.count("cut off by a crash mid-write") == 1
    with spool.path.open("a") as handle:
        handle.write('\n{"sent": 1}\n')
    proc = run_cli("sync", str(spool.path))
    assert proc.returncode == 1 and "line 3" in proc.stderr and spool.path.exists(), proc.stderr


def test_a_spool_is_sent_only_by_its_host_and_by_one_process_at_a_time(new_store, monkeypatch):
    """Another host's spool (a shared folder) is neither sent nor removed here, its run left alone;
    a spool another process is sending is left to it; each in one line."""
    import fcntl

    tracker = Tracker(new_store)
    run_id = tracker.start("test", "a-run", dict(job_key="k", status="running"), {})
    spool = Spool.create(tracker.uri, run_id, "a-run")
    header, *rest = spool.path.read_text().splitlines()
    spool.path.write_text(json.dumps({**json.loads(header), "host": "another-host"}) + "\n")
    close_stale(tracker)  # what each `run` does first
    proc = run_cli("sync", str(spool.path))
    assert proc.returncode == 1 and "a spool of host another-host" in proc.stderr, proc.stderr
    assert spool.path.exists() and tracker.client.get_run(run_id).data.tags["status"] == "running"
    spool.path.write_text(header + "\n")  # this host's again, its process gone
    with open(spool.path) as holder:  # another `sync` holds it
        fcntl.flock(holder, fcntl.LOCK_EX)
        proc = run_cli("sync", str(spool.path))
    assert proc.returncode == 1 and "sent by another process" in proc.stderr, proc.stderr
    assert tracker.client.get_run(run_id).data.tags["status"] == "running"


def test_a_local_error_is_said_not_spooled_and_never_holds_the_records_after_it(
    new_store, monkeypatch, caplog
):
    """A table this host cannot write (a file:// artifact location it may not write: not an away
    server) is said in one line and the job goes on, nothing spooled; in a spool, such a record is
    passed over, said, and the records after it reach the store."""
    from mlflow.tracking import MlflowClient

    def local_failure(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/lab/results/artifacts/x")

    monkeypatch.setattr(MlflowClient, "log_table", local_failure)
    tracker = Tracker(new_store)
    tracker.remote = True
    run_id = tracker.start("test", "a-run", dict(job_key="k", status="running"), {})
    with caplog.at_level(logging.ERROR):
        tracker.log_table(run_id, {"epoch": [0]}, "staleness.json")
        tracker.log_metrics(run_id, {"x": 1.0}, step=0)
    assert caplog.text.count("its staleness.json could not be written") == 1, caplog.text
    assert not list(spool_dir().iterdir())
    spool = Spool.create(tracker.uri, run_id, "a-run")
    spool.append(dict(op="table", columns={"epoch": [1], "record_id": [2]}, artifact_file="t.json", id=2))
    spool.append(dict(op="metrics", metrics=[["x", 2.0, 1, 1]], id=3))
    spool.append(dict(op="end", status="FINISHED", end_time=1, id=4))
    proc = run_cli("sync", str(spool.path))
    assert proc.returncode == 0 and "3 records sent" in proc.stdout, proc.stderr
    assert proc.stderr.count("run a-run: its t.json could not be written") == 1, proc.stderr
    assert "Permission denied" in proc.stderr
    assert sorted(m.step for m in tracker.client.get_metric_history(run_id, "x")) == [0, 1]
    assert tracker.client.get_run(run_id).info.status == "FINISHED" and not spool.path.exists()


def test_a_run_beats_and_one_whose_host_stops_beating_is_reclaimed_in_one_line(new_store, monkeypatch):
    """A running run's heartbeat tag moves; another host's run that missed 10 beats no longer holds
    its job, and the next `run` closes it naming the host; one that beats is left alone."""
    import time

    monkeypatch.setenv("BENCH_HEARTBEAT_S", "0.1")
    tracker = Tracker(new_store)
    mine = tracker.start("test", "mine", dict(job_key="mine", status="running"), {}, reserve=True)
    first = float(tracker.client.get_run(mine).data.tags["heartbeat"])
    deadline = time.monotonic() + 60
    while float(tracker.client.get_run(mine).data.tags["heartbeat"]) <= first:
        assert time.monotonic() < deadline, "no heartbeat within 60 s"
        time.sleep(0.1)
    tracker.finish(mine, "finished", {})
    elsewhere = dict(status="running", host="another-host", pid="4242", pid_start="1")
    old = tracker.start("test", "old", dict(job_key="old", **elsewhere), {})
    live = tracker.start("test", "live", dict(job_key="live", **elsewhere), {})
    for run_id in (old, live):
        tracker._heartbeat.remove(run_id)  # beaten by nobody here: as another host's runs
    time.sleep(0.5)  # past a beat in flight
    tracker.client.set_tag(old, "heartbeat", f"{time.time() - 5:.1f}")  # 50 beats ago
    assert not tracker.taken("test", "old") and tracker.taken("test", "live")
    lines = tracker.close_stale_runs()
    assert len(lines) == 1 and "(pid 4242 on another-host) missed its heartbeats for" in lines[0], lines
    assert tracker.client.get_run(old).data.tags["status"] == "failed"
    assert tracker.client.get_run(live).data.tags["status"] == "running"


def test_failed_heartbeats_are_counted_and_said_once_then_at_the_runs_end(tmp_path, monkeypatch, caplog):
    """A beat that fails (a server away, a refusal) is not swallowed: its first failure is logged at
    once, the next ones only counted, and the count said when the run stops beating."""
    import time

    from mlflow.tracking import MlflowClient

    from benchmarks.engine.heartbeat import Heartbeat

    def refused(self, run_id, *args):
        raise MlflowException("server away")

    monkeypatch.setenv("BENCH_HEARTBEAT_S", "0.02")
    monkeypatch.setattr(MlflowClient, "get_run", refused)  # a beat reads the run's status first
    monkeypatch.setattr(MlflowClient, "set_tag", refused)
    heart = Heartbeat(f"sqlite:///{tmp_path}/unused.db")
    with caplog.at_level(logging.WARNING, logger="benchmarks.engine.heartbeat"):
        heart.add("r1")
        deadline = time.monotonic() + 60
        while heart.failed["r1"] < 3:
            assert time.monotonic() < deadline, "no beat within 60 s"
            time.sleep(0.02)
        firsts = [r.message for r in caplog.records if "a heartbeat failed" in r.message]
        heart.remove("r1")
    assert len(firsts) == 1 and "server away" in firsts[0], firsts
    ends = [r.message for r in caplog.records if "heartbeats failed" in r.message]
    assert len(ends) == 1 and ends[0].startswith("run r1: ") and "r1" not in heart.failed, ends


def test_a_reservation_that_meets_another_at_every_try_is_said_not_skipped(new_store, monkeypatch):
    """Two processes that step back at every try (each sees the other's run, then both end theirs
    superseded): the job is not reported as another's, which nobody runs; one line says to run again."""
    from core.errors import StorageError

    tracker = Tracker(new_store)
    monkeypatch.setattr(tracking_module.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(tracker, "taken", lambda experiment, key, besides="": bool(besides))
    with pytest.raises(StorageError, match="neither runs it: run the command again"):
        tracker.start("test", "a", dict(job_key="the-job", status="running"), {}, reserve=True)
    runs = tracker.client.search_runs([tracker.experiment_id("test")])
    assert runs and all(r.data.tags["status"] == "superseded" for r in runs)  # none left running


def test_a_job_whose_server_is_away_at_its_start_waits_and_leaves_no_orphan(new_store, monkeypatch, caplog):
    """The server applies a job's create_run, then goes away before answering: the tracker waits
    (said once), marks superseded the run it cannot know it made, and opens one run; a server that stays away
    past $BENCH_STORE_WAIT_S ends it in one line (ServerAway, exit 1)."""
    tracker = Tracker(new_store)
    tracker.remote = True
    monkeypatch.setattr(store_module.time, "sleep", lambda seconds: None)
    real_create, lost = tracker.client.create_run, []

    def create_then_go_away(*args, **kwargs):
        run = real_create(*args, **kwargs)
        if not lost:
            lost.append(run.info.run_id)
            raise MlflowException(NO_ANSWER)
        return run

    monkeypatch.setattr(tracker.client, "create_run", create_then_go_away)
    tags = dict(job_key="the-job", status="running", **identity())
    with caplog.at_level(logging.WARNING):
        run_id = tracker.start("test", "a", tags, {}, reserve=True)
    runs = {r.info.run_id: r for r in tracker.client.search_runs([tracker.experiment_id("test")])}
    assert set(runs) == {run_id, lost[0]} and lost[0] != run_id
    assert runs[lost[0]].data.tags["superseded"] == "lost create" and runs[lost[0]].info.status == "KILLED"
    said = [r.getMessage() for r in caplog.records if "waiting up to 60 s" in r.getMessage()]
    assert len(said) == 1 and "does not answer (" in said[0], said

    def away(*args, **kwargs):
        raise MlflowException(NO_ANSWER)

    monkeypatch.setenv("BENCH_STORE_WAIT_S", "0")
    monkeypatch.setattr(tracker.client, "search_runs", away)
    with pytest.raises(ServerAway, match=r"does not answer \(.*\) for 0 s"):
        tracker.start("test", "b", dict(tags, job_key="another-job"), {}, reserve=True)


# --- refused is not away; readers write nothing ---------------------------------------------------
FORBIDDEN = {"error_code": "PERMISSION_DENIED", "message": "Permission denied for requested operation."}


def dead_pid() -> str:
    """The pid of a process that has ended."""
    with subprocess.Popen(["true"]) as process:
        process.wait()
    return str(process.pid)


def dead_jobs_spool(tracker: Tracker, tail: str = "") -> tuple[str, Spool]:
    """A running run whose job's process has died, its spool holding one metrics record (`tail`:
    text after its last line, as a crash mid-write leaves)."""
    run_id = tracker.start("test", "a-run", dict(job_key="k", status="running"), {})
    spool = Spool.create(tracker.uri, run_id, "a-run")
    spool.append(dict(op="metrics", metrics=[["test_acc", 0.5, 1, 0]]))
    lines = spool.path.read_text().splitlines()
    header = {**json.loads(lines[0]), "pid": dead_pid(), "pid_start": ""}
    spool.path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n" + tail)
    return run_id, spool


def test_a_refusal_is_neither_away_nor_passed_over():
    """401 and 403, from MLflow's client or from an artifact's HTTP call, refuse; a 5xx or no
    answer is away; another 4xx is neither (said, passed over)."""
    import requests

    from benchmarks.engine.spool import refused, server_away

    def http_error(status: int) -> requests.HTTPError:
        response = requests.Response()
        response.status_code = status
        return requests.HTTPError(f"{status} error", response=response)

    for err in (RestException(FORBIDDEN), http_error(403), http_error(401)):
        assert refused(err) and not server_away(err), err
    for err in (http_error(503), MlflowException(NO_ANSWER), requests.ConnectionError("refused")):
        assert server_away(err) and not refused(err), err
    bad = RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad metric"})
    assert not refused(bad) and not server_away(bad) and not server_away(http_error(404))


def test_a_sync_the_server_refuses_leaves_the_spool_byte_for_byte_and_exits_1(new_store, monkeypatch, capsys):
    """A reader (or a writer without the right) syncing a dead job's spool: every write refused
    (403); the spool stays as it was, byte for byte, the run as it was, and `sync` exits 1 with one
    line naming the user and the right."""
    from mlflow import MlflowClient

    from benchmarks.run_verbs import sync_spools

    run_id, spool = dead_jobs_spool(Tracker(new_store))
    before = spool.path.read_bytes()

    def refuse(*args, **kwargs):
        raise RestException(FORBIDDEN)

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "rita")
    for name in WRITES:
        monkeypatch.setattr(MlflowClient, name, refuse)
    assert sync_spools([str(spool.path)], None) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused user 'rita' this write (403)" in err[0], err
    assert spool.path.read_bytes() == before
    assert Tracker(new_store).client.get_run(run_id).data.tags["status"] == "running"


def test_report_writes_nothing_and_sync_close_stale_closes_what_it_names(new_store, tmp_path):
    """A run left `running` by a dead process and a dead job's spool: `report` (a reader's verb)
    names both and leaves the run running and the spool byte for byte; `sync --close-stale` sends
    the spool and marks the run failed."""
    tracker = Tracker(new_store)
    tags = {**identity(), "pid": dead_pid(), "pid_start": "", "job_key": "k", "status": "running"}
    left = tracker.start("test", "left-running", tags, {})
    spooled = tracker.start("test", "spooled", {**tags, "job_key": "k2"}, {})
    spool = Spool.create(tracker.uri, spooled, "spooled")
    spool.append(dict(op="metrics", metrics=[["test_acc", 0.5, 1, 0]]))
    lines = spool.path.read_text().splitlines()
    header = {**json.loads(lines[0]), "pid": tags["pid"], "pid_start": ""}
    spool.path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    before = spool.path.read_bytes()
    proc = run_cli("report", "table1", "--tracking-uri", new_store, "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "run left-running was left running" in proc.stderr and "`python -m benchmarks sync`" in proc.stderr
    assert spool.path.read_bytes() == before
    status = {r: Tracker(new_store).client.get_run(r).data.tags["status"] for r in (left, spooled)}
    assert status == {left: "running", spooled: "running"}
    proc = run_cli("sync", "--close-stale")
    assert proc.returncode == 0 and "run left-running was left running" in proc.stdout, proc.stderr
    status = {r: Tracker(new_store).client.get_run(r).data.tags["status"] for r in (left, spooled)}
    assert status == {left: "failed", spooled: "failed"} and not spool.path.exists()


def test_a_write_after_a_torn_line_starts_fresh_and_sync_sends_every_whole_record(new_store, caplog):
    """A crash cut the spool's last line; the next write (here `sync`'s progress marks, the store
    answering) moves the fragment to `<spool>.torn` first, so no line glues onto it: every whole
    record reaches the store and the run is closed."""
    tracker = Tracker(new_store)
    run_id, spool = dead_jobs_spool(tracker, tail='{"op": "metrics", "metr')
    with caplog.at_level(logging.WARNING):
        assert tracker.sync(Spool.load(spool.path)) == 3  # the metrics, the failed tags, the end
    torn = spool.path.with_name(spool.path.name + ".torn")
    assert torn.read_text() == '{"op": "metrics", "metr\n' and "moved to" in caplog.text
    assert not spool.path.exists() and [p.suffix for p in spool_dir().iterdir()] == [".torn"]
    run = tracker.client.get_run(run_id)
    assert run.data.tags["status"] == "failed" and run.info.end_time is not None
    assert [m.value for m in tracker.client.get_metric_history(run_id, "test_acc")] == [0.5]


# --- jobs finish once -------------------------------------------------------------------------------
def reclaimed_run(tracker: Tracker, monkeypatch, job_key: str) -> str:
    """A run of another host (so only its heartbeat tells) that missed its beats: the next
    command's close_stale_runs closes it (failed, stale), as a suspended host's job is reclaimed."""
    run_id = silent_run(tracker, monkeypatch, "suspended", job_key)
    (line,) = Tracker(tracker.uri).close_stale_runs()  # another command, another host
    assert "missed its heartbeats" in line
    return run_id


def silent_run(tracker: Tracker, monkeypatch, name: str, job_key: str = "k") -> str:
    """A run of job `job_key` opened for another host (so only its heartbeat tells), whose beats
    stopped 50 of its beats ago (0.1 s each): alive or not, it looks dead to every reader."""
    import time

    monkeypatch.setenv("BENCH_HEARTBEAT_S", "0.1")
    elsewhere = dict(status="running", host="another-host", pid="4242", pid_start="1")
    run_id = tracker.start("test", name, dict(job_key=job_key, **elsewhere), {}, reserve=True)
    tracker._heartbeat.remove(run_id)  # the host is stopped, or its server away: no beat arrives
    tracker.client.set_tag(run_id, "heartbeat", f"{time.time() - 5:.1f}")
    return run_id


def finished_runs(tracker: Tracker, job_key: str) -> list:
    experiment = tracker.experiment_id("test")
    return tracker.client.search_runs(
        [experiment], f"tags.job_key = '{job_key}' and tags.status = 'finished'"
    )


def test_a_suspended_host_whose_job_was_reclaimed_cannot_finish_it_a_second_time(
    new_store, monkeypatch, caplog
):
    """The job runs again elsewhere and finishes; the suspended host resumes and ends its run
    `finished`: refused in one line, its run tagged superseded and left failed; one finished run."""
    tracker = Tracker(new_store)
    suspended = reclaimed_run(tracker, monkeypatch, "k")
    again = Tracker(new_store).start("test", "again", dict(job_key="k", status="running"), {}, reserve=True)
    assert again is not None  # the reclaimed job is free to run again
    Tracker(new_store).finish(again, "finished", {})
    with caplog.at_level(logging.ERROR):
        tracker.finish(suspended, "finished", {})  # the host resumes
    assert "was closed by another process while this one was stopped (failed, stale)" in caplog.text
    run = tracker.client.get_run(suspended)
    assert run.data.tags["status"] == "failed" and run.data.tags["superseded"] == "reclaimed"
    assert [r.info.run_id for r in finished_runs(tracker, "k")] == [again]


def test_a_reclaimed_runs_spool_is_never_sent_and_is_kept_apart(new_store, monkeypatch):
    """The suspended host's server was away at its run's end: its spool holds the end. Its job was
    reclaimed meanwhile: `sync` sends none of it (one line, exit 1) and keeps it as .superseded."""
    tracker = Tracker(new_store)
    suspended = reclaimed_run(tracker, monkeypatch, "k")
    spool = Spool.create(tracker.uri, suspended, "suspended")
    spool.append(dict(op="tags", tags=dict(status="finished")))
    spool.append(dict(op="end", status="FINISHED", end_time=1))
    proc = run_cli("sync", str(spool.path))
    assert proc.returncode == 1 and "was closed by another process while its host was away" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not spool.path.exists() and spool.path.with_name(spool.path.name + ".superseded").exists()
    assert tracker.client.get_run(suspended).data.tags["status"] == "failed" and not finished_runs(
        tracker, "k"
    )


def test_a_runs_own_beat_decides_when_it_is_missed_not_the_readers(new_store, monkeypatch):
    """A run started with 60 s beats is not reclaimed by a reader whose BENCH_HEARTBEAT_S is 0.1
    after 5 s of silence; its own beat is in its tags."""
    import time

    tracker = Tracker(new_store)
    elsewhere = dict(status="running", host="another-host", pid="4242", pid_start="1")
    run_id = tracker.start("test", "beats-a-minute", dict(job_key="k", **elsewhere), {})
    tracker._heartbeat.remove(run_id)
    assert tracker.client.get_run(run_id).data.tags["heartbeat_s"] == "60.0"
    tracker.client.set_tag(run_id, "heartbeat", f"{time.time() - 5:.1f}")
    monkeypatch.setenv("BENCH_HEARTBEAT_S", "0.1")
    assert Tracker(new_store).close_stale_runs() == []
    assert tracker.client.get_run(run_id).data.tags["status"] == "running"


def test_a_hosts_clock_is_read_against_its_servers_date():
    """`server_offset_s`: how far a server's clock (its answers' Date header) is ahead of this
    host's, to the second; 0, said, where it cannot be read."""
    import http.server
    import threading
    import time

    from benchmarks.engine.heartbeat import server_offset_s

    class Ahead(http.server.BaseHTTPRequestHandler):
        def date_time_string(self, timestamp=None):  # a server whose clock is an hour ahead
            return super().date_time_string(time.time() + 3600)

        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ahead)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        offset = server_offset_s(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
    assert abs(offset - 3600) <= 1.0, offset
    assert server_offset_s(f"http://127.0.0.1:{server.server_port}") == 0.0  # it stopped: no offset


@pytest.mark.parametrize("on_the_servers_clock", [True, False])
def test_a_hosts_clock_an_hour_behind_never_reclaims_its_live_job(
    new_store, monkeypatch, on_the_servers_clock
):
    """A writer whose clock is an hour behind stamps its beats on the store's clock (its offset to
    the server), so a reader with a true clock sees a live run; stamped on its own clock (no
    offset), the same run reads an hour old and is reclaimed: the case the offset is for."""
    from benchmarks.engine import heartbeat

    real = heartbeat.host_time
    monkeypatch.setattr(heartbeat, "host_time", lambda: real() - 3600)
    writer = Tracker(new_store)
    writer.clock_offset_s = 3600.0 if on_the_servers_clock else 0.0
    elsewhere = dict(status="running", host="another-host", pid="4242", pid_start="1")
    run_id = writer.start("test", "behind", dict(job_key="k", **elsewhere), {})
    writer._heartbeat.remove(run_id)
    monkeypatch.setattr(heartbeat, "host_time", real)  # the reader's clock is the server's
    stale = [run.info.run_id for run, _ in Tracker(new_store).stale_runs()]
    assert stale == ([] if on_the_servers_clock else [run_id])


def test_a_resumed_host_whose_job_was_reclaimed_writes_none_of_its_late_records(
    new_store, monkeypatch, caplog
):
    """The suspended host resumes: its next beat reads that its run was closed by another process,
    so its later metrics are refused (one line) and the run tagged superseded; the run keeps no
    record of after its reclaim, and its end is refused too."""
    import time

    tracker = Tracker(new_store)
    suspended = reclaimed_run(tracker, monkeypatch, "k")
    tracker._heartbeat.add(suspended)  # the host resumes: its beats go on (every 0.1 s here)
    deadline = time.monotonic() + 60
    while suspended not in tracker._heartbeat.fenced:
        assert time.monotonic() < deadline, "no beat read the run's status"
        time.sleep(0.05)
    with caplog.at_level(logging.ERROR):
        for step in range(3):
            tracker.log_metrics(suspended, {"test_acc": 0.5}, step)
        tracker.finish(suspended, "finished", {})
    said = [r for r in caplog.records if "later records of it are not written" in r.getMessage()]
    assert len(said) == 1, caplog.text
    run = tracker.client.get_run(suspended)
    assert run.data.tags["status"] == "failed" and run.data.tags["superseded"] == "reclaimed"
    assert not tracker.client.get_metric_history(suspended, "test_acc")


def test_reserving_a_job_closes_the_run_it_passes_over_so_its_owner_cannot_finish_it(new_store, monkeypatch):
    """A run of another host that missed its beats (a server away longer than 10 beats) is passed
    over by `taken`: the process that reserves the job first closes it (failed, stale), so the old
    run's process, alive after all, is fenced at its end; the job keeps one finished run (the lab's
    load test under a server kill found two)."""

    owner = Tracker(new_store)
    old = silent_run(owner, monkeypatch, "through-an-outage")
    again = Tracker(new_store).start("test", "again", dict(job_key="k", status="running"), {}, reserve=True)
    assert again is not None and owner.client.get_run(old).data.tags["status"] == "failed"
    Tracker(new_store).finish(again, "finished", {})
    owner.finish(old, "finished", {})  # the owner lives on, and ends
    assert [r.info.run_id for r in finished_runs(owner, "k")] == [again]


def test_a_run_reclaimed_while_its_end_waits_in_the_spool_never_ends_finished(new_store, monkeypatch, caplog):
    """The server is away when a job ends: its end waits in the spool, its beats stop, and another
    host's reservation closes the run as dead meanwhile. When the server is back, the spool is not
    sent (one line; kept as .superseded): the run stays failed, the job's other run its one finished
    run (the load test under a server kill found this case)."""
    monkeypatch.setattr(tracking_module, "RETRY_S", 0.0)
    owner = Tracker(new_store)
    elsewhere = dict(status="running", host="another-host", pid="4242", pid_start="1")
    run_id = owner.start("test", "owner", dict(job_key="k", **elsewhere), {}, reserve=True)
    owner._heartbeat.remove(run_id)
    calls = away_for(owner, monkeypatch, first=1, last=float("inf"))
    real_flush = owner._flush

    def reclaimed_then_back(spool, now=False):
        if spool.ended() and calls["last"]:  # the end waits: the run is reclaimed, then the server is back
            Tracker(new_store).finish(run_id, "failed", dict(stop_reason="stale", error="missed its beats"))
            calls["last"] = 0
        return real_flush(spool, now)

    monkeypatch.setattr(owner, "_flush", reclaimed_then_back)
    with caplog.at_level(logging.ERROR):
        owner.log_metrics(run_id, {"test_acc": 0.5}, 0)
        owner.finish(run_id, "finished", {})
    said = [r for r in caplog.records if "later records of it are not written" in r.getMessage()]
    assert len(said) == 1, caplog.text
    run = owner.client.get_run(run_id)
    assert run.data.tags["status"] == "failed" and run.data.tags["superseded"] == "reclaimed"
    assert run.info.status == "FAILED" and not owner.client.get_metric_history(run_id, "test_acc")
    assert [p.name.endswith(".superseded") for p in spool_dir().iterdir()] == [True]


def test_an_end_that_lands_after_another_process_closed_the_run_never_counts(new_store, monkeypatch):
    """The moment between an owner's read of its run's status and its write of `finished` (MLflow
    has no compare-and-set): a stale close that lands in it is overwritten by the late end, but its
    `closed_by` tag stays, so the run never counts as the job's finished run, in `taken`,
    `finished_run` or the reader; the job's run that ran again does."""

    from reports.runs import load_runs

    owner = Tracker(new_store)
    old = silent_run(owner, monkeypatch, "late")
    other = Tracker(new_store)
    again = other.start("test", "again", dict(job_key="k", status="running"), {}, reserve=True)
    assert owner.client.get_run(old).data.tags["closed_by"].startswith("pid ")
    owner.client.set_tag(old, "status", "finished")  # the owner's end, landed after the close
    assert not other.taken("test", "k", besides=again) and other.finished_run("test", "k") is None
    other.finish(again, "finished", {})
    assert other.finished_run("test", "k").info.run_id == again
    frame = load_runs(new_store, "test")
    assert list(frame[frame["status"] == "finished"]["run_id"]) == [again]


def test_a_run_whose_end_waits_in_a_spool_here_is_never_passed_over(new_store, monkeypatch):
    """Its beats stopped (its end is logged, in the spool, the server away), but its records wait
    in a spool of this folder (a host's, or hosts sharing one): the job is taken and the run not
    closed, so its end lands once and the job is not run twice (the load test caught it)."""

    owner = Tracker(new_store)
    run_id = silent_run(owner, monkeypatch, "draining")
    Spool.create(owner.uri, run_id, "draining").append(dict(op="end", status="FINISHED", end_time=1))
    other = Tracker(new_store)
    assert other.start("test", "again", dict(job_key="k", status="running"), {}, reserve=True) is None
    assert owner.client.get_run(run_id).data.tags["status"] == "running"
