"""The MLflow store of docs/design.md: opened and checked (its URI, its schema), its experiments
and the lock that makes check-then-create one step. Writing runs is `tracking.Tracker`'s;
upgrading a store of an earlier schema is `migrate.py`'s."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from core.errors import AccessRefused, ServerAway, StorageError, UserError, one_line
from core.result import SCHEMA_VERSION, counts_as_finished
from core.runtime.processes import is_alive

from . import heartbeat
from .heartbeat import missed_s, server_offset_s
from .served_artifacts import route_through_server
from .spool import away_reason, http_status, server_away, spool_path, untrusted_certificate, wait_at_end_s

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # benchmarks/engine/store.py -> the checkout
# URI schemes MLflow tracks to (SQLAlchemy databases, the file store, a tracking server).
STORE_SCHEMES = {"sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks"}
LOCK_WAIT_S = 120.0  # the store's lock is held for milliseconds; this long means its holder is stuck
log = logging.getLogger(__name__)
T = TypeVar("T")


def default_tracking_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else the SQLite store results/mlflow.db of this checkout."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'results' / 'mlflow.db'}"


@functools.cache
def git_sha() -> str:
    """The checkout's commit, with `-dirty` when it has uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return done.stdout.strip()

    try:
        sha, dirty = (
            git("rev-parse", "--short=12", "HEAD"),
            git("status", "--porcelain", "--untracked-files=no"),
        )
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


def schemas_of(experiments) -> set[str]:
    """The store schemas of these MLflow experiments (`schema` tag; none: 1, before 2026-11-25)."""
    return {e.tags.get("schema", "1") for e in experiments if e.name != "Default"}


def store_schemas(client) -> set[str]:
    """The store schemas an MLflow client's store holds."""
    return schemas_of(client.search_experiments())


