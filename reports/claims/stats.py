"""The statistics every claim uses (docs/fidelity.md, "How the claims are decided").

A claim states one or more `Part`s in its paper's terms: an effect that must lie in a `Band` (a
direction with a smallest effect of interest, an equivalence margin, or a stated size). Each part
is measured per `Cell` (table x dataset x model x setting): one margin per run index, paired by
seed where the runs pair, with its 95 % t interval (scipy.stats). A cell supports the part when
its interval lies inside the band, contradicts it when the interval lies wholly outside, and is
open otherwise. A part over several cells is reproduced when every cell supports it ("up to":
when the best cell does) and not reproduced when any cell contradicts it ("up to": when every
cell does); never one test over pooled unlike cells. A cell decides only with every run its plan
fixed (at least MIN_RUNS): extra runs do not move a verdict, missing ones leave it open.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
INCONCLUSIVE, NOT_MEASURABLE = "inconclusive", "not measurable here"
NOT_COMPARABLE = "not comparable at this profile"  # a guard: the comparison could make the claim look true
NOT_RUN = "not run (budget)"  # `run claims --budget` left its runs out: measurable here, not measured

LEVEL = 0.95  # every interval: two-sided 95 %, so each side of a band is a one-sided test at 0.025
MIN_RUNS = 3  # runs a cell needs before it decides (the paper's 3 runs per cell)
SUPPORTS, CONTRADICTS, OPEN = "supports", "contradicts", "open"


@dataclass(frozen=True)
class Band:
    """Where a cell's effect must lie for the claim to hold: (low, high), either end open (inf).
    `unit` says how margins read: "points", "x" (margins are log ratios, shown as ratios), or a
    plain unit name."""

    low: float = -math.inf
    high: float = math.inf
    why: str = ""
    unit: str = ""

    def judge(self, low: float, high: float) -> str:
        """SUPPORTS where the interval [low, high] lies inside the band, CONTRADICTS where it lies
        wholly outside, OPEN otherwise (or without an interval)."""
        if math.isnan(low) or math.isnan(high):
            return OPEN
        if self.low < low and high < self.high:
            return SUPPORTS
        if high < self.low or low > self.high:
            return CONTRADICTS
        return OPEN

    def show(self, value: float) -> str:
        """A margin on the band's scale, as the report prints it."""
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if self.unit == "x":
            return f"{math.exp(value):.3g}x"
        if self.unit == "points":
            return f"{value:+.2f} pts"
        return f"{value:+.3g}" + (f" {self.unit}" if self.unit else "")

    def text(self) -> str:
        """'> 1.1x', 'in [-1.00 pts, +1.00 pts]' ..."""
        if math.isinf(self.high):
            return f"> {self.show(self.low)}"
        if math.isinf(self.low):
            return f"< {self.show(self.high)}"
        return f"in [{self.show(self.low)}, {self.show(self.high)}]"


def above(low: float, why: str, unit: str = "") -> Band:
    """A direction with a smallest effect of interest: the effect exceeds `low`."""
    return Band(low, math.inf, why, unit)


def within(low: float, high: float, why: str, unit: str = "") -> Band:
    """An equivalence margin ("the same", "about"): two one-sided tests, the interval inside (low, high)."""
    return Band(low, high, why, unit)


@dataclass(frozen=True)
class Part:
    """One statement of a claim, tested per cell against its band. `every`: every cell must support
    it (False: "up to", the best cell decides). `paper`, `noise`, `cells`: the paper's effect on the
    band's scale, one run's spread seen in real runs and the paper's number of cells, from which
    `calibrate-claims` builds stores of known truth."""

    name: str
    band: Band
    every: bool = True
    paper: float = math.nan
    noise: float = math.nan
    cells: int = 1

    @property
    def null(self) -> float:
        """The effect at which the statement is false at its edge: no effect for a direction whose
        band starts at or above 0, else the band's nearest edge (an equivalence margin, a size)."""
        if math.isinf(self.band.high):
            return min(0.0, self.band.low) if self.band.low <= 0 else 0.0
        return self.band.high if abs(self.band.high) <= abs(self.band.low) else self.band.low


