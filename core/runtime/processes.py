"""Process lifetimes: child processes that die with their parent, and an identity that tells
whether the process that opened a run is still alive (so a run left RUNNING by a killed process is
found and closed)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import threading
from collections.abc import Mapping
from pathlib import Path


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one, else all)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def die_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` (its parent) ends, however it ends: no orphans.

    Linux delivers SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); a parent gone before
    this line is caught by comparing the parent's pid. Callers that loop also compare it (other
    platforms have no PDEATHSIG).
    """
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux /proc), '' where unknown: with the
    pid it names one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after the command name


_own_start: dict[int, str] = {}  # pid -> its start ticks: a process's own, read once (a fork reads its own)


def identity() -> dict[str, str]:
    """This process: host, pid and start time (MLflow tags of a run it opens)."""
    pid = os.getpid()
    if pid not in _own_start:  # /proc read each time cost the path calibration 8 % of its time
        _own_start[pid] = start_ticks(pid)
    return dict(host=socket.gethostname(), pid=str(pid), pid_start=_own_start[pid])


def is_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process of an identity (the `identity()` fields among a run's tags) still runs;
    None when it cannot be told from here (another host, or no pid recorded)."""
    host, pid, pid_start = tags.get("host", ""), tags.get("pid", ""), tags.get("pid_start", "")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    return not pid_start or start_ticks(int(pid)) in ("", pid_start)


def start_without_sigint(process) -> None:
    """Start a child process that cannot receive Ctrl-C from birth, and that a Ctrl-C during its
    start cannot cut off: a Ctrl-C meanwhile is raised once the start has returned.

    SIGINT is blocked in this thread while the child starts, and a spawned child inherits the
    blocked signal through fork and exec (its entry point then ignores SIGINT, which also drops a
    pending one). Another thread of this process may still take the signal, and Python then runs
    its handler in this (the main) thread at the next bytecode, which may be inside `start()`
    while it writes the child's preparation data: the child then died on end-of-file with a
    traceback. So the handler is deferred too: a Ctrl-C during the start is recorded, and the
    previous handler runs as soon as the start returns (ignoring it instead, as this once did,
    lost a Ctrl-C that came during the start).
    """
    if threading.current_thread() is not threading.main_thread():
        process.start()  # the child of another thread: its parent's main thread handles Ctrl-C
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGINT, previous)
    if caught:
        if callable(previous):
            previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt
