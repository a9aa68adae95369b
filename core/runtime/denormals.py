"""Denormal floats flushed to zero on the CPU, in every process of the suite (docs/performance.md,
"Denormal floats").

x86 CPUs compute on denormal floats (magnitudes below 1.2e-38) ~100x slower than on normal ones;
GPUs do not slow down on them. A method whose gradients decay towards zero then runs much slower on
a CPU for a reason no GPU has: DiLoCo's conv backward took 59 ms where its forward took 1.7 ms, 94
samples/s against bp's 721 (Intel Xeon, 2 cores, 2026-11-28). With the CPU's flush-to-zero and
denormals-are-zero modes on, it ran at 789. The modes are a thread's own (x86's MXCSR): a thread
starts with its creator's, so they are set as a process's first torch call, before torch starts
its thread pools, and every thread after inherits them; set later, the pools' threads keep
computing on denormals (219 samples/s). Every method gets them, in every process: the same CPU for
all.
"""

from __future__ import annotations


def flush_denormals() -> bool:
    """Flush-to-zero and denormals-are-zero on this thread and the threads it starts after; True
    where the CPU has them (x86 with SSE3)."""
    import torch  # here: `--help` and `list` need no torch

    return torch.set_flush_denormal(True)
