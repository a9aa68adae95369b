"""Whether a job's timings were taken alone: the share of the machine's CPU time that processes
outside the job used, per epoch.

Each reading compares the machine's busy time (/proc/stat: every state but idle and iowait, over
all its CPUs) with the CPU time of the job's processes (/proc/PID/stat utime + stime of the job's
root and every process below it, plus cutime + cstime: children that ended hand their time to
their parent, so a worker that exits mid-epoch is still counted as the job's). What remains is
other processes': another `run`, a build, a browser. A run whose share ever exceeds
`CONTENDED_SHARE` is tagged `contended` and its reports say so; its timings are not the machine's.
On a host whose /proc/stat is wider than the job's CPUs (a container), others on the host count
against the host's CPUs. Without /proc (macOS): no reading.
"""

from __future__ import annotations

import os
import time

from .memory import PROC, descendants

CONTENDED_SHARE = 0.10  # of the machine's CPU time: 0.2 of a core on 2 cores
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


_job_root: int | None = None  # set by `set_job_root` in a process that is one rank of a job


def set_job_root(pid: int) -> None:
    """Name the process that started this job's ranks (a spawned rank's parent, torchrun's agent):
    the job's CPU time is that process's tree."""
    global _job_root
    _job_root = pid


def job_root() -> int:
    """The job's root process: the one that started its ranks (`set_job_root`), else this one."""
    return _job_root or os.getpid()


def machine_busy() -> tuple[float, int]:
    """(busy CPU seconds of the machine since boot, its CPUs) from /proc/stat."""
    lines = (PROC / "stat").read_text().splitlines()
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in lines[0].split()[1:9])
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return (user + nice + system + irq + softirq + steal) / TICKS, max(cpus, 1)


def tree_cpu(root: int) -> float:
    """CPU seconds used by `root` and the processes below it (and by their ended children)."""
    total = 0
    for pid in descendants(root):
        try:
            text = (PROC / str(pid) / "stat").read_text()
        except OSError:  # ended while we looked: its parent's cutime has it at the next reading
            continue
        fields = text[text.rindex(")") + 2 :].split()
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


class OthersMeter:
    """The share of the machine's CPU time used outside the job since the previous reading."""

    def __init__(self, root: int | None = None):
        self.root = root or job_root()
        self.available = (PROC / "stat").exists()
        self._last = self._sample() if self.available else None

    def _sample(self) -> tuple[float, float, float, int]:
        busy, cpus = machine_busy()
        return time.monotonic(), busy, tree_cpu(self.root), cpus

    def share(self) -> float | None:
        """Others' CPU time since the last reading over the machine's CPU time in it (0 to 1); None
        without /proc or for an interval too short to say."""
        if not self.available:
            return None
        now = self._sample()
        (t0, busy0, ours0, _), (t1, busy1, ours1, cpus) = self._last, now
        self._last = now
        if t1 - t0 < 0.5:
            return None
        others = max(0.0, (busy1 - busy0) - (ours1 - ours0))
        return min(1.0, others / ((t1 - t0) * cpus))
