"""`python -m benchmarks server`: an MLflow tracking server over the suite's store, for jobs on
several hosts (docs/methods.md, "Several hosts, one store").

Jobs log to it with `--tracking-uri http://HOST:PORT`. Over an SQLite store the server keeps the
artifacts beside the file, as the suite does (`artifacts/`), and serves them: an experiment the
server creates stores its artifacts through it (`mlflow-artifacts:/`), so a job on another host
needs no shared folder. Loopback by default; beyond it, `--auth` runs MLflow's `basic-auth` app
(users, passwords and permissions in a second SQLite file beside the store), over HTTPS with
`--certfile/--keyfile` (or `--cleartext-passwords`), or `--insecure` says that anyone who reaches
the port may write (docs/methods.md, "A lab's server").
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import StorageError, UserError

from .engine.served_artifacts import link_named_folders
from .engine.tracking import Tracker

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# MLflow checks a password (a deliberately slow hash) on every request unless it caches the check:
# 0.15 s a request instead of 0.03 s on 2 cores (docs/methods.md, "A lab's server").
AUTH_CACHE_TTL_S = 60
LEGACY_ADMIN_PASSWORD = "password1234"  # what MLflow's basic_auth.ini shipped before 3.x: refused


def server_command(
    store: str,
    artifacts: Path,
    host: str,
    port: int,
    allowed_hosts: str | None = None,
    auth: bool = False,
    tls: tuple[Path, Path] | None = None,
) -> list[str]:
    """The `mlflow server` command line over `store`, its artifacts served from `artifacts`
    (`allowed_hosts`: MLflow's --allowed-hosts, passed through; `auth`: the basic-auth app; `tls`:
    HTTPS with this certificate and key, through uvicorn, MLflow's default server)."""
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    if mlflow is None:
        raise UserError(
            "the mlflow command is not installed beside this Python; `make .venv/.installed` installs it"
        )
    hosts = ["--allowed-hosts", host_patterns(allowed_hosts)] if allowed_hosts else []
    hosts += ["--app-name", "basic-auth"] if auth else []
    if tls is not None:
        certfile, keyfile = (shlex.quote(str(path.resolve())) for path in tls)
        # An idle keep-alive client never answers TLS's close, so a stop would wait asyncio's 30 s
        # for each one (measured): 5 s of grace, then the connections are dropped.
        opts = f"--ssl-certfile {certfile} --ssl-keyfile {keyfile} --timeout-graceful-shutdown 5"
        hosts += ["--uvicorn-opts", opts]
    return [mlflow, "server", "--backend-store-uri", store, "--artifacts-destination", str(artifacts),
            "--serve-artifacts", "--host", host, "--port", str(port), "--workers", "1", *hosts]  # fmt: skip


def host_patterns(names: str) -> str:
    """MLflow's --allowed-hosts for the names jobs reach the server by: each with any port (the Host
    header carries it), beside MLflow's defaults (loopback, private IPs), which a list replaces."""
    from mlflow.server.security_utils import get_default_allowed_hosts

    given = [name.strip() for name in names.split(",") if name.strip()]
    if "*" in given:
        return "*"
    patterns = [p for name in given for p in ((name,) if ":" in name or "*" in name else (name, f"{name}:*"))]
    return ",".join(dict.fromkeys([*patterns, *get_default_allowed_hosts()]))


def auth_environment(store_file: Path, password_file: Path | None = None) -> dict[str, str]:
    """The environment MLflow's basic-auth app reads: a config file beside the store naming the user
    database (`<store>-auth.db`), the admin's name (`MLFLOW_AUTH_ADMIN_USERNAME`, default admin) and,
    on the first start, the admin's password (`MLFLOW_AUTH_ADMIN_PASSWORD` or `password_file`), never
    a default; a CSRF key for this server's life unless one is set."""
    users = store_file.with_name(f"{store_file.stem}-auth.db")
    username = os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin"
    password = os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD")
    if password_file is not None:
        password = read_password_file(password_file)
    first_start = not users.exists() or users.stat().st_size == 0  # empty: made by a start that failed
    if first_start:  # MLflow creates the admin on the first start only, and ignores it after
        check_admin_password(username, password)
    private_file(users)  # the users' password hashes: the server's user alone reads them
    config = store_file.with_name(f"{store_file.stem}-auth.ini")
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{users.resolve()}\n"
        f"admin_username = {username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {AUTH_CACHE_TTL_S}\n"
    )
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_AUTH_ADMIN_USERNAME": username}
    if password and first_start:  # later starts never need it: it leaves the server's environment
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    csrf_key = os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or secrets.token_hex(32)
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = csrf_key
    return env


def read_password_file(path: Path) -> str:
    """The admin's password from a file only its owner can read."""
    owner_only(path, "--auth-password-file")
    try:
        return path.read_text().strip()
    except OSError as err:
        raise UserError(f"--auth-password-file {path}: {err.strerror}") from None


def owner_only(path: Path, option: str) -> None:
    """Refuse, in one line, a secret's file that others on the host can read (or that is missing)."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise UserError(f"{option} {path}: {err.strerror}") from None
    if mode & 0o077:
        raise UserError(
            f"{option} {path} can be read by others (mode {mode & 0o777:o}): "
            f"`chmod 600 {path}`, then start again"
        )


def private_file(path: Path) -> None:
    """`path` readable and writable by its owner alone (0600), created empty where missing (SQLite
    takes an empty file as a new database)."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


