"""Times to a target as censored data (docs/claims.md, "Times to a target").

A run that never reached its target gives no time: a finished one is censored at its own last
training time (it is known only to need longer), one that diverged or failed before it at
infinity (it never reaches it). A `TimeCell` compares two rows'
times to the target, `slow` (the row the claim says is slower) over `fast`, on the band's log
scale: its effect θ is the shift in log time between the rows (log(t_slow / t_fast), an
accelerated-failure-time reading). Where every time was reached, θ is read as before, from the
log ratios of the runs paired by run index with their t interval (the log-normal model's exact
interval). Where any time is censored, no time is imputed: each side of a band is a one-sided
log-rank test (scipy.stats.logrank on scipy.stats.CensoredData) of θ against that edge, the slow
row's times scaled by exp(-edge), and the interval is the set of shifts no such test rejects;
the rows are then compared unpaired, since log-rank has no paired form.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from ._common import Evidence, Selector, compared_rows, log_ratio, rows_of
from .stats import LEVEL, Band, Cell, Part

# A time past every other: a run that never reaches the target (scipy's CensoredData takes no
# infinity; log-rank reads only the times' order).
NEVER = 1e300


def _sample(times: tuple[float, ...], reached: tuple[bool, ...], scale: float = 1.0) -> stats.CensoredData:
    kept = [(min(t * scale, NEVER), r) for t, r in zip(times, reached, strict=True) if t > 0]
    return stats.CensoredData(uncensored=[t for t, r in kept if r], right=[t for t, r in kept if not r])


@functools.lru_cache(maxsize=4096)
def _logrank_z(cell: TimeCell, shift: float) -> float:
    """scipy.stats.logrank's statistic of the fast row against the slow row scaled by exp(-shift),
    once per cell and shift (both one-sided p-values and every band edge read it); NaN for no test."""
    fast = _sample(cell.fast, cell.fast_reached)
    slow = _sample(cell.slow, cell.slow_reached, math.exp(-shift))
    reached = len(fast) - fast.num_censored() + len(slow) - slow.num_censored()
    if not (len(fast) and len(slow)) or not reached:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):  # no variance (one time each): NaN
        return float(stats.logrank(fast, slow).statistic)


@dataclass(frozen=True)
class TimeCell(Cell):
    """Two rows' times to a target (`slow`, `fast`: one per planned run, NaN where a run measured
    nothing) and whether each reached it (False: censored at that time); `values`: the log ratios of
    the runs paired by run index, read where no time is censored."""

    values: tuple[float, ...] = ()
    slow: tuple[float, ...] = ()
    fast: tuple[float, ...] = ()
    slow_reached: tuple[bool, ...] = ()
    fast_reached: tuple[bool, ...] = ()

    @property
    def count(self) -> int:
        return len(self.values) if not self.censored else min(len(self.slow), len(self.fast))

    def first(self, runs: int) -> Cell:
        """The cell as each row's first `runs` runs make it (a look of the design)."""
        half, ids = len(self.slow), self.runs
        if len(ids) == half + len(self.fast):  # the slow row's ids, then the fast row's
            ids = ids[:runs] + ids[half : half + runs]
        return replace(
            self, values=self.values[:runs], runs=ids, planned=runs, slow=self.slow[:runs],
            fast=self.fast[:runs], slow_reached=self.slow_reached[:runs],
            fast_reached=self.fast_reached[:runs],
        )  # fmt: skip

    @property
    def unmeasured(self) -> int:
        if not self.censored:
            return super().unmeasured
        return sum(not t > 0 for t in (*self.slow, *self.fast))  # NaN: nothing measured

    @property
    def center(self) -> float:
        if not self.censored:
            return super().center
        shifts = self._breakpoints()
        return float(np.median(shifts)) if shifts.size else math.nan

    @property
    def censored(self) -> int:
        """How many runs' times are censored (they did not reach the target)."""
        return sum(not r for r in (*self.slow_reached, *self.fast_reached))

    def p_above(self, shift: float) -> float:
        """One-sided p of "θ > shift": the fast row's times shorter than the slow row's scaled by
        exp(-shift)."""
        return self._p(shift, "greater")  # scipy: the first sample's failure (reaching) rate is greater

    def p_below(self, shift: float) -> float:
        """One-sided p of "θ < shift"."""
        return self._p(shift, "less")

    def _p(self, shift: float, alternative: str) -> float:
        z = _logrank_z(self, shift)
        if math.isnan(z):
            return 1.0  # no test (a row without times, none that reached the target, no variance)
        # scipy.stats.logrank's one-sided p-values of its statistic: "greater" sf(z), "less" cdf(z).
        return float(stats.norm.sf(z) if alternative == "greater" else stats.norm.cdf(z))

    def inside(self, band: Band, alpha: float) -> bool:
        if not self.censored:
            return super().inside(band, alpha)
        low_ok = not math.isfinite(band.low) or self.p_above(band.low) < alpha
        return low_ok and (not math.isfinite(band.high) or self.p_below(band.high) < alpha)

    def outside(self, band: Band, alpha: float) -> bool:
        if not self.censored:
            return super().outside(band, alpha)
        below = math.isfinite(band.low) and self.p_below(band.low) < alpha
        return below or (math.isfinite(band.high) and self.p_above(band.high) < alpha)

    def interval(self, level: float = LEVEL) -> tuple[float, float, float]:
        """(estimate, low, high): the shifts no one-sided test at (1 - level) / 2 rejects, and the
        shift the data favour most (where the two one-sided p-values balance); NaN without times.
        Without censored times: the paired log ratios' mean and t interval."""
        if not self.censored:
            return super().interval(level)
        shifts = self._breakpoints()
        if shifts.size == 0:
            return math.nan, math.nan, math.nan
        # The tests change only where a scaled slow time crosses a fast one: one shift per stretch.
        edges = np.concatenate(([shifts[0] - 1.0], (shifts[:-1] + shifts[1:]) / 2, [shifts[-1] + 1.0]))
        alpha = (1 - level) / 2
        above = np.array([self.p_above(s) for s in edges])
        below = np.array([self.p_below(s) for s in edges])
        ruled_below = np.flatnonzero(above < alpha)  # stretches where θ > shift is shown
        ruled_above = np.flatnonzero(below < alpha)  # stretches where θ < shift is shown
        # Stretch k lies between shifts[k - 1] and shifts[k]: the bounds are those breakpoints.
        bounds = np.concatenate(([-math.inf], shifts, [math.inf]))
        low = bounds[ruled_below.max() + 1] if ruled_below.size else -math.inf
        high = bounds[ruled_above.min()] if ruled_above.size else math.inf
        estimate = float(edges[np.argmax(np.minimum(above, below))])
        return estimate, float(low), float(high)

    def _breakpoints(self) -> np.ndarray:
        slow = [math.log(t) for t in self.slow if math.isfinite(t) and t > 0]
        fast = [math.log(t) for t in self.fast if math.isfinite(t) and t > 0]
        return np.unique(np.subtract.outer(slow, fast).ravel())

    @property
    def censored_runs(self) -> tuple[str, ...]:
        """The ids of the runs whose times are censored (`runs` holds the slow row's, then the fast's)."""
        reached = (*self.slow_reached, *self.fast_reached)
        if len(self.runs) != len(reached):
            return ()
        return tuple(str(r)[:8] for r, hit in zip(self.runs, reached, strict=True) if not hit)

    def text(self, band: Band, level: float = LEVEL) -> str:
        shown = super().text(band, level)
        if not self.censored:
            return shown
        ids = f" ({', '.join(self.censored_runs)})" if self.censored_runs else ""
        return f"{shown}; {self.censored} censored{ids}, compared by log-rank"


