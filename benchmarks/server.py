"""`python -m benchmarks server`: an MLflow tracking server over the suite's store, for jobs on
several hosts (docs/methods.md, "Several hosts, one store").

Jobs log to it with `--tracking-uri http://HOST:PORT`. Over an SQLite store the server keeps the
artifacts beside the file, as the suite does (`artifacts/`), and serves them: an experiment the
server creates stores its artifacts through it (`mlflow-artifacts:/`), so a job on another host
needs no shared folder. Loopback by default: MLflow's server has no authentication, and
`--host 0.0.0.0` opens the store to the network.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from core.errors import StorageError, UserError

from .engine.tracking import Tracker


def server_command(
    store: str, artifacts: Path, host: str, port: int, allowed_hosts: str | None = None
) -> list[str]:
    """The `mlflow server` command line over `store`, its artifacts served from `artifacts`
    (`allowed_hosts`: MLflow's --allowed-hosts, passed through)."""
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    if mlflow is None:
        raise UserError(
            "the mlflow command is not installed beside this Python; `make .venv/.installed` installs it"
        )
    hosts = ["--allowed-hosts", allowed_hosts] if allowed_hosts else []
    return [mlflow, "server", "--backend-store-uri", store, "--artifacts-destination", str(artifacts),
            "--serve-artifacts", "--host", host, "--port", str(port), "--workers", "1", *hosts]  # fmt: skip


def serve(
    store: str | None, host: str, port: int, create: bool = False, allowed_hosts: str | None = None
) -> int:
    """Print the URI to give to jobs, then run the server in the foreground (until Ctrl-C). A
    `store` named that does not exist is refused (a mistyped path would serve a new, empty store)
    unless `create`; the default store is made where missing, as every command makes it."""
    if not 0 < port < 65536:
        raise UserError(f"--port must be in 1-65535, got {port}")
    if (store or "").startswith(("http://", "https://")):
        raise UserError(f"{store} is a server already: give it to jobs as --tracking-uri")
    named = Path(store.removeprefix("sqlite:///")) if (store or "").startswith("sqlite:///") else None
    if named is not None and not named.exists() and not create:
        raise StorageError(f"no store at {named} (a mistyped path?); add --create to make a new one there")
    tracker = Tracker(store)  # checks (and creates) the store before the server starts on it
    if tracker.sqlite_path is None:
        raise UserError(f"`server` serves an SQLite store (sqlite:///PATH); {tracker.uri} is not one")
    artifacts = tracker.sqlite_path.parent / "artifacts"
    command = server_command(tracker.uri, artifacts, host, port, allowed_hosts)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"MLflow tracking server on http://{host}:{port} over {tracker.uri} (artifacts: {artifacts})")
    print(f"jobs log to it with: --tracking-uri http://{shown}:{port}  (or MLFLOW_TRACKING_URI)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            "warning: the server has no authentication; anyone who reaches this port can write to the store"
        )
    sys.stdout.flush()
    os.execv(command[0], command)
    return 0  # not reached
