"""The suite's runner, CLI, tables and perf benchmarks (`python -m benchmarks`)."""

from .allocator import tune_glibc_malloc

# Before torch starts any thread: every process of the suite (CLI, spawned workers, tests) gets it.
tune_glibc_malloc()
