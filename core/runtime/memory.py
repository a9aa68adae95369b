"""Peak memory of one process of a job and the processes it started, since the last reading.

On CUDA: `torch.cuda.max_memory_allocated` of the process's device (what its tensors held at the
peak; the caching allocator's reserve is logged apart, `system/gpu_mem_reserved_gib`). On the CPU:
the peak resident set (`VmHWM` in /proc/PID/status) of this process and of every process below it
(LAP-SGD's worker processes, DataLoader workers), summed; each is reset after it is read (writing
5 to /proc/PID/clear_refs), so a reading covers one epoch. Pages two processes share (a dataset in
shared memory, the libraries) count once per process: the sum can exceed the memory in use, as
`top`'s sum of RES does. Where /proc is missing (macOS), the process's own peak since it started
(`getrusage`), without its children.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

PROC = Path("/proc")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from the parent ids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])  # after the command name, which may hold spaces
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def peak_resident_bytes(pid: int) -> int:
    """A process's peak resident set since it started or since its last reset (0 if it has ended)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak(pid: int) -> None:
    """Start a process's peak resident set again from its current size (Linux 4.0+)."""
    try:
        (PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:  # not ours to reset, or ended: its next reading covers more than an epoch
        pass


def peak_bytes(device: torch.device) -> int:
    """This process's (with its children on the CPU) peak memory since the last call, in bytes."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))  # the epoch's: the context resets it
    if not (PROC / "self" / "status").exists():
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    total = 0
    for pid in descendants(os.getpid()):
        total += peak_resident_bytes(pid)
        reset_peak(pid)
    return total
