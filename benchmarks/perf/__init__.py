"""Micro-benchmarks (`python -m benchmarks perf NAME`): both sides in one process, interleaved.

These machines drift by ±20 % within a minute, so each benchmark alternates A B A B ... after a
warm-up of each side and reports the median of the per-repetition ratios A/B (`common.interleaved`).
Each module registers its benchmark with `@register_perf`; every module is imported, so a new
benchmark is one new file.
"""

import sys

from core.registry import import_modules

from .common import PERF, PerfOptions, register_perf

import_modules(sys.modules[__name__])

__all__ = ["PERF", "PerfOptions", "register_perf"]
