"""Errors a user can cause, each mapped to one message line and an exit code by the CLI."""

import re


class UserError(Exception):
    """Bad input on the command line (unknown name, bad value): exit code 2."""

    exit_code = 2


class DataMissingError(Exception):
    """A dataset is not on disk and cannot be downloaded: exit code 1."""

    exit_code = 1


class StorageError(Exception):
    """The MLflow store or an output folder cannot be used (corrupt, unwritable, unreachable): exit code 1."""

    exit_code = 1


class ServerAway(StorageError):
    """A tracking server did not answer (refused, timed out, a 5xx while it restarts): exit code 1."""


class AccessRefused(StorageError):
    """A tracking server with users refused our credentials (401) or a write (403): exit code 1."""


class Diverged(Exception):
    """A training loss became NaN or infinite."""


def did_you_mean(kind: str, value: str, choices, plural: str | None = None) -> UserError:
    """A UserError naming the valid choices for `kind`."""
    return UserError(f"unknown {kind} {value!r}; valid {plural or kind + 's'}: {', '.join(sorted(choices))}")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a cluster's preemption or time limit, a closed terminal): handled as
    Ctrl-C is, so the run is marked `interrupted` and its processes end; `signal` names it."""

    def __init__(self, signal_name: str, exit_code: int):
        super().__init__(signal_name)
        self.signal = signal_name
        self.exit_code = exit_code


def one_line(err: BaseException) -> str:
    """An exception as one short line (MLflow's and SQLAlchemy's messages span many), without
    SQLAlchemy's statement and parameters (`[SQL: ...]`) or its background link."""
    text = " ".join(str(err).split())
    text = re.sub(r"\s*\[SQL: .*$|\s*\(Background on this error at: [^)]*\)", "", text)
    return f"{type(err).__name__}: {text[:300]}"
