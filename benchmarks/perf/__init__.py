"""Micro-benchmarks (`python -m benchmarks perf NAME`): both sides in one process, interleaved.

These machines drift by ±20 % within a minute, so each benchmark alternates A B A B ... after a
warm-up of each side and reports the median of the per-repetition ratios A/B.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable


def interleaved(a: Callable[[], float], b: Callable[[], float], reps: int) -> dict:
    """Run a and b (each returns items/s) alternately `reps` times after one warm-up each.

    The order alternates (A B, B A, A B, ...) so that a steady drift of the machine's speed
    favours neither side; each repetition's ratio compares two adjacent measurements.
    """
    a(), b()
    a_rates, b_rates = [], []
    for rep in range(reps):
        if rep % 2 == 0:
            a_rates.append(a())
            b_rates.append(b())
        else:
            b_rates.append(b())
            a_rates.append(a())
    ratios = [x / y for x, y in zip(a_rates, b_rates, strict=True)]
    return dict(
        a_per_s=statistics.median(a_rates),
        b_per_s=statistics.median(b_rates),
        ratio=statistics.median(ratios),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
        reps=reps,
    )


def _registry() -> dict[str, Callable]:
    from .async_speed import perf_async
    from .baselines import perf_baselines
    from .loader import perf_loader
    from .overhead import perf_overhead
    from .pipeline import perf_pipeline

    return {
        "overhead": perf_overhead,
        "pipeline": perf_pipeline,
        "async": perf_async,
        "baselines": perf_baselines,
        "loader": perf_loader,
    }


PERF = _registry()
