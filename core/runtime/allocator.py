"""glibc malloc settings that stop training steps from page-faulting their activations back in.

With glibc's defaults, memory a step frees goes back to the kernel (the heap's top is trimmed once
it exceeds twice the largest recently freed block, a thread arena's extra heap is unmapped once
empty, blocks above the mmap threshold are unmapped on free), and the next step faults it in again,
4 KiB at a time. Blocks above 32 MiB (glibc's largest mmap threshold) are mapped on their own
whenever the heap's free top cannot hold them, and a long-lived process soon fills the top with its
data and model; so mmap is off (M_MMAP_MAX = 0): the heap grows instead and reuses freed blocks.
Measured here (torch 2.14, CPU; docs/performance.md, "Memory allocator"): the quick IMDb LSTM took
~17,000 minor faults a step with glibc's defaults, 28 % of bp's CPU time in the kernel, and still
~12,500 with the thresholds alone, before mmap was turned off.
It is the same kind of setting as PyTorch's CPU tuning guide's advice to preload jemalloc or
tcmalloc, applied by the suite itself so that every method and every process gets it.
`BENCH_MALLOC_TUNING=0` keeps glibc's defaults.
"""

from __future__ import annotations

import ctypes
import os

# mallopt(3) parameter numbers from glibc's malloc.h.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -4, -8
SETTINGS = (
    # One arena: a thread arena frees whole heaps back to the kernel whatever the trim threshold,
    # and the async backward threads each got one (their faults stayed with the thresholds alone).
    (M_ARENA_MAX, 1),
    # No block of its own mapping: blocks above glibc's largest mmap threshold (32 MiB; the
    # LSTM's oneDNN workspace is 65-100 MB at 300-400 tokens) were mapped and unmapped every step
    # once the dataset and the model had taken the heap's free top (`perf async --model lstm`:
    # ~12,500 faults a step, a quarter of the CPU time in the kernel, 1.3-1.5x the time of a
    # 400-token step). Without mmap the heap grows to hold them and keeps them for the next step
    # (glibc still maps memory for the heap itself where brk fails).
    (M_MMAP_MAX, 0),
    (M_TOP_PAD, 512 << 20),  # grow the heap 512 MiB at a time (address space; pages count once touched)
    (M_TRIM_THRESHOLD, 1 << 30),  # keep up to 1 GiB of freed heap mapped for the next step
)


def is_glibc() -> bool:
    """Whether this process runs on glibc (asked of the C library: every process of the suite calls
    this at start-up, and `platform.libc_ver` would read the Python executable to find out)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):  # not a name this platform knows (macOS, musl)
        return False


def tune_glibc_malloc() -> bool:
    """Apply SETTINGS in this process (glibc only, unless BENCH_MALLOC_TUNING=0); True if applied."""
    if os.environ.get("BENCH_MALLOC_TUNING", "1") == "0" or not is_glibc():
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)
