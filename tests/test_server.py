"""`server`: an MLflow tracking server over the suite's store, which jobs log to over HTTP, and
`doctor`'s check of such a store; a job whose server goes away; two commands on one server."""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from benchmarks.doctor import check_store
from core.result import SCHEMA_VERSION

from .conftest import LONG_JOBS, ROOT, cli, empty_store, run_cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The admin of a server with users (`--auth`), as jobs pass credentials: MLflow's variables.
ADMIN = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "the-tests-admin-password"}


def user(name: str) -> dict[str, str]:
    """A lab user's credentials, as MLflow's variables."""
    return {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": f"{name}-password-of-the-lab"}


# docs/methods.md's lab: two writers (a role with EDIT on every experiment) and a reviewer (READ).
WRITERS, READER = (user("wanda"), user("walter")), user("rita")
LAB_USERS = f"""
import os
from mlflow.server import get_app_client
admin = get_app_client("basic-auth", tracking_uri=os.environ["URI"])
writer = admin.create_role("default", "writer", "runs the suite's jobs")
admin.add_role_permission(writer.id, "experiment", "*", "EDIT")
for name in {[w["MLFLOW_TRACKING_USERNAME"] for w in WRITERS]!r}:
    admin.create_user(name, name + "-password-of-the-lab")
    admin.assign_role(name, writer.id)
admin.create_user("rita", "rita-password-of-the-lab")
"""


def self_signed_pair(folder: Path, names: list[str]) -> tuple[Path, Path]:
    """A certificate for `names` and its key, made by docs/methods.md's openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    alt = ",".join(f"IP:{n}" if n.replace(".", "").isdigit() else f"DNS:{n}" for n in names)
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
               "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={names[0]}",
               "-addext", f"subjectAltName={alt}"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


class Server:
    """`python -m benchmarks server` over an SQLite store, started and stopped by a test (in network
    namespace `namespace` where given, listening on `host`; jobs reach it by `name` where given;
    `auth`: with users, ADMIN its admin, beyond loopback over plain HTTP (`--cleartext-passwords`)
    unless `tls`; beyond loopback without users, `--insecure`; `tls`: HTTPS with a self-signed
    certificate, which clients trust through `client_env`)."""

    def __init__(
        self,
        store_path: Path,
        host: str = "127.0.0.1",
        namespace: str | None = None,
        auth: bool = False,
        name: str | None = None,
        tls: bool = False,
    ):
        self.store = empty_store(store_path) if not store_path.exists() else f"sqlite:///{store_path}"
        self.host, self.port, self.namespace = host, free_port(), namespace
        self.auth, self.name = auth, name
        names = [name or host, "localhost", "127.0.0.1"]
        self.tls = self_signed_pair(store_path.parent, names) if tls else None
        self.uri = f"{'https' if tls else 'http'}://{name or host}:{self.port}"
        # What a client needs beside the URI to trust the server's certificate.
        self.client_env = {"MLFLOW_TRACKING_SERVER_CERT_PATH": str(self.tls[0])} if tls else {}
        self.log = store_path.with_name("server.log")
        self.proc = None

    def start(self, within_s: float = 90, for_the_test: bool = True) -> "Server":
        """Start it and wait until it answers (`for_the_test`: killed after the test, whatever happens;
        else the caller stops it)."""
        prefix = ["ip", "netns", "exec", self.namespace] if self.namespace else []
        args = ["server", "--host", self.host, "--port", str(self.port), "--store", self.store]
        loopback = self.host == "127.0.0.1"
        args += ["--auth"] if self.auth else [] if loopback else ["--insecure"]
        if self.tls:
            args += ["--certfile", str(self.tls[0]), "--keyfile", str(self.tls[1])]
        elif self.auth and not loopback:
            args += ["--cleartext-passwords"]  # the tests' own private network namespaces
        args += ["--allowed-hosts", self.name] if self.name else []
        env = {**os.environ, "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN["MLFLOW_TRACKING_PASSWORD"]}
        with self.log.open("a") as out:  # a file, not a pipe: the server's request log never blocks it
            self.proc = subprocess.Popen(
                [*prefix, sys.executable, "-m", "benchmarks", *args],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        if for_the_test:
            LONG_JOBS.append(self.proc)
        deadline = time.monotonic() + within_s
        while not self.answers():
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"the server did not answer within {within_s} s"
            time.sleep(0.5)
        return self

    def add_lab_users(self) -> "Server":
        """Make docs/methods.md's lab on this server, as its admin (from its own namespace): WRITERS
        with EDIT on every experiment, READER with the default READ."""
        prefix = ["ip", "netns", "exec", self.namespace] if self.namespace else []
        env = {**os.environ, **ADMIN, **self.client_env, "URI": self.uri}
        command = [*prefix, sys.executable, "-c", LAB_USERS]
        made = subprocess.run(command, env=env, capture_output=True, text=True)
        assert made.returncode == 0, made.stderr[-3000:]
        return self

    def answers(self) -> bool:
        """Whether GET /health answers 200 (from this process's namespace, or the server's)."""
        cafile = repr(str(self.tls[0])) if self.tls else None
        if self.namespace:
            probe = (
                "import ssl, urllib.request as u; context = ssl.create_default_context(cafile="
                f"{cafile}); u.urlopen('{self.uri}/health', timeout=2, context=context)"
            )
            command = ["ip", "netns", "exec", self.namespace, sys.executable, "-c", probe]
            return subprocess.run(command, capture_output=True).returncode == 0
        context = ssl.create_default_context(cafile=str(self.tls[0]) if self.tls else None)
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2, context=context) as reply:
                return reply.status == 200
        except OSError:
            return False

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop it and its workers (`signum`, SIGTERM by default, to its group: SIGKILL is a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)
            self.proc.wait(timeout=30)


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
    server = Server(tmp_path / "mlflow.db").start()
    try:
        assert f"--tracking-uri {server.uri}" in server.log.read_text()
        proc = run_cli(
            "train", "--method", "bp", "--profile", "smoke", "--tracking-uri", server.uri, "--json"
        )
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.strip().splitlines()) == 1, proc.stdout  # the result alone
        client = MlflowClient(tracking_uri=server.store)  # the file itself: what the server wrote
        (run,) = client.search_runs([client.get_experiment_by_name("adhoc").experiment_id])
        epochs = int(run.data.metrics["epochs"])
        assert epochs >= 1 and len(client.get_metric_history(run.info.run_id, "test_acc")) == epochs
        check = check_store(server.uri)
        assert check.ok and "MLflow server" in check.found and "writable" in check.found, check
    finally:
        server.stop()
    started = time.monotonic()
    check = check_store(server.uri)
    assert check.ok is False and "python -m benchmarks server" in check.fix
    assert time.monotonic() - started < 30


def smoke_epochs(server: Server, env: dict[str, str], epochs: int = 12) -> subprocess.Popen:
    """`train --method bp --profile smoke` for `epochs` on `server`, in the background (`--json`)."""
    epochs = ("--epochs", str(epochs), "--set", f"patience={epochs}", "--set", "time_budget_s=0")
    train = [sys.executable, "-m", "benchmarks", "train", "--method", "bp", "--profile", "smoke", *epochs]
    proc = subprocess.Popen(
        [*train, "--tracking-uri", server.uri, "--json"], cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    LONG_JOBS.append(proc)
    return proc


def wait_for_an_epoch(client: MlflowClient, proc: subprocess.Popen, within_s: float = 120) -> None:
    """Until the store's one adhoc run has logged an epoch."""
    deadline = time.monotonic() + within_s
    while True:
        experiment = client.get_experiment_by_name("adhoc")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if any(client.get_metric_history(r.info.run_id, "test_acc") for r in runs):
            return
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no epoch within the time allowed"
        time.sleep(0.5)


@pytest.mark.ci
@pytest.mark.slow  # a server started twice, a 12-epoch smoke job: ~50 s
def test_a_job_whose_server_stays_away_ends_in_one_line_and_sync_sends_it(tmp_path):
    server = Server(tmp_path / "mlflow.db").start()
    proc = smoke_epochs(server, {"BENCH_STORE_WAIT_S": "1"})
    client = MlflowClient(tracking_uri=server.store)
    wait_for_an_epoch(client, proc)
    server.stop()
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert len(out.strip().splitlines()) == 1, out  # `--json`: the result alone (no MLflow run links)
    assert err.count("does not answer") == 1 and err.count("did not answer by the end") == 1, err[-3000:]
    assert "Retrying" not in err, err[-3000:]  # urllib3's line per retry
    (spool,) = Path(os.environ["BENCH_SPOOL_DIR"]).iterdir()
    assert f"python -m benchmarks sync {spool}" in err
    (run,) = client.search_runs([client.get_experiment_by_name("adhoc").experiment_id])
    assert run.data.tags["status"] == "running"  # in the store: what it logged before the server went
    server.start()
    proc = cli("sync", str(spool))
    assert proc.returncode == 0 and "records sent to" in proc.stdout, proc.stderr
    server.stop()
    run = client.get_run(run.info.run_id)
    assert run.data.tags["status"] == "finished" and run.info.status == "FINISHED", run.data.tags
    history = client.get_metric_history(run.info.run_id, "test_acc")
    assert (
        sorted(m.step for m in history) == list(range(int(run.data.metrics["epochs"]))) and len(history) == 12
    )
    assert not spool.exists()


def living_in_session(sid: int) -> list[str]:
    """The processes of session `sid` still alive (zombies, already ended, aside): pid and command."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state, ppid, pgrp, session, ...
            alive.append(f"{stat.parent.name} {(stat.parent / 'cmdline').read_bytes()[:200]!r}")
    return alive


@pytest.mark.ci
@pytest.mark.slow  # a server stopped and started under a 6-epoch smoke job: ~70 s
def test_a_job_whose_spool_disk_is_full_trains_to_its_end_and_leaves_no_process(tmp_path, full_disk):
    """The server stops mid-job while the spool's disk is full (ENOSPC): the job trains on to its
    last epoch, says so in one line, keeps its records in memory, sends them all when the server is
    back, exits 0, and leaves no process of its own behind."""
    server = Server(tmp_path / "mlflow.db").start()
    proc = smoke_epochs(server, {"BENCH_SPOOL_DIR": str(full_disk)}, epochs=6)
    client = MlflowClient(tracking_uri=server.store)
    try:
        wait_for_an_epoch(client, proc)
        server.stop()
        time.sleep(3)
        server.start()
        out, err = proc.communicate(timeout=300)
    finally:
        server.stop()
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    said = [line for line in err.splitlines() if "cannot be written" in line]
    assert len(said) == 1 and "No space left on device" in said[0] and "memory" in said[0], err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["epochs"] == 6
    (run,) = client.search_runs([client.get_experiment_by_name("adhoc").experiment_id])
    assert run.data.tags["status"] == "finished" and run.info.status == "FINISHED", run.data.tags
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "test_acc")) == list(range(6))
    time.sleep(1)  # a child that saw its parent end exits within moments
    assert not living_in_session(proc.pid), living_in_session(proc.pid)


@pytest.mark.slow  # ~30 s; CI's lab load test runs 8 commands on one server (tests/test_lab_load.py)
def test_two_commands_on_one_server_run_each_job_once(tmp_path):
    server = Server(tmp_path / "mlflow.db").start()
    args = [sys.executable, "-m", "benchmarks", "run", "table9", "--profile", "smoke", "--runs", "1"]
    try:
        procs = [
            subprocess.Popen(
                [*args, "--tracking-uri", server.uri],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        server.stop()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    client = MlflowClient(tracking_uri=server.store)
    runs = client.search_runs([client.get_experiment_by_name("table9").experiment_id])
    finished = [r.data.tags["job_key"] for r in runs if r.data.tags["status"] == "finished"]
    assert len(finished) == 2 and len(set(finished)) == 2, [r.data.tags for r in runs]
    # The rest are reservations that met the other command's: ended superseded, never left running.
    others = [r for r in runs if r.data.tags["status"] != "finished"]
    assert all(r.data.tags["status"] == "superseded" and r.info.status == "KILLED" for r in others), others


def test_server_refuses_a_store_that_does_not_exist_unless_told_to_create_it(tmp_path):
    """A mistyped `--store` would serve a new, empty store: one line, exit 1, no file made; the
    server's command passes `--allowed-hosts` to MLflow (jobs that reach it by a DNS name)."""
    from benchmarks.server import server_command

    missing = tmp_path / "typo" / "mlflow.db"
    proc = run_cli("server", "--store", f"sqlite:///{missing}")
    assert proc.returncode == 1 and f"no store at {missing}" in proc.stderr and "--create" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not missing.exists()
    command = server_command("sqlite:///x.db", tmp_path, "0.0.0.0", 5000, "bench-host.lab")
    # The name with any port (the Host header carries one), beside MLflow's defaults, which it replaces.
    patterns = command[command.index("--allowed-hosts") + 1].split(",")
    assert patterns[:2] == ["bench-host.lab", "bench-host.lab:*"] and "127.0.0.1:*" in patterns
    assert "10.*" in patterns
    assert "--allowed-hosts" not in server_command("sqlite:///x.db", tmp_path, "127.0.0.1", 5000)


def test_server_beyond_loopback_needs_auth_or_insecure_and_auth_a_real_password(tmp_path, monkeypatch):
    """An open port is said in one line (exit 2); `--auth` never starts on a missing, default or
    short admin password."""
    store = empty_store(tmp_path / "mlflow.db")
    proc = run_cli("server", "--host", "0.0.0.0", "--store", store)
    assert proc.returncode == 2 and "add --auth" in proc.stderr and "--insecure" in proc.stderr, proc.stderr
    proc = run_cli("ui", "--host", "0.0.0.0", "--tracking-uri", store)
    assert proc.returncode == 2 and "server --auth" in proc.stderr, proc.stderr
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    for password, said in ((None, "set MLFLOW_AUTH_ADMIN_PASSWORD"), ("password1234", "old default"),
                           ("short", "at least 12 characters")):  # fmt: skip
        env = {"MLFLOW_AUTH_ADMIN_PASSWORD": password} if password else {}
        proc = run_cli("server", "--auth", "--store", store, env=env)
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    secret = tmp_path / "admin-password"
    secret.write_text("a-long-enough-password\n")
    secret.chmod(0o644)  # anyone on the host could read it
    proc = run_cli("server", "--auth", "--auth-password-file", str(secret), "--store", store)
    assert proc.returncode == 2 and f"`chmod 600 {secret}`" in proc.stderr, proc.stderr
    secret.chmod(0o600)
    beyond = ("server", "--auth", "--auth-password-file", str(secret), "--host", "0.0.0.0", "--store", store)
    proc = run_cli(*beyond)  # basic-auth over plain HTTP beyond loopback: passwords in clear text
    assert proc.returncode == 2 and "--cleartext-passwords" in proc.stderr and "--certfile" in proc.stderr
    proc = run_cli(*beyond, "--certfile", str(secret))
    assert proc.returncode == 2 and "go together" in proc.stderr, proc.stderr
    proc = run_cli(*beyond, "--certfile", str(secret), "--keyfile", str(secret.with_name("absent.pem")))
    assert proc.returncode == 2 and "absent.pem" in proc.stderr, proc.stderr
    cert, key = self_signed_pair(tmp_path, ["localhost"])
    key.chmod(0o644)
    proc = run_cli(*beyond, "--certfile", str(cert), "--keyfile", str(key))
    assert proc.returncode == 2 and f"`chmod 600 {key}`" in proc.stderr, proc.stderr
    secret.write_text("short\n")
    secret.chmod(0o600)
    proc = run_cli("server", "--auth", "--auth-password-file", str(secret), "--store", store)
    assert proc.returncode == 2 and "at least 12 characters" in proc.stderr, proc.stderr
    assert not (tmp_path / "mlflow-auth.db").exists()


@pytest.mark.ci
@pytest.mark.slow  # a server with users, a smoke job: ~40 s
def test_a_server_with_users_takes_writers_and_refuses_the_rest_in_one_line(tmp_path, monkeypatch):
    """`server --auth` over HTTPS with a self-signed certificate (made by docs/methods.md's command):
    the admin makes a writer (a role with EDIT on every experiment) and a reviewer (the default
    READ), as docs/methods.md's lab does; the writer's job logs; the reviewer's and an anonymous job
    end in one line each, exit 1; `doctor` names the refusal; `report` reads; a client that does not
    trust the certificate is told how in one line."""
    from mlflow.server import get_app_client

    server = Server(tmp_path / "mlflow.db", auth=True, tls=True).start()
    try:
        proc = cli("train", "--method", "bp", "--profile", "smoke", "--tracking-uri", server.uri)
        assert proc.returncode == 1 and "MLFLOW_TRACKING_SERVER_CERT_PATH" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        for key, value in server.client_env.items():
            monkeypatch.setenv(key, value)
        for key, value in ADMIN.items():
            monkeypatch.setenv(key, value)
        admin = get_app_client("basic-auth", tracking_uri=server.uri)
        admin.create_user("wanda", "wanda-writes-runs")
        admin.create_user("rita", "rita-reads-reports")
        writer = admin.create_role("default", "writer", "runs the suite's jobs")
        admin.add_role_permission(writer.id, "experiment", "*", "EDIT")
        admin.assign_role("wanda", writer.id)
        for key in ADMIN:
            monkeypatch.delenv(key)
        wanda = {"MLFLOW_TRACKING_USERNAME": "wanda", "MLFLOW_TRACKING_PASSWORD": "wanda-writes-runs"}
        rita = {"MLFLOW_TRACKING_USERNAME": "rita", "MLFLOW_TRACKING_PASSWORD": "rita-reads-reports"}
        train = ("train", "--method", "bp", "--profile", "smoke", "--tracking-uri", server.uri, "--json")
        proc = cli(*train, env=wanda)
        assert proc.returncode == 0, proc.stderr[-3000:]
        refusals = [
            ({}, "refused no credentials (401)"),
            (rita, "refused user 'rita' this write (403)"),
            ({**rita, "MLFLOW_TRACKING_PASSWORD": "a-wrong-one"}, "'rita' with that password (401)"),
        ]
        for env, said in refusals:
            proc = cli(*train, env=env)
            assert proc.returncode == 1 and said in proc.stderr, proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "rita")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "rita-reads-reports")
        check = check_store(server.uri)
        assert check.ok is False and "refused user 'rita' this write (403)" in check.fix, check
        proc = cli("report", "table9", "--tracking-uri", server.uri, "--out", str(tmp_path / "out"), env=rita)
        assert proc.returncode == 0, proc.stderr[-3000:]
        # The users' password hashes are the server's user's alone; a restart runs without the
        # admin's password in its environment (the user database exists: MLflow never reads it again).
        assert (tmp_path / "mlflow-auth.db").stat().st_mode & 0o777 == 0o600
        server.stop()
        server.start()
        environ = Path(f"/proc/{server.proc.pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith(b"MLFLOW_AUTH_ADMIN_PASSWORD=")]
        assert check_store(server.uri).ok is False  # still rita's: the users outlived the restart
    finally:
        server.stop()
    client = MlflowClient(tracking_uri=server.store)
    (run,) = client.search_runs([client.get_experiment_by_name("adhoc").experiment_id])
    assert run.data.tags["status"] == "finished"


@pytest.mark.ci
@pytest.mark.slow  # a server with users, two runs' tables through it: ~25 s
def test_the_tables_of_a_store_made_on_its_file_go_through_its_server(tmp_path, monkeypatch):
    """Experiments created on the SQLite file before the store was served keep file:// locations,
    paths of the server's host: a writer (EDIT, no MANAGE) on another host (whose own disk refuses
    that path here) writes and reads its runs' tables through the server, and they land in the
    store's artifacts/ folder, where local commands read them: for an experiment of today's layout
    (its folder named by its id) and one of the suite's layout before 2026-11-28 (named by its
    name, linked by its id when the server starts)."""
    import json

    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    from benchmarks.engine.tracking import Tracker

    store_path = tmp_path / "lab" / "mlflow.db"
    store_path.parent.mkdir()
    local = Tracker(empty_store(store_path))
    local.experiment_id("table3")  # made on the file, before any server: artifacts/<id>
    artifacts = store_path.parent / "artifacts"
    old_layout = local.client.create_experiment("table1", artifact_location=(artifacts / "table1").as_uri())
    local.client.set_experiment_tag(old_layout, "schema", SCHEMA_VERSION)
    server = Server(store_path, auth=True).start().add_lab_users()
    try:
        for key, value in WRITERS[0].items():
            monkeypatch.setenv(key, value)

        def another_hosts_disk(*args, **kwargs):
            raise PermissionError(13, "Permission denied", "a path of the server's host")

        monkeypatch.setattr(LocalArtifactRepository, "log_artifact", another_hosts_disk)
        remote = Tracker(server.uri)
        runs = {}
        for experiment in ("table3", "table1"):
            run_id = remote.start(experiment, "a-run", dict(job_key="k", status="running"), {})
            assert remote.client.get_run(run_id).info.artifact_uri.startswith("file://")
            for epoch in (0, 1):  # the second appends to the first: read back through the server
                remote.log_table(run_id, {"epoch": [epoch, epoch]}, "staleness.json")
            remote.finish(run_id, "finished", {})
            assert remote.client.get_run(run_id).data.tags["status"] == "finished"
            runs[experiment] = run_id
    finally:
        server.stop()
    folders = {"table3": local.experiment_id("table3"), "table1": "table1"}
    for experiment, run_id in runs.items():
        written = artifacts / folders[experiment] / run_id / "artifacts" / "staleness.json"
        assert [row[:1] for row in json.loads(written.read_text())["data"]] == [[0], [0], [1], [1]]
    assert (artifacts / old_layout).resolve() == (artifacts / "table1").resolve()