class Store:
    """An MLflow store through one explicit client (no global active run): opened, checked, its
    experiments and its lock."""

    def __init__(self, uri: str | None = None, create: bool = True, check_schema: bool = True):
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
        self.remote = scheme in ("http", "https")  # a server, which may go away mid-run
        # Two processes creating one new store's schema at once would collide: under the lock.
        with self.storage_errors("used"), self.lock():
            if self.sqlite_path is not None and not self.sqlite_path.exists():
                build_sqlite_store(self.sqlite_path)
            self.client = MlflowClient(tracking_uri=self.uri)
            if scheme in ("http", "https"):
                route_through_server(self.client, self.uri)
            experiments = self.client.search_experiments()  # opens (or creates) the store now, not mid-run
        # Heartbeats are stamped and aged on the store's clock: a server's, whatever the hosts' say.
        self.clock_offset_s = server_offset_s(self.uri) if self.remote else 0.0
        other = sorted(schemas_of(experiments) - {SCHEMA_VERSION})
        if check_schema and other:
            raise StorageError(
                f"tracking store {self.uri} was written with store schema {', '.join(other)}, and this "
                f"suite reads schema {SCHEMA_VERSION}: upgrade it with `python -m benchmarks "
                f"migrate-store {self.uri}` (it backs the store up first), or pass another --tracking-uri"
            )

    def store_now(self) -> float:
        """Now on the store's clock (a server's, seen from this host), in Unix seconds."""
        return heartbeat.host_time() + self.clock_offset_s

    def artifacts_root(self) -> Path | None:
        """The folder of an SQLite store's artifacts (results/artifacts/ for the default one), one
        folder per experiment named by its id, as a server keeps them; None for other stores."""
        return None if self.sqlite_path is None else (self.sqlite_path.parent / "artifacts").resolve()

    def experiment_id(self, name: str) -> str:
        """The id of experiment `name`, created on first use."""
        if name not in self._experiments:
            with self.lock():  # another process may be creating it too
                exp = self.client.get_experiment_by_name(name)
                exp_id = exp.experiment_id if exp is not None else self._create_experiment(name)
            self._experiments[name] = exp_id
        return self._experiments[name]

    def _create_experiment(self, name: str) -> str:
        """Create experiment `name`; where another process (another host) created it first, its id.

        On an SQLite file its artifacts go to `artifacts/<id>` (MLflow's own layout, which the
        client's default root, ./mlruns of the working folder, would not give): a server's
        basic-auth judges an artifact by the experiment id its path starts with, so a writer's
        tables on an experiment made before serving reach the store (served_artifacts.py)."""
        from mlflow.exceptions import MlflowException

        # The UI's experiment type: opens on runs and charts, not GenAI traces.
        tags = {"mlflow.experimentKind": "custom_model_development", "schema": SCHEMA_VERSION}
        try:
            root = self.artifacts_root()
            if root is None:
                return self.client.create_experiment(name, tags=tags)
            from mlflow.entities import ExperimentTag
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            store = SqlAlchemyStore(self.uri, root.as_uri())
            try:
                return store.create_experiment(name, tags=[ExperimentTag(k, v) for k, v in tags.items()])
            finally:
                store.engine.dispose()
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
        or whose records wait in a spool here (its end may be among them: never passed over, as stale
        closing never closes it), other than run `besides`."""
        runs = self.client.search_runs(
            [self.experiment_id(experiment)], filter_string=f"tags.job_key = '{job_key}'"
        )
        now = self.store_now()
        for run in runs:
            if run.info.run_id == besides:
                continue
            if counts_as_finished(run.data.tags):
                return True
            if run.data.tags.get("status") == "running" and why_stale(run, now) is None:
                return True
        return False

    def finished_run(self, experiment: str, job_key: str):
        """The newest finished run of `job_key` in `experiment`, or None."""
        runs = self.answered(
            "read",
            lambda: self.client.search_runs(
                [self.experiment_id(experiment)],
                filter_string=f"tags.job_key = '{job_key}' and tags.status = 'finished'",
                order_by=["attributes.start_time DESC"],
            ),
        )
        return next((run for run in runs if counts_as_finished(run.data.tags)), None)

    def answered(self, doing: str, call: Callable[[], T]) -> T:
        """`call()` under `storage_errors(doing)`; while a server does not answer, tried again every
        2 s for up to `$BENCH_STORE_WAIT_S` (60 s), said once: a server restarting between a `run`'s
        jobs costs the wait, not the command. Then one line (ServerAway, exit 1)."""
        deadline = None
        while True:
            try:
                with self.storage_errors(doing):
                    return call()
            except ServerAway as away:
                if deadline is None:
                    deadline = time.monotonic() + wait_at_end_s()
                    log.warning("%s: waiting up to %.0f s for it", away, wait_at_end_s())
                if time.monotonic() >= deadline:
                    raise ServerAway(f"{away} for {wait_at_end_s():.0f} s") from None
                time.sleep(2)

    @contextlib.contextmanager
    def storage_errors(self, doing: str):
        """Any error of the store inside (MLflow, SQLAlchemy, OS) as one line, exit 1:
        "tracking store URI cannot be <doing>: ..."."""
        try:
            yield
        except StorageError:
            raise
        except Exception as err:  # noqa: BLE001  (MLflow, SQLAlchemy and OS errors all mean the same here)
            if refused := access_refused(err, self.uri):
                raise AccessRefused(refused) from None
            if self.remote and untrusted_certificate(err):
                raise StorageError(
                    f"tracking server {self.uri}'s certificate is not trusted here: set "
                    "MLFLOW_TRACKING_SERVER_CERT_PATH to it (a self-signed one, docs/methods.md)"
                ) from None
            if self.remote and server_away(err):
                raise ServerAway(f"tracking server {self.uri} does not answer ({away_reason(err)})") from None
            raise StorageError(f"tracking store {self.uri} cannot be {doing}: {one_line(err)}") from None


def why_stale(run, now: float) -> str | None:
    """Why a running run is stale (its process on this host died, or its process elsewhere missed
    its heartbeats at the store's time `now`), or None: it counts as alive while its process lives
    or beats, or while its records wait in a spool here (its end may be among them). The one rule
    both `taken` (a job's run is passed over) and stale closing (it is closed) apply."""
    tags = run.data.tags
    if spool_path(run.info.run_id).exists():
        return None
    where = f"pid {tags.get('pid')} on {tags.get('host')}"
    alive = is_alive(tags)  # None: another host's process, judged by its beats
    if alive is False:
        return f"its process ({where}) ended without closing the run"
    if alive is None and (missed := missed_s(tags, now)) is not None:
        return f"its process ({where}) missed its heartbeats for {missed:.0f} s"
    return None


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


def access_refused(err: BaseException, uri: str) -> str | None:
    """One line for a server with users (`server --auth`) that refused who we are (401) or what we
    asked (403); None for other errors."""
    status = http_status(err)  # MLflow's, requests' (artifacts) or urllib's (doctor's GET /version)
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    fix = '(docs/methods.md, "A lab\'s server")'
    if status == 403 and "Invalid Host header" in str(err):  # MLflow's guard against DNS rebinding
        name = urllib.parse.urlsplit(uri).hostname
        return f"{uri}: the server refuses the name {name!r} (403): start it with --allowed-hosts {name}"
    if status == 401:
        given = f"user {user!r} with that password" if user else "no credentials"
        return f"{uri} refused {given} (401): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD {fix}"
    if status == 403:
        return f"{uri} refused user {user!r} this write (403): a writer's role is the admin's to grant {fix}"
    return None