def check_admin_password(username: str, password: str | None) -> None:
    """Refuse, in one line, an admin password that is missing, MLflow's old default or too short."""
    if not password:
        raise UserError(
            f"--auth creates the admin user {username!r} on its first start: set MLFLOW_AUTH_ADMIN_PASSWORD "
            "or give --auth-password-file (no default password is ever used)"
        )
    if password == LEGACY_ADMIN_PASSWORD:
        raise UserError("--auth refuses MLflow's old default admin password; choose another")
    if len(password) < 12:  # MLflow's own rule (mlflow.utils.validation), checked here for one line
        raise UserError("--auth: the admin password must be at least 12 characters")


@dataclass(frozen=True)
class Serving:
    """What `server` was asked for: where it listens, over which store, and how it guards the port."""

    store: str | None
    host: str = "127.0.0.1"
    port: int = 5000
    create: bool = False
    allowed_hosts: str | None = None
    auth: bool = False
    insecure: bool = False
    password_file: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    cleartext_passwords: bool = False

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"


def check_serving(serving: Serving) -> None:
    """Refuse, in one line, a port that is open to the network unguarded: beyond loopback, users
    (`--auth`) or an explicit `--insecure`; users' passwords over plain HTTP beyond loopback only with
    `--cleartext-passwords`; a certificate and its key given together, the key its owner's alone."""
    if not 0 < serving.port < 65536:
        raise UserError(f"--port must be in 1-65535, got {serving.port}")
    beyond = serving.host not in LOOPBACK
    if beyond and not (serving.auth or serving.insecure):
        raise UserError(
            f"--host {serving.host} opens the store to the network: add --auth (users and passwords, "
            "docs/methods.md) or --insecure (anyone who reaches the port may write)"
        )
    if serving.password_file is not None and not serving.auth:
        raise UserError("--auth-password-file is the admin's password for --auth; add --auth")
    if (serving.certfile is None) != (serving.keyfile is None):
        raise UserError("--certfile and --keyfile go together: the certificate and its private key")
    if serving.certfile is not None:
        for given in (serving.certfile, serving.keyfile):
            if not given.is_file():
                raise UserError(f"no file {given} (docs/methods.md says how to make a self-signed pair)")
        owner_only(serving.keyfile, "--keyfile")
    if beyond and serving.auth and serving.certfile is None and not serving.cleartext_passwords:
        raise UserError(
            f"--auth on --host {serving.host} over plain HTTP sends every password in clear text: "
            "add --certfile/--keyfile (HTTPS), or --cleartext-passwords on a network you trust"
        )


def serve(serving: Serving) -> int:
    """Print the URI to give to jobs, then run the server in the foreground (until Ctrl-C). A
    `store` named that does not exist is refused (a mistyped path would serve a new, empty store)
    unless `create`; the default store is made where missing, as every command makes it."""
    check_serving(serving)
    store, host, port = serving.store, serving.host, serving.port
    if (store or "").startswith(("http://", "https://")):
        raise UserError(f"{store} is a server already: give it to jobs as --tracking-uri")
    named = Path(store.removeprefix("sqlite:///")) if (store or "").startswith("sqlite:///") else None
    if named is not None and not named.exists() and not serving.create:
        raise StorageError(f"no store at {named} (a mistyped path?); add --create to make a new one there")
    tracker = Tracker(store)  # checks (and creates) the store before the server starts on it
    if tracker.sqlite_path is None:
        raise UserError(f"`server` serves an SQLite store (sqlite:///PATH); {tracker.uri} is not one")
    artifacts = tracker.artifacts_root()
    link_named_folders(tracker.client, artifacts)
    env = dict(os.environ)
    # MLflow's job runner (GenAI scorers, prompt optimisation: nothing the suite asks of a server)
    # would start 8 processes beside the server and double its start-up (docs/methods.md).
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if serving.auth:
        env.pop("MLFLOW_AUTH_ADMIN_PASSWORD", None)  # passed on the first start only (auth_environment)
        env.update(auth_environment(tracker.sqlite_path, serving.password_file))
    tls = (serving.certfile, serving.keyfile) if serving.certfile else None
    command = server_command(tracker.uri, artifacts, host, port, serving.allowed_hosts, serving.auth, tls)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    scheme = serving.scheme
    print(f"MLflow tracking server on {scheme}://{host}:{port} over {tracker.uri} (artifacts: {artifacts})")
    print(f"jobs log to it with: --tracking-uri {scheme}://{shown}:{port}  (or MLFLOW_TRACKING_URI)")
    if tls:
        trust = serving.certfile.resolve()
        print(f"clients that do not already trust its certificate: MLFLOW_TRACKING_SERVER_CERT_PATH={trust}")
    if serving.auth:
        print("users: MLflow's basic-auth; jobs, report and sync pass MLFLOW_TRACKING_USERNAME/PASSWORD")
        if host not in LOOPBACK and not tls:
            print("warning: --cleartext-passwords: every password crosses the network unencrypted")
    elif host not in LOOPBACK:
        print("warning: --insecure: no authentication; anyone who reaches this port can write to the store")
    sys.stdout.flush()
    os.execve(command[0], command, env)
    return 0  # not reached