def unset_targets(evidence: Evidence, table_ids: tuple[str, ...]) -> str:
    """Why the tables' runs have no time to a target where a workload has no frozen target at this
    profile ("" where every one has): the claims never take one from the runs they score."""
    missing = [
        f"{table_id}'s {model}"
        for table_id in table_ids
        if not (runs := evidence.runs(table_id)).empty
        for model in dict.fromkeys(runs["model"])
        if model not in evidence.specs[table_id].target_values(evidence.profile)
    ]
    if not missing:
        return ""
    first = missing[0].split("'")[0]
    return (
        f"no frozen target for {', '.join(missing)} at {evidence.profile}: `python -m benchmarks targets "
        f"{first} --profile {evidence.profile}` derives one from reference runs, to be frozen in "
        "benchmarks/tables/common/targets.py before any scored run"
    )


def time_cells(
    evidence: Evidence,
    part: Part,
    table_ids: tuple[str, ...],
    slow: Selector,
    fast: Selector,
    value: str,
    what: str = "",
    models: tuple[str, ...] = (),
) -> list[Cell]:
    """One censored cell per table and model (censored.TimeCell): row `slow`'s times to the target
    (`value`, a time column of `Evidence.per_run`) over row `fast`'s, unpaired, each run that did not
    reach the target censored (`_per_run.with_censored_times`)."""
    cells: list[Cell] = []
    for table_id, model, *rows in compared_rows(evidence, table_ids, slow, fast, models):
        if value == "tta_target_s" and not rows[0]["target"].notna().any():
            continue  # no frozen target for this workload (`unset_targets` says so)
        rows = [r.sort_values("run_index") for r in rows]
        flag = f"{value}_censored"
        reached = [tuple(~r[flag].astype(bool)) if flag in r else (True,) * len(r) for r in rows]
        paired = rows[0].merge(rows[1], on="run_index", suffixes=("_a", "_b"))
        # A pair with a censored time has no ratio (its last time is no time to the target): read
        # only where nothing is censored, and by runs_to_decide's estimate of an open cell.
        missed = paired.get(f"{flag}_a", False) | paired.get(f"{flag}_b", False)
        ratios = tuple(
            math.nan if censored else log_ratio(a, b)
            for a, b, censored in zip(
                paired[f"{value}_a"], paired[f"{value}_b"], pd.Series(missed, index=paired.index), strict=True
            )
        )
        cells.append(
            TimeCell(
                part.name,
                f"{table_id} {model}" + (f" {what}" if what else ""),
                ratios,
                runs=tuple(rows[0]["run_id"]) + tuple(rows[1]["run_id"]),
                planned=evidence.planned_runs,
                failed=sum(
                    int(status != "finished" or not hit)
                    for r, side in zip(rows, reached, strict=True)
                    for status, hit in zip(r["status"], side, strict=True)
                ),
                slow=tuple(float(t) for t in rows[0][value]),
                fast=tuple(float(t) for t in rows[1][value]),
                slow_reached=tuple(bool(x) for x in reached[0]),
                fast_reached=tuple(bool(x) for x in reached[1]),
                rows=rows_of(table_id, model, *rows),
            )
        )
    return cells
