"""The CLI as a user runs it: exit codes, one-line errors, JSON output, MLflow records, resume, SIGINT."""

import dataclasses
import glob
import json
import os
import signal
import time

import pytest
from mlflow.tracking import MlflowClient

from benchmarks.engine.tracking import Tracker
from core.result import RunResult
from datasets.synthetic import SMOKE_TRAIN

from .conftest import ON_CPU, add_run, cli, empty_store, run_cli, start_long_train

SMOKE = ["train", "--dataset", "cifar10", "--model", "resnet18", "--method", "bp", "--profile", "smoke"]


def one_error_line(proc, code, *needles):
    assert proc.returncode == code, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_list_names_methods_and_tables():
    proc = run_cli("list")
    assert proc.returncode == 0
    assert "bp" in proc.stdout and "table9" in proc.stdout and "overhead" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--method", "nope"], ["unknown method 'nope'", "bp"]),
        (["--dataset", "mnist"], ["unknown dataset 'mnist'", "cifar10", "cifar100", "synthetic"]),
        (["--model", "vgg"], ["unknown model 'vgg'", "resnet18", "resnet50"]),
        (["--profile", "fast"], ["unknown profile 'fast'", "smoke", "quick", "paper", "auto"]),
        (["--set", "lr=abc"], ["lr=abc", "float"]),
        (["--set", "nope=1"], ["unknown key 'nope'", "batch_size"]),
        (["--devices", "2"], ["bp runs on 1 device"]),
        (["--method", "async_lu", "--set", "backward_threads=0"], ["backward_threads must be >= 1"]),
    ],
)
def test_bad_train_input_exits_2_with_one_line(args, needles, store):
    base = dict(zip(SMOKE[1::2], SMOKE[2::2], strict=True))
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["train"] + [x for kv in base.items() for x in kv]
    one_error_line(run_cli(*argv, "--tracking-uri", store), 2, *needles)


def test_bad_run_and_perf_names_exit_2():
    one_error_line(run_cli("run", "table99"), 2, "unknown table 'table99'", "table9")
    one_error_line(run_cli("perf", "nope"), 2, "unknown perf benchmark 'nope'", "overhead", "pipeline")
    one_error_line(
        run_cli("run", "table9", "--methods", "bp", "--profile", "smoke"), 2, "methods of table9: fwd_bwd"
    )


def test_counts_are_checked_up_front(store):
    one_error_line(
        run_cli(*SMOKE, "--method", "ddp", "--devices", "999"), 2, "--devices 999", "this machine has"
    )
    too_big = run_cli(*SMOKE, "--set", "batch_size=100000", "--tracking-uri", store)
    one_error_line(too_big, 2, f"batch_size 100000 exceeds the {SMOKE_TRAIN} training samples")


