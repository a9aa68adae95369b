"""`server`: an MLflow tracking server over the suite's store, which jobs log to over HTTP, and
`doctor`'s check of such a store."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from benchmarks.doctor import check_store

from .conftest import ROOT, empty_store, run_cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_refuses_a_bad_port_or_a_server_as_its_store_in_one_line():
    proc = run_cli("server", "--port", "0")
    assert proc.returncode == 2 and "--port must be in 1-65535" in proc.stderr, proc.stderr
    proc = run_cli("server", "--store", "http://127.0.0.1:5000")
    assert proc.returncode == 2 and "is a server already" in proc.stderr, proc.stderr


@pytest.mark.slow  # a server's start, a smoke job over HTTP: ~20 s
def test_a_job_logs_to_the_server_and_doctor_checks_it(tmp_path):
    """`server` prints the URI to give jobs; a smoke `train` with it logs every epoch to the
    server's store; `doctor`'s store check finds the server's version and writes; once the server
    is gone, the check fails with the fix, within seconds."""
    store = empty_store(tmp_path / "mlflow.db")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("w") as out:  # a file, not a pipe: the server's request log never blocks it
        server = subprocess.Popen(
            [sys.executable, "-m", "benchmarks", "server", "--port", str(port), "--store", store],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.5)
        assert f"--tracking-uri {uri}" in log.read_text()
        proc = run_cli("train", "--method", "bp", "--profile", "smoke", "--tracking-uri", uri, "--json")
        assert proc.returncode == 0, proc.stderr
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=store)  # the file itself: what the server wrote
        (run,) = client.search_runs([client.get_experiment_by_name("adhoc").experiment_id])
        epochs = int(run.data.metrics["epochs"])
        assert epochs >= 1 and len(client.get_metric_history(run.info.run_id, "test_acc")) == epochs
        check = check_store(uri)
        assert check.ok and "MLflow server" in check.found and "writable" in check.found, check
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its workers
        server.wait(timeout=30)
    started = time.monotonic()
    check = check_store(uri)
    assert check.ok is False and "python -m benchmarks server" in check.fix
    assert time.monotonic() - started < 30
