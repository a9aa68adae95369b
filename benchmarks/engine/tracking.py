"""MLflow tracking with the schema of docs/design.md: one experiment per table, one run per job."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import random
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

from core.errors import StorageError, UserError
from core.result import SCHEMA_VERSION, this_machine
from core.runtime.processes import is_alive
from core.runtime.supervise import RECORD

from .spool import (
    RETRY_S,
    Spool,
    away_reason,
    metrics_record,
    send,
    send_pending,
    server_away,
    spool_path,
    wait_at_end_s,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # benchmarks/engine/tracking.py -> the checkout
# URI schemes MLflow tracks to (SQLAlchemy databases, the file store, a tracking server).
STORE_SCHEMES = {"sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks"}
LOCK_WAIT_S = 120.0  # the store's lock is held for milliseconds; this long means its holder is stuck
RESERVE_TRIES = 5  # a job reserved by two processes at one moment: both step back, then try again
log = logging.getLogger(__name__)


def default_tracking_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else the SQLite store results/mlflow.db of this checkout."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'results' / 'mlflow.db'}"


@functools.cache
def git_sha() -> str:
    """The checkout's commit, with `-dirty` when it has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return (sha or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def check_store(uri: str, scheme: str, sqlite_path: Path | None, create: bool) -> None:
    """Refuse, with one line, a URI that names no store or a store that cannot be used."""
    if scheme not in STORE_SCHEMES:
        raise UserError(
            f"tracking URI {uri!r}: expected sqlite:///PATH, http(s)://HOST[:PORT] "
            f"or a database URL ({', '.join(sorted(STORE_SCHEMES))})"
        )
    if scheme == "file" and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
        # MLflow 3 refuses its file store unless told otherwise, in a paragraph; here, one line.
        raise UserError(
            f"tracking URI {uri}: MLflow 3 keeps the file store in maintenance mode; use "
            "sqlite:///PATH/mlflow.db (`mlflow migrate-filestore` moves existing runs), or set "
            "MLFLOW_ALLOW_FILE_STORE=true to use it anyway"
        )
    if scheme in ("http", "https"):
        # MLflow retries an unreachable server for minutes by default: fail within ~15 s instead.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        # MLflow prints "View run ... at URL" to stdout at each run's end over HTTP: `train --json`'s
        # stdout is its result alone (`ui` prints the suite's own links).
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    if sqlite_path is not None:
        path = sqlite_path
        if path.is_dir():
            raise StorageError(f"tracking store {path} is a folder, not an SQLite file")
        if not path.exists() and not create:
            raise StorageError(
                f"no MLflow store at {path}; run a table or `train` first, or pass --tracking-uri"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StorageError(
                f"cannot create the folder of the tracking store {path}: {err.strerror}"
            ) from None


def build_sqlite_store(path: Path) -> None:
    """Create a new SQLite store whole or not at all: MLflow builds its schema (dozens of alembic
    migrations, ~1 s) in a file beside it, which then takes the store's name in one rename, so a
    kill -9 mid-way leaves no half-built store that every later command would refuse. Called under
    the store's lock: a scratch file found there was left by a process that died building it."""
    from mlflow.tracking import MlflowClient

    for left in path.parent.glob(f".{path.name}.*.new"):
        left.unlink(missing_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        MlflowClient(tracking_uri=f"sqlite:///{scratch}").search_experiments()
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


class Tracker:
    """Writes runs to an MLflow store through one explicit client (no global active run)."""

    def __init__(self, uri: str | None = None, create: bool = True):
        """Open the store at `uri` (and check it answers); `create=False` refuses to create a new
        SQLite file (reports read stores, they do not make them). Bad URIs exit 2; stores that cannot
        be used (corrupt, read-only, a folder, unreachable) exit 1, each with one line."""
        # MLflow and alembic announce every schema migration of a new SQLite store at INFO.
        for name in ("alembic", "mlflow.tracking._tracking_service.client"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # MLflow's session logs each database error with its traceback, then raises it: the error
        # reaches the user once, as one line (StorageError), or in a failed job's message.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        # urllib3 logs each retry of an away server: the suite says it once (see `_record`).
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        self.uri = uri or default_tracking_uri()
        self._locked = False  # this tracker holds the store's lock (see `lock`)
        scheme = self.uri.partition(":")[0] if "://" in self.uri else ""
        # The SQLite file, where the store is one (its folder also holds the lock and the artifacts).
        self.sqlite_path = Path(self.uri.removeprefix("sqlite:///")) if scheme == "sqlite" else None
        check_store(self.uri, scheme, self.sqlite_path, create)
        from mlflow.tracking import MlflowClient

        self._experiments: dict[str, str] = {}
        # A server may go away mid-run: its runs' records then wait in spools (benchmarks/engine/spool.py).
        self.remote = scheme in ("http", "https")
        self._spools: dict[str, Spool] = {}
        self._run_names: dict[str, str] = {}
        # Two processes creating one new store's schema at once would collide: under the lock.
        with self.storage_errors("used"), self.lock():
            if self.sqlite_path is not None and not self.sqlite_path.exists():
                build_sqlite_store(self.sqlite_path)
            self.client = MlflowClient(tracking_uri=self.uri)
            experiments = self.client.search_experiments()  # opens (or creates) the store now, not mid-run
        other = sorted(
            {e.tags.get("schema", "1") for e in experiments if e.name != "Default"} - {SCHEMA_VERSION}
        )
        if other:
            raise StorageError(
                f"tracking store {self.uri} was written with store schema {', '.join(other)}, and this "
                f"suite writes schema {SCHEMA_VERSION}: move it aside (or pass --tracking-uri "
                "sqlite:///NEW.db) and run again; the suite's version that wrote it still reads it"
            )

    def artifacts(self, experiment: str) -> str | None:
        """Where an experiment's artifacts go: beside an SQLite store (results/artifacts/ for the
        default one), else the server's default."""
        if self.sqlite_path is None:
            return None
        return (self.sqlite_path.parent / "artifacts" / experiment).resolve().as_uri()

    def experiment_id(self, name: str) -> str:
        """The id of experiment `name`, created on first use (artifacts: `artifacts`)."""
        if name not in self._experiments:
            with self.lock():  # another process may be creating it too
                exp = self.client.get_experiment_by_name(name)
                exp_id = exp.experiment_id if exp is not None else self._create_experiment(name)
            self._experiments[name] = exp_id
        return self._experiments[name]

    def _create_experiment(self, name: str) -> str:
        """Create experiment `name`; where another process (another host) created it first, its id."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(
                name,
                artifact_location=self.artifacts(name),
                # The UI's experiment type: opens on runs and charts, not GenAI traces.
                tags={"mlflow.experimentKind": "custom_model_development", "schema": SCHEMA_VERSION},
            )
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id

    @contextlib.contextmanager
    def lock(self):
        """A lock on the store shared by every process of this machine (SQLite: a file beside the
        database), for check-then-create sequences; re-entrant within this tracker; other stores: none."""
        if self.sqlite_path is None or self._locked:
            yield
            return
        with file_lock(self.sqlite_path.with_name(self.sqlite_path.name + ".lock")):
            self._locked = True
            try:
                yield
            finally:
                self._locked = False

    def taken(self, experiment: str, job_key: str, besides: str = "") -> bool:
        """Whether `job_key` has a finished run, or a running one whose process is alive (or elsewhere),
        other than run `besides`."""
        runs = self.client.search_runs(
            [self.experiment_id(experiment)], filter_string=f"tags.job_key = '{job_key}'"
        )
        for run in runs:
            tags = run.data.tags
            if run.info.run_id == besides:
                continue
            if tags.get("status") == "finished":
                return True
            if tags.get("status") == "running" and is_alive(tags) is not False:
                return True
        return False

    def finished_run(self, experiment: str, job_key: str):
        """The newest finished run of `job_key` in `experiment`, or None."""
        runs = self.client.search_runs(
            [self.experiment_id(experiment)],
            filter_string=f"tags.job_key = '{job_key}' and tags.status = 'finished'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def start(
        self, experiment: str, run_name: str, tags: dict, params: dict, reserve: bool = False
    ) -> str | None:
        """Create a run with its tags and params; returns its id.

        With `reserve`, the run is created only if no other run of the same `job_key` is finished or
        running in a live process (checked and created under the store's lock, so two `run`s on one
        store never train a job twice); None when it is taken.
        """
        from mlflow.entities import Param

        # A store that opens but refuses writes (a read-only file or folder, a full disk) fails here,
        # before anything of the job has run.
        with self.storage_errors("written"):
            for _ in range(RESERVE_TRIES):
                with self.lock():
                    if reserve and self.taken(experiment, str(tags["job_key"])):
                        return None
                    run = self.client.create_run(
                        self.experiment_id(experiment),
                        run_name=run_name,
                        tags=_str({**tags, "schema": SCHEMA_VERSION}),
                    )
                # A store without this host's lock (a server, other hosts) can let two processes
                # past the check at once: each looks again after creating its run, and steps back if
                # it sees another. Both may step back, never both go on (docs/design.md).
                if not reserve or not self.taken(experiment, str(tags["job_key"]), besides=run.info.run_id):
                    break
                self.client.delete_run(run.info.run_id)
                time.sleep(random.uniform(0.2, 2.0))  # apart, so that the next tries do not meet
            else:
                return None
            items = [Param(k, str(v)) for k, v in params.items()]
            for i in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
                self.client.log_batch(run.info.run_id, params=items[i : i + 100], synchronous=True)
        self._run_names[run.info.run_id] = run_name
        return run.info.run_id

    @contextlib.contextmanager
    def storage_errors(self, doing: str):
        """Any error of the store inside (MLflow, SQLAlchemy, OS) as one line, exit 1:
        "tracking store URI cannot be <doing>: ..."."""
        try:
            yield
        except StorageError:
            raise
        except Exception as err:  # noqa: BLE001  (MLflow, SQLAlchemy and OS errors all mean the same here)
            raise StorageError(f"tracking store {self.uri} cannot be {doing}: {one_line(err)}") from None

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """Log a set of metrics at one step in one call."""
        self._record(run_id, metrics_record(metrics, step))

    def _record(self, run_id: str, record: dict) -> None:
        """Write a record of run `run_id` to the store; while a server is away, to the run's spool."""
        spool = self._spools.get(run_id)
        if spool is None:
            try:
                send(self.client, run_id, record)
                return
            except Exception as err:
                if not self.remote or not server_away(err):
                    raise
                name = self._run_names.get(run_id, run_id)
                spool = self._spools[run_id] = Spool.create(self.uri, run_id, name)
                spool.retry_at = time.monotonic() + RETRY_S
                log.warning(
                    "tracking server %s does not answer (%s): run %s trains on, its records wait in %s "
                    "and go to the server when it answers",
                    self.uri, away_reason(err), spool.header["run_name"], spool.path,
                )  # fmt: skip
        if not spool.append(record):
            log.warning("spool %s is full: later metrics of run %s are not kept", spool.path, run_id)
        self._flush(spool)

    def _flush(self, spool: Spool, now: bool = False) -> bool:
        """Send the spool's records if the server answers (tried every RETRY_S, or `now`); whether
        it is empty and removed."""
        if not now and time.monotonic() < spool.retry_at:
            return False
        try:
            send_pending(self.client, spool)
        except Exception as err:
            if not server_away(err):
                raise
            spool.retry_at = time.monotonic() + RETRY_S
            return False
        spool.path.unlink(missing_ok=True)
        del self._spools[spool.run_id]
        log.warning(
            "tracking server %s answers again: run %s's %d records from the spool are in it",
            self.uri, spool.header["run_name"], len(spool.records),
        )  # fmt: skip
        return True

    def _drain(self, spool: Spool) -> None:
        """At a run's end: wait up to wait_at_end_s() for the server, then leave the spool, in one line."""
        deadline = time.monotonic() + wait_at_end_s()
        while not self._flush(spool, now=True):
            if time.monotonic() >= deadline:
                del self._spools[spool.run_id]
                log.error(
                    "tracking server %s did not answer by the end of run %s: its records are in %s; "
                    "`python -m benchmarks sync %s` sends them",
                    self.uri, spool.header["run_name"], spool.path, spool.path,
                )  # fmt: skip
                return
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))

    def sync(self, spool: Spool) -> int:
        """Send a left spool's records to this store, as if logged live, and remove it; a run whose
        process died before its end is closed as failed (stale). Another live process's spool is
        refused (that job sends it itself). Returns the records sent."""
        if is_alive(spool.header) and spool.header.get("pid") != str(os.getpid()):
            raise StorageError(
                f"run {spool.header['run_name']} is still running (pid {spool.header.get('pid')}): "
                f"it sends {spool.path} itself"
            )
        if not spool.ended():
            error = "its process ended before its run's end was logged"
            spool.append(dict(op="tags", tags=dict(status="failed", stop_reason="stale", error=error)))
            spool.append(dict(op="end", status="FAILED", end_time=int(time.time() * 1000)))
        pending = len(spool.pending())
        with self.storage_errors("written"):
            send_pending(self.client, spool)
        spool.path.unlink(missing_ok=True)
        return pending

    def close_stale_runs(self) -> list[str]:
        """Mark `failed` every run still `running` whose process on this host has died (kill -9, an
        OOM kill, a power cut): `report` then shows it as failed and `run` redoes its job. Returns
        their names. Runs of other hosts, or of live processes, are left alone."""
        stale = []
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        if not experiments:
            return stale
        with self.storage_errors("written"):  # a read-only store with a stale run: one line
            for run in self.client.search_runs(experiments, filter_string="tags.status = 'running'"):
                tags = run.data.tags
                if spool_path(run.info.run_id).exists():
                    continue  # its records wait in a spool (`sync`), its end among them
                if is_alive(tags) is False:
                    where = f"pid {tags.get('pid')} on {tags.get('host')}"
                    self.finish(
                        run.info.run_id,
                        "failed",
                        dict(
                            stop_reason="stale", error=f"its process ({where}) ended without closing the run"
                        ),
                    )
                    stale.append(run.info.run_name)
        return stale

    def log_table(self, run_id: str, columns: dict[str, list], artifact_file: str) -> None:
        """Append rows to a JSON table artifact of the run (MLflow's log_table)."""
        self._record(run_id, dict(op="table", columns=columns, artifact_file=artifact_file))

    def log_dataset(self, run_id: str, name: str, source: str, context: str, **profile) -> None:
        """Record the dataset a run trained on as an MLflow input (the UI's Datasets column)."""
        digest = hashlib.sha256(f"{name}:{source}".encode()).hexdigest()[:8]
        record = dict(op="dataset", name=name, digest=digest, source=source, context=context)
        self._record(run_id, {**record, "profile": json.dumps(profile)})

    def log_perf(self, name: str, result: dict) -> str:
        """A `perf NAME` result as a finished run of experiment `perf`: numbers as metrics, the rest as
        params, tagged `perf=NAME` with the hardware (so speed claims draw on measured runs)."""
        tags = dict(
            perf=name, git_sha=git_sha(), hardware=str(this_machine()), torch_version=torch.__version__
        )
        numbers = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        params = {**{k: v for k, v in result.items() if k not in numbers}, **this_machine().params()}
        run_id = self.start("perf", f"perf-{name}", tags, params)
        self.log_metrics(run_id, numbers, step=0)
        self.finish(run_id, "finished", dict(stop_reason="measured"))
        return run_id

    def declare_plan(self, experiment: str, profile: str, runs: int, claims: list[str]) -> str | None:
        """Record, before its runs, a claims plan larger than the claims' own (`run claims --runs N`):
        run indices beyond a claim's plan count in its verdict only under such a declaration."""
        tags = dict(profile=profile, runs=runs, claims=",".join(claims), git_sha=git_sha())
        run_id = self.start(experiment, f"plan-{profile}-{runs}-runs", tags, {})
        self.finish(run_id, "finished", dict(stop_reason="declared"))
        return run_id

    def finish(self, run_id: str, status: str, tags: dict) -> None:
        """Set the final tags and end the run (MLflow status FINISHED, FAILED or KILLED); while its
        server is away, wait for it up to wait_at_end_s(), then leave the records in the spool."""
        mlflow_status = {"finished": "FINISHED", "diverged": "FINISHED", "interrupted": "KILLED"}.get(
            status, "FAILED"
        )
        self._record(run_id, dict(op="tags", tags=_str({"status": status, **tags})))
        self._record(run_id, dict(op="end", status=mlflow_status, end_time=int(time.time() * 1000)))
        spool = self._spools.get(run_id)
        if spool is not None:
            self._drain(spool)


def rank_tracker(rank: int, tracker: Tracker) -> Tracker:
    """The tracker of one of torchrun's ranks: only rank 0 writes to MLflow (the one place that
    decides; the other ranks get a NullTracker)."""
    return tracker if rank == 0 else NullTracker()


class NullTracker(Tracker):
    """A tracker that records nothing (for perf benchmarks, which must not time MLflow)."""

    def __init__(self):
        self.uri = None

    def finished_run(self, experiment, job_key):
        return None

    def start(self, experiment, run_name, tags, params, reserve=False):
        return "untracked"

    def log_metrics(self, run_id, metrics, step):
        pass

    def log_perf(self, name, result):
        return "untracked"

    def log_table(self, run_id, columns, artifact_file):
        pass

    def log_dataset(self, run_id, name, source, context, **profile):
        pass

    def finish(self, run_id, status, tags):
        pass


class PipeTracker(NullTracker):
    """A spawned rank 0's tracker: its metrics and tables go to the coordinator over the rank's
    report pipe (`RECORD` messages), which logs them (`relay`). The rank never imports MLflow nor
    opens the store: a second and more of start-up saved, and one writer per run."""

    def __init__(self, report):
        self.uri, self.report = None, report

    def log_metrics(self, run_id, metrics, step):
        self.report.send((RECORD, ("metrics", dict(metrics), step)))

    def log_table(self, run_id, columns, artifact_file):
        self.report.send((RECORD, ("table", columns, artifact_file)))


def relay(tracker: Tracker, run_id: str) -> Callable[[int, object], None]:
    """What the coordinator does with a rank's RECORD: log it to `run_id` (rank 0's only)."""

    def on_record(rank: int, payload) -> None:
        kind, values, where = payload
        if rank != 0:
            return
        if kind == "metrics":
            tracker.log_metrics(run_id, values, where)
        else:
            tracker.log_table(run_id, values, where)

    return on_record


@contextlib.contextmanager
def file_lock(path: Path, wait_s: float = LOCK_WAIT_S):
    """An exclusive lock held through `path` (fcntl.flock; where there is no fcntl, none); a
    StorageError after `wait_s` seconds of another process holding it (a stopped process, say)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    deadline = time.monotonic() + wait_s
    with open(path, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StorageError(
                        f"the store's lock {path} was held by another process for {wait_s:.0f} s: "
                        "is a command stopped (Ctrl-Z) or hung? end it, then run again"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def one_line(err: BaseException) -> str:
    """An exception as one short line (MLflow's and SQLAlchemy's messages span many), without
    SQLAlchemy's statement and parameters (`[SQL: ...]`) or its background link."""
    text = " ".join(str(err).split())
    text = re.sub(r"\s*\[SQL: .*$|\s*\(Background on this error at: [^)]*\)", "", text)
    return f"{type(err).__name__}: {text[:300]}"


def _str(tags: dict) -> dict[str, str]:
    return {k: str(v) for k, v in tags.items()}