@dataclass(frozen=True)
class Cell:
    """One cell's margins for one part: one per planned run index (NaN where a run gave none: it
    failed before it measured anything), the runs' ids, the runs the plan fixed, and how many of
    the runs failed, diverged or missed a target (kept: censored or ranked last)."""

    part: str
    name: str
    values: tuple[float, ...]
    runs: tuple[str, ...] = ()
    planned: int = MIN_RUNS
    failed: int = 0
    note: str = ""

    @property
    def defined(self) -> list[float]:
        return [v for v in self.values if not math.isnan(v)]

    @property
    def estimate(self) -> tuple[float, float, float]:
        """(mean, low, high): the mean margin and its two-sided 95 % t interval (NaN without two values)."""
        return mean_interval(self.defined)

    def judge(self, band: Band) -> tuple[str, str]:
        """(SUPPORTS | CONTRADICTS | OPEN, why) of this cell against `band`."""
        n = len(self.values)
        mean, low, high = self.estimate
        if n < self.planned:
            return OPEN, f"{n} of {self.planned} planned runs"
        if self.planned < MIN_RUNS:
            return OPEN, f"{self.planned} run(s) planned, {MIN_RUNS} needed to decide"
        judged = band.judge(low, high)
        if judged == SUPPORTS and len(self.defined) < n:
            return OPEN, f"{n - len(self.defined)} planned run(s) failed before measuring"
        return judged, ""

    def text(self, band: Band) -> str:
        """'table1 resnet18 +1.20 pts [+0.50 pts, +1.90 pts], 3 of 3 runs (1 failed)'."""
        mean, low, high = self.estimate
        interval = f" [{band.show(low)}, {band.show(high)}]" if not math.isnan(low) else ""
        failed = f", {self.failed} failed, diverged or short of the target" if self.failed else ""
        note = f"; {self.note}" if self.note else ""
        runs = f"{len(self.values)} of {self.planned} runs"
        return f"{self.name} {band.show(mean)}{interval}, {runs}{failed}{note}"


def mean_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high) of `values` with the two-sided t interval at `level` (the t quantile from
    scipy.stats, as scipy.stats.ttest_1samp(...).confidence_interval computes it)."""
    values = [float(v) for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan, math.nan
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    sd = statistics.stdev(values, mean)
    half = t_quantile(0.5 + level / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half


@functools.lru_cache(maxsize=256)
def t_quantile(q: float, df: int) -> float:
    """Student's t quantile (scipy.stats.t.ppf), once per level and degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(q, df))


@dataclass(frozen=True)
class PartResult:
    """A part's verdict over its cells, and why."""

    part: Part
    verdict: str
    reason: str
    cells: tuple[Cell, ...] = field(default=())


def decide_part(part: Part, cells: Sequence[Cell]) -> PartResult:
    """A part's verdict from its cells (the module docstring's rule)."""
    cells = tuple(c for c in cells if c.part == part.name)
    if not cells:
        return PartResult(part, INCONCLUSIVE, f"{part.name}: no cell has runs")
    judged = [(c, *c.judge(part.band)) for c in cells]
    if part.every:
        against = [c for c, j, _ in judged if j == CONTRADICTS]
        if against:
            names = ", ".join(c.name for c in against)
            return PartResult(
                part, NOT_REPRODUCED, f"{part.name}: outside {part.band.text()} in {names}", cells
            )
        if all(j == SUPPORTS for _, j, _ in judged):
            return PartResult(part, REPRODUCED, f"{part.name}: every cell {part.band.text()}", cells)
    else:
        best = max(judged, key=lambda t: -math.inf if math.isnan(t[0].estimate[0]) else t[0].estimate[0])
        if best[1] == SUPPORTS:
            return PartResult(
                part, REPRODUCED, f"{part.name}: the best cell, {best[0].name}, {part.band.text()}", cells
            )
        if all(j == CONTRADICTS for _, j, _ in judged):
            return PartResult(part, NOT_REPRODUCED, f"{part.name}: no cell {part.band.text()}", cells)
    open_ = "; ".join(
        f"{c.name}: {why or 'the interval crosses the band'}" for c, j, why in judged if j == OPEN
    )
    return PartResult(part, INCONCLUSIVE, f"{part.name}: open ({open_})", cells)


def combine(verdicts: Sequence[str]) -> str:
    """Every part reproduced: reproduced; any part not reproduced: not reproduced; else inconclusive
    (not measurable where no part could be measured)."""
    if any(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    if verdicts and all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if verdicts and all(v == NOT_MEASURABLE for v in verdicts):
        return NOT_MEASURABLE
    return INCONCLUSIVE


def decide(parts: Sequence[Part], cells: Sequence[Cell]) -> tuple[str, str, tuple[PartResult, ...]]:
    """(verdict, reason, each part's result) of a claim from its cells."""
    results = tuple(decide_part(p, cells) for p in parts)
    return combine([r.verdict for r in results]), " | ".join(r.reason for r in results), results
