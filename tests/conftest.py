"""Shared fixtures: an isolated MLflow store and cache per test session, and a CLI runner."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from benchmarks.profiles import hyperparameters
from core.job import Job
from core.result import Hardware
from core.runtime.allocator import tune_glibc_malloc
from core.runtime.denormals import flush_denormals

ROOT = Path(__file__).resolve().parent.parent
# As every process of the suite (cli.main, spawned ranks and workers): in-process tests train too.
tune_glibc_malloc()
flush_denormals()  # as every entry point of the suite does
SHARED_DATA = Path(os.environ.get("BENCH_DATA_DIR") or ROOT.parent / "shared" / "data")


EMPTY_STORE_DIR = tempfile.TemporaryDirectory(prefix="empty-store-")  # removed when pytest exits


@functools.cache
def migrated_store() -> Path:
    """The session's empty MLflow SQLite store, its schema built once (`empty_store` copies it)."""
    from mlflow.tracking import MlflowClient

    template = Path(EMPTY_STORE_DIR.name) / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()
    return template


def empty_store(path: Path) -> str:
    """A new, empty MLflow SQLite store at `path`, as MLflow makes one; its URI.

    MLflow builds a new file's schema by running every alembic migration (about a second on 2
    cores): the session does that once and copies the result. Tests of store creation itself (two
    processes creating one store, a store that cannot be created) pass a path to the CLI instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_store(), path)
    return f"sqlite:///{path}"


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a filesystem with no space left (a 16 KiB tmpfs, filled), whose writes fail with
    ENOSPC as a full disk's do; skips where this process may not mount one (it needs root)."""
    mount = tmp_path / "full-disk"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)]
    made = subprocess.run(command, capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.decode().strip()}")
    try:
        (mount / "spool").mkdir()
        with contextlib.suppress(OSError), open(mount / "filler", "wb", buffering=0) as filler:
            while True:
                filler.write(b"\0" * 1024)
        yield mount / "spool"
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def new_store(tmp_path) -> str:
    """An empty SQLite MLflow store of the test's own (`empty_store`)."""
    return empty_store(tmp_path / "mlflow.db")


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> str:
    """A SQLite MLflow store of the test session's own."""
    return empty_store(tmp_path_factory.mktemp("mlflow") / "mlflow.db")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch, store):
    """Tests never write into datasets/cache/ or results/ of the checkout, nor leave a file at its
    top, but share one cache (and, where a test names no store, the session's store) among
    themselves; spools are each test's own."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("BENCH_SPOOL_DIR", str(tmp_path_factory.mktemp("spool")))
    before = set(os.listdir(ROOT))
    yield
    # A relative store path (sqlite:///x.db) lands in the checkout, and once there gets committed.
    left = set(os.listdir(ROOT)) - before - CHECKOUT_CACHES
    assert not left, f"the test left {sorted(left)} in the checkout"


CHECKOUT_CACHES = {".pytest_cache", "__pycache__", ".ruff_cache", ".tox"}


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m benchmarks ARGS` as a user would, from the checkout."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m benchmarks ARGS` run in this process (`cli.main`): the CLI's own code path, its
    exit code, stdout and stderr (log lines included), without an interpreter's start-up. For
    checks that need no process of their own; `cli` runs a real one."""
    from benchmarks.cli import main

    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse's usage errors
                code = exit.code
    finally:
        root.removeHandler(handler)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess(["benchmarks", *args], code, out.getvalue(), err.getvalue())


LONG_JOBS: list[subprocess.Popen] = []
# A shell without job control starts background commands with SIGINT ignored, and an ignored
# signal stays ignored in every child (Python then installs no KeyboardInterrupt handler): the
# SIGINT tests would test nothing. A handler here is reset to the default in each child.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def no_leftover_jobs():
    """A test that fails before it stops its long job must not leave it training (it would slow
    every later test on 2 cores): kill each one's whole process group after the test."""
    yield
    while LONG_JOBS:
        proc = LONG_JOBS.pop()
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)


def start_long_train(store: str, *train_args: str) -> subprocess.Popen:
    """`train ARGS` with 500 epochs and no patience or budget, in the background: a job to interrupt.

    It runs in a session of its own, so that cleanup can end it with its ranks and workers.
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks",
            *train_args,
            "--epochs",
            "500",
            "--set",
            "patience=500",
            "--set",
            "time_budget_s=0",
            "--tracking-uri",
            store,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    LONG_JOBS.append(proc)
    return proc


# Several processes of a test run on the CPU (gloo) also on a GPU machine: one GPU per process is
# what `--devices N` needs on CUDA, and a 1-GPU machine would refuse them (exit 2).
ON_CPU = ("--set", "device=cpu")


def on_cpu(job: Job) -> Job:
    """`job` on the CPU: a table's multi-process job on a machine that may have one GPU."""
    from dataclasses import replace

    return replace(job, config=replace(job.config, device="cpu"))


def smoke_job(method: str = "bp", method_config=None, **config) -> Job:
    """A job of the smoke profile on synthetic data, with `config` overriding its hyperparameters.

    On the CPU unless `device` is given: tests that compare runs bit for bit need the CPU's
    deterministic kernels (docs/design.md, "Tests on a GPU")."""
    config = {"device": "cpu", **config}
    from dataclasses import replace

    from methods import METHODS, NoConfig

    if method_config is None:
        method_config = METHODS[method].Config() if method in METHODS else NoConfig()
    return Job(
        table="test",
        dataset="synthetic",
        model="resnet18",
        method=method,
        profile="smoke",
        config=replace(hyperparameters("synthetic", "resnet18", "smoke"), **config),
        method_config=method_config,
    )


TWO_GPUS = Hardware("cuda", "test-gpu", 2, 8)
TWO_CORES = Hardware("cpu", "Test CPU", 1, 2)


def add_run(
    tracker,
    table,
    model,
    method,
    run_index,
    acc=None,
    times=None,
    status="finished",
    metrics=None,
    train_acc=None,
    profile="paper",
    hardware=None,
    params=None,
):
    """A run with tags as the runner writes them and a learning curve (test_acc, train_time_s per epoch).

    `params`: the hyperparameters that make the run one of a table's rows (`row_params`);
    `hardware`: a core.result.Hardware (default: 2 GPUs), logged as the runner logs it."""
    hardware = hardware or TWO_GPUS
    tags = dict(
        table=table, model=model, method=method, profile=profile, run_index=run_index, seed=run_index,
        status="running", kind="fwd_bwd_timing" if metrics else "train", hardware=hardware, devices=1,
    )  # fmt: skip
    params = {**(params or {}), **hardware.params()}
    run_id = tracker.start(table, f"{model}-{method}-{run_index}", tags, params)
    for epoch, (a, t) in enumerate(zip(acc or [], times or [], strict=True)):
        values = dict(test_acc=a, train_time_s=t, train_loss=1.0 / (epoch + 1))
        if train_acc:
            values["train_acc"] = train_acc[epoch]
        tracker.log_metrics(run_id, values, step=epoch)
    if metrics:
        tracker.log_metrics(run_id, metrics, step=0)
    tracker.finish(run_id, status, dict(stop_reason="max_epochs"))
    return run_id


def row_params(table: str, method: str, name: str) -> dict:
    """The params a run of the table's row `method[name]` logs (its job's, as the runner logs them)."""
    from benchmarks.tables import TABLES

    spec = TABLES[table]
    for profile in ("paper", "quick", "smoke"):
        for job in spec.jobs(profile):
            if job.method == method and job.row.name == name:
                return job.params()
    raise KeyError(f"{table} has no row {method}[{name}]")