@pytest.mark.parametrize("torchrun", [False, True], ids=["spawned", "torchrun"])
def test_more_processes_than_gpus_exit_2_naming_the_cpu_way(monkeypatch, torchrun):
    """On a 1-GPU machine (CUDA pretended here), 2 processes would share the GPU, which NCCL
    refuses: one line with the GPUs found and how to run the processes on the CPU instead."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    if torchrun:  # torchrun's environment for rank 0 of 2 processes on this machine
        for key, value in dict(RANK="0", WORLD_SIZE="2", LOCAL_RANK="0", LOCAL_WORLD_SIZE="2").items():
            monkeypatch.setenv(key, value)
    args = ["--devices", "2"] if not torchrun else []
    proc = run_cli(*SMOKE, "--method", "ddp", *args)
    asked = "torchrun's 2 processes here need 2 GPUs" if torchrun else "--devices 2 needs 2 GPUs"
    one_error_line(proc, 2, asked, "this machine has 1", "--set device=cpu")


def test_usage_errors_name_the_right_help():
    one_error_line(run_cli(), 2, "see `python -m benchmarks --help`")
    one_error_line(run_cli("train"), 2, "--method", "see `python -m benchmarks train --help`")


def test_run_counts_are_checked_up_front():
    one_error_line(run_cli("run", "table1", "--runs", "0", "--profile", "smoke"), 2, "--runs must be >= 1")
    one_error_line(
        run_cli("run", "table9", "--devices", "-1", "--profile", "smoke"), 2, "--devices must be >= 1"
    )


def test_run_without_its_data_exits_1_with_one_line(tmp_path, store, monkeypatch):
    """`run table3` where CIFAR-100 is neither on disk nor downloadable: nothing can run, so the
    command fails, saying why once for its 8 jobs, and counts them as not run."""
    monkeypatch.setattr("datasets.cifar.try_download", lambda name, data_dir: "no network")
    args = ("run", "table3", "--profile", "quick", "--data-dir", str(tmp_path), "--tracking-uri", store)
    proc = run_cli(*args)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("INFO")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert errors[0].startswith("error: not run: 8 jobs") and str(tmp_path / "cifar-100-python") in errors[0]
    assert "0 run, 0 already finished, 0 failed, 0 diverged, 8 not run" in proc.stdout


def test_missing_data_exits_1_naming_the_path(tmp_path, store):
    proc = run_cli(
        "train",
        "--dataset",
        "cifar10",
        "--model",
        "resnet18",
        "--method",
        "bp",
        "--profile",
        "quick",
        "--data-dir",
        str(tmp_path),
        "--tracking-uri",
        store,
    )
    one_error_line(proc, 1, str(tmp_path / "cifar-10-batches-py"), "download")
    missing = tmp_path / "not" / "there"
    proc = run_cli(*SMOKE, "--profile", "quick", "--data-dir", str(missing), "--tracking-uri", store)
    one_error_line(proc, 1, str(missing / "cifar-10-batches-py"))
    assert not (tmp_path / "not").exists()  # the failed download left no folder behind


def test_train_smoke_json_and_mlflow(store):
    """`train --json` through `cli.main` (a real `python -m benchmarks train`: the SIGINT test)."""
    proc = run_cli(*SMOKE, "--json", "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # One definition of the result (core/result.py): the same keys for every job, however it ended.
    assert list(result) == [f.name for f in dataclasses.fields(RunResult)]
    assert result["status"] == "finished" and result["epochs"] == 2 and result["mfu"] > 0
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(result["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "adhoc"
    assert [m.step for m in client.get_metric_history(result["run_id"], "test_acc")] == [0, 1]
    assert run.data.tags["status"] == "finished" and run.data.tags["method"] == "bp"


def test_run_resumes_by_job_key(store):
    first = run_cli("run", "table9", "--profile", "smoke", "--runs", "2", "--tracking-uri", store)
    assert first.returncode == 0, first.stderr
    assert "4 run, 0 already finished" in first.stdout and "beta=" in first.stdout
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("table9").experiment_id])
    assert len(runs) == 4 and {r.data.tags["status"] for r in runs} == {"finished"}
    client.set_tag(runs[0].info.run_id, "status", "interrupted")  # as if it had been stopped
    second = run_cli("run", "table9", "--profile", "smoke", "--runs", "2", "--tracking-uri", store)
    assert second.returncode == 0 and "1 run, 3 already finished" in second.stdout, second.stdout


def test_sigint_marks_the_run_interrupted(store):
    proc = start_long_train(store, *SMOKE, "--json")
    client = MlflowClient(tracking_uri=store)
    deadline = time.monotonic() + 300  # a fresh machine's first runs compile and migrate slowly
    run = None
    while time.monotonic() < deadline and run is None:  # wait until the run has logged an epoch
        time.sleep(0.5)
        exp = client.get_experiment_by_name("adhoc")
        if exp is not None:
            for r in client.search_runs([exp.experiment_id], filter_string="tags.status = 'running'"):
                if client.get_metric_history(r.info.run_id, "test_acc"):
                    run = r
    assert run is not None, "the job never logged an epoch"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)  # a guard against a hang, not a timing
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    run = client.get_run(run.info.run_id)
    assert run.data.tags["status"] == "interrupted" and run.info.status == "KILLED"


# The contract is common.interleaved's, the same for every benchmark: `async` (which the claims
# read: ~17 s) runs in CI (`make test-ci`), `overhead` and `pipeline` with -m slow.
@pytest.mark.parametrize(
    "name",
    [
        pytest.param("overhead", marks=pytest.mark.slow),
        pytest.param("pipeline", marks=pytest.mark.slow),
        pytest.param("async", marks=(pytest.mark.ci, pytest.mark.slow)),
    ],
)
def test_perf_prints_its_json_contract(name, store):
    steps = "3" if name == "async" else "4"  # async: one timed batch for β is enough for the contract
    proc = run_cli("perf", name, "--reps", "1", "--steps", steps, "--json", "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"a_name", "b_name", "a_per_s", "b_per_s", "ratio"} <= set(result)
    assert result["a_per_s"] > 0 and result["b_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["a_per_s"] / result["b_per_s"])
    if name == "async" and result["device"].startswith("cuda"):  # on a GPU: 1 + β, busy, memory
        assert {"async_lu_gpu_busy_frac", "bp_peak_mem_gib", "ratio_of_bound"} <= set(result)
        assert result["bound"] == pytest.approx(1 + result["beta"])
    elif name == "async":
        assert {"ratio_1thread", "ratio_all_cores", "beta", "bound", "two_bp_loops_ratio"} <= set(result)
        assert result["bound"] == pytest.approx(min(1 + result["beta"], os.cpu_count()))
    # Logged to MLflow (experiment `perf`) so that the speed claims draw on measured runs.
    client = MlflowClient(tracking_uri=store)
    runs = client.search_runs(
        [client.get_experiment_by_name("perf").experiment_id], filter_string=f"tags.perf = '{name}'"
    )
    assert runs and runs[0].data.metrics["ratio"] == pytest.approx(result["ratio"])


def test_perf_checks_the_store_before_measuring():
    """A bad --tracking-uri ends perf at once: nothing measured (no result lines), one error line."""
    proc = run_cli("perf", "overhead", "--reps", "1", "--steps", "3", "--tracking-uri", "results/x.db")
    one_error_line(proc, 2, "tracking URI")
    assert proc.stdout.strip() == "", proc.stdout


def test_store_and_output_problems_are_one_line(tmp_path, store):
    """Bad URIs exit 2; stores or output folders that cannot be used exit 1; nothing is created."""
    one_error_line(run_cli("report", "table1", "--tracking-uri", "bogus://x"), 2, "expected sqlite:///PATH")
    one_error_line(run_cli("report", "table1", "--tracking-uri", "results/x.db"), 2, "tracking URI")
    one_error_line(run_cli("report", "table1", "--tracking-uri", f"sqlite:///{tmp_path}"), 1, "is a folder")
    missing = tmp_path / "none.db"
    one_error_line(
        run_cli("report", "table1", "--tracking-uri", f"sqlite:///{missing}"), 1, "no MLflow store"
    )
    assert not missing.exists()  # report reads stores, it does not make them
    (tmp_path / "bad.db").write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 20)
    bad = run_cli(*SMOKE, "--tracking-uri", f"sqlite:///{tmp_path / 'bad.db'}")
    one_error_line(bad, 1, "cannot be used", "DatabaseError")
    (tmp_path / "file").write_text("")
    Tracker(store)  # the session's store exists, the output folder is a file
    out = run_cli("report", "table9", "--tracking-uri", store, "--out", str(tmp_path / "file"))
    one_error_line(out, 1, "cannot write the reports to")


def immutable(path, on: bool) -> bool:
    """chattr +i / -i: read-only even for root (whom file modes do not stop); False where unsupported."""
    import subprocess

    flag = "+i" if on else "-i"
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_a_read_only_store_is_one_line_and_still_reports(tmp_path):
    """A store that opens but refuses writes: train exits 1 with one line; report (a reader) works."""
    folder = tmp_path / "ro"
    folder.mkdir()
    uri = empty_store(folder / "mlflow.db")
    add_run(Tracker(uri), "table1", "resnet18", "async_lu", 0, [0.5, 0.6], [10, 20])
    for path in (folder / "mlflow.db", folder):  # the file read-only, then its folder (the lock's)
        if not immutable(path, True):
            pytest.skip("chattr +i is not supported here (needs root on ext4-like file systems)")
        try:
            if path.is_file():
                report = run_cli("report", "table1", "--tracking-uri", uri, "--out", str(tmp_path / "out"))
                assert report.returncode == 0, report.stderr
            one_error_line(run_cli(*SMOKE, "--tracking-uri", uri), 1, "cannot be")
        finally:
            immutable(path, False)


@pytest.mark.ci
@pytest.mark.slow  # two CLI processes: out of the default run (docs/performance.md, "The test suite")
def test_concurrent_runs_on_one_new_store_run_each_job_once(tmp_path):
    """Two `run`s started together on a store that does not exist yet: neither crashes (the schema is
    created under a lock) and each job is reserved by one of them."""
    import sqlite3
    import subprocess
    import sys

    from .conftest import ROOT

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [sys.executable, "-m", "benchmarks", "run", "table9", "--profile", "smoke", "--runs", "1"]
    procs = [
        subprocess.Popen(
            [*args, "--tracking-uri", uri],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("table9").experiment_id])
    keys = [r.data.tags["job_key"] for r in runs]
    assert len(keys) == 2 and len(set(keys)) == 2 and {r.data.tags["status"] for r in runs} == {"finished"}
    assert sqlite3.connect(tmp_path / "mlflow.db").execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize(
    "args, needle",
    [
        (("train", "--method", "bp", "--seed", str(2**70)), "--seed must be in 0..9223372036854775807"),
        (("train", "--method", "bp", "--seed", "-1"), "--seed must be in 0.."),
        (("run", "table6", "--runs", "1000000"), "--runs must be <= 100"),
        (
            ("train", "--method", "bp", "--set", "width=0.0001"),
            "width 0.0001 leaves resnet18's narrowest layer",
        ),
        (
            ("train", "--method", "bp", "--model", "lstm", "--dataset", "imdb", "--set", "width=0.001"),
            ">= 0.001953",
        ),
    ],
)
def test_bad_seeds_runs_and_widths_are_refused_before_any_run(tmp_path, args, needle):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli(*args, "--profile", "smoke", "--tracking-uri", store)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert not (tmp_path / "mlflow.db").exists()  # refused before the store was opened: no run exists


@pytest.mark.parametrize(
    "sig, code, train_args",
    [
        pytest.param(signal.SIGTERM, 143, SMOKE, marks=pytest.mark.slow),  # a cluster's preemption: ~9 s
        pytest.param(
            signal.SIGHUP,
            129,
            [*SMOKE[:5], "--method", "ddp", "--profile", "smoke", "--devices", "2", *ON_CPU],
            marks=pytest.mark.slow,  # 14 s: two spawned ranks
        ),
    ],
)
def test_sigterm_and_sighup_end_a_job_as_ctrl_c_does(store, sig, code, train_args):
    """The run is marked interrupted with the signal named, the exit code is 128 + the signal, and
    no process or named semaphore is left behind."""
    shm = set(glob.glob("/dev/shm/sem.mp-*"))
    Tracker(store)  # the store exists (migrated) before the job and this test both open it
    proc = start_long_train(store, *train_args)
    client = MlflowClient(tracking_uri=store)
    deadline = time.monotonic() + 300
    run = None
    while time.monotonic() < deadline and run is None:  # wait until the run has logged an epoch
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        exp = client.get_experiment_by_name("adhoc")
        if exp is not None:
            for r in client.search_runs([exp.experiment_id], filter_string="tags.status = 'running'"):
                if client.get_metric_history(r.info.run_id, "test_acc"):
                    run = r
    assert run is not None, "the job never logged an epoch"
    os.killpg(proc.pid, sig)  # the whole session, as a cluster or a closing terminal signals it
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code and "Traceback" not in stderr, stderr
    assert f"interrupted by {signal.Signals(sig).name}" in stderr
    run = client.get_run(run.info.run_id)
    assert run.data.tags["status"] == "interrupted" and run.data.tags["signal"] == signal.Signals(sig).name
    time.sleep(1)
    assert set(glob.glob("/dev/shm/sem.mp-*")) <= shm
    assert not live_in_session(proc.pid), "a process of the job was left running"


def live_in_session(sid: int) -> list[int]:
    """The processes of session `sid` that still run (zombies, waiting for init to reap them, not)."""
    live = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # proc(5): state, ppid, pgrp, session
            live.append(int(stat.split("/")[2]))
    return live


def test_a_file_store_is_refused_in_one_line_naming_the_fix(tmp_path):
    proc = run_cli("report", "table1", "--tracking-uri", f"file://{tmp_path}/mlruns")
    one_error_line(proc, 2, "maintenance mode", "sqlite:///PATH/mlflow.db", "MLFLOW_ALLOW_FILE_STORE=true")


def test_store_errors_carry_no_sql():
    from benchmarks.engine.store import one_line

    err = RuntimeError(
        "(sqlite3.OperationalError) database is locked\n[SQL: INSERT INTO runs (a) VALUES (?)]\n"
        "[parameters: (1,)]\n(Background on this error at: https://sqlalche.me/e/20/e3q8)"
    )
    assert one_line(err) == "RuntimeError: (sqlite3.OperationalError) database is locked"


def test_an_interrupted_report_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    """Reports are written into a folder beside reports/out and moved into place at the end."""
    import reports.render

    store = empty_store(tmp_path / "mlflow.db")
    add_run(Tracker(store), "table1", "resnet18", "async_lu", 0, [0.5, 0.8], [10, 20])
    out = tmp_path / "out"
    assert run_cli("report", "table1", "--tracking-uri", store, "--out", str(out)).returncode == 0
    before = (out / "table1.md").read_text()

    def half_then_ctrl_c(spec, uri, out_dir, profile=None):
        (out_dir / "table1.md").write_text("half a report")
        raise KeyboardInterrupt

    monkeypatch.setattr(reports.render, "write_report", half_then_ctrl_c)
    proc = run_cli("report", "table1", "--tracking-uri", store, "--out", str(out))
    assert proc.returncode == 130
    assert (out / "table1.md").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out-")] == []  # no staging left


@pytest.mark.slow  # a CLI process training two jobs, ~9 s
def test_run_into_a_file_prints_one_line_per_job_and_no_third_party_bars(tmp_path):
    """Output to a file (a cluster's log): no progress bars (the suite's or MLflow's artifact
    downloads, one per staleness table an async run logs), one line per job instead."""
    proc = cli("run", "table6", "--profile", "smoke", "--tracking-uri", empty_store(tmp_path / "m.db"))
    assert proc.returncode == 0, proc.stderr
    assert "job 1 of 2: imdb-lstm-async_lu-smoke-run0" in proc.stderr
    assert "job 2 of 2: imdb-lstm-async_bu-smoke-run0" in proc.stderr
    assert (
        "Downloading artifacts" not in proc.stderr and "it/s]" not in proc.stderr and "\r" not in proc.stderr
    )


@pytest.mark.slow  # two CLI processes, ~12 s
def test_a_closed_or_full_output_ends_quietly_or_in_one_line():
    import subprocess
    import sys

    from .conftest import ROOT

    head = subprocess.run(
        f"{sys.executable} -m benchmarks list | head -1", shell=True, cwd=ROOT, capture_output=True, text=True
    )
    assert head.stdout == "tables:\n" and head.stderr == "", head.stderr
    full = subprocess.run(
        f"{sys.executable} -m benchmarks list > /dev/full",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert full.returncode == 1 and full.stderr.strip() == "error: cannot write: No space left on device"


def test_jobs_not_run_are_counted_and_named_once_per_cause():
    """`run` and `run claims` print one line per cause of the jobs that could not run (the missing
    dataset's line once for all its jobs, each failure's own) and exit 1; jobs that ran or were
    finished before are no cause."""
    from benchmarks.engine.executor import (
        FAILED,
        FINISHED_BEFORE,
        NO_DATA,
        RAN,
        REFUSED,
        Outcome,
        not_run,
        tally,
    )

    from .conftest import smoke_job

    jobs = [dataclasses.replace(smoke_job(), run_index=i) for i in range(6)]
    outcomes = [
        Outcome(jobs[0], RAN),
        Outcome(jobs[1], FINISHED_BEFORE),
        Outcome(jobs[2], NO_DATA, reason="cifar100 not found (looked at X)"),
        Outcome(jobs[3], NO_DATA, reason="cifar100 not found (looked at X)"),
        Outcome(jobs[4], FAILED, reason="RuntimeError: boom"),
        Outcome(jobs[5], REFUSED, reason="batch_size 1024 exceeds the 512 training samples of each process"),
    ]
    lines = not_run(outcomes)
    assert len(lines) == 3 and lines[0].startswith("not run: 2 jobs (") and lines[0].endswith("(looked at X)")
    assert lines[1] == f"not run: {jobs[4].name}: RuntimeError: boom"
    assert lines[2].startswith(f"not run: {jobs[5].name}: batch_size 1024 exceeds")
    assert tally(outcomes).endswith("1 failed, 0 diverged, 3 not run")
    assert not_run(outcomes[:2]) == []
