"""glibc malloc settings that stop training steps from page-faulting their activations back in.

With glibc's defaults, memory a step frees goes back to the kernel (the heap's top is trimmed once
it exceeds twice the largest recently freed block, a thread arena's extra heap is unmapped once
empty, blocks above the mmap threshold are unmapped on free), and the next step faults it in again,
4 KiB at a time. Measured here (torch 2.14, CPU): the quick IMDb LSTM took ~17,000 minor faults a
step (its oneDNN workspace alone is ~75 MB at 300 tokens), 28 % of bp's CPU time in the kernel.
With these settings, in one `perf async` run each: LSTM bp 1.44x and async_lu 1.42x the
samples/s of glibc's defaults; ResNet-18 async_lu 1.10x, bp 1.05x at one thread and 0.99x on both.
It is the same kind of setting as PyTorch's CPU tuning guide's advice to preload jemalloc or
tcmalloc, applied by the suite itself so that every method and every process gets it.
`BENCH_MALLOC_TUNING=0` keeps glibc's defaults.
"""

from __future__ import annotations

import ctypes
import os

# mallopt(3) parameter numbers from glibc's malloc.h.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8
SETTINGS = (
    # One arena: a thread arena frees whole heaps back to the kernel whatever the trim threshold,
    # and the async backward threads each got one (their faults stayed with the thresholds alone).
    (M_ARENA_MAX, 1),
    # glibc's maximum on 64-bit. Larger blocks (the LSTM's oneDNN workspace: ~75 MB at 300 tokens)
    # are still mmap'd, unless the heap's free top already holds them: hence the top pad, which
    # grows the heap 512 MiB at a time (address space; pages count only once touched).
    (M_MMAP_THRESHOLD, 32 << 20),
    (M_TOP_PAD, 512 << 20),
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
