"""The statistics every claim uses (docs/claims.md, "How the claims are decided").

A claim states one or more `Part`s in its paper's terms: an effect that must lie in a `Band` (a
direction with a smallest effect of interest, an equivalence margin, or a stated size). Each part
is measured per `Cell` (table x dataset x model x setting): one margin per run index, paired by
seed where the runs pair, with its t interval (scipy.stats). A cell supports the part when its
interval lies inside the band, contradicts it when the interval lies wholly outside, and is open
otherwise. Each side of a band is a one-sided test at ALPHA, and the claim's family-wise error is
held at ALPHA in each direction over all of its cells:

- "reproduced": a part that every cell must support is an intersection-union test (each cell at
  ALPHA); an "up to" part (the best cell) is reproduced when some cell supports it at ALPHA / k,
  Bonferroni over its k cells, and, where its band closes above, every cell lies below the high
  edge at ALPHA (no cell above the stated size); the claim needs every part.
- "not reproduced": any cell that contradicts a part decides against the claim, so every such
  cell, over all parts, is one test of one family: each at ALPHA / m, with m those tests
  (Bonferroni, which for "any of them" is Holm's first step); an "up to" part contradicts when
  every cell does (one member of that family) or any cell lies wholly above a closed band (one
  member per cell).

Runs come by a pre-registered sequential `Design` (rule version 4): a cell is looked at when it
holds the runs of a look (3, then 5, then 10), each look judged on the cell's first runs at its
share of the error rate (Lan-DeMets spending, Pocock type; the shares sum to one, so by the union
bound over the looks each direction's error stays at ALPHA). A cell that decides at a look keeps
that decision and gets no more runs; runs beyond the design's last look never count, and a cell
short of its first look is open.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"
INCONCLUSIVE, NOT_MEASURABLE = "inconclusive", "not measurable here"
NOT_COMPARABLE = "not comparable at this profile"  # a guard: the comparison could make the claim look true
# The design cannot decide it at this profile on this hardware (Claim.undecidable): under 80 % power
# at the paper's own effect by its last look, so `run claims` does not spend looks on it.
NOT_DECIDABLE = "not decidable here"
NOT_RUN = "not run (budget)"  # `run claims --budget` left its runs out: measurable here, not measured

ALPHA = 0.025  # each side of a band: a one-sided test, and a claim's family-wise error per direction
LEVEL = 1 - 2 * ALPHA  # an interval shown alone: two-sided 95 %
MIN_RUNS = 3  # runs a cell needs before it decides (the paper's 3 runs per cell)
SUPPORTS, CONTRADICTS, OPEN = "supports", "contradicts", "open"


@dataclass(frozen=True)
class Design:
    """A claim's pre-registered sequential design: the runs per cell at each look, the last its
    maximum, and the error it spends at each (Lan-DeMets' Pocock-type spending function
    alpha * ln(1 + (e - 1) t) at information fraction t = runs / maximum). O'Brien-Fleming's
    spends about 4e-5 of 0.025 at 3 of 10 runs, which a t test on 2 degrees of freedom cannot use:
    Pocock's spends 42 % there (docs/fidelity.md)."""

    looks: tuple[int, ...] = (3, 5, 10)

    @property
    def most(self) -> int:
        """The most runs a cell gets."""
        return self.looks[-1]

    def spent(self, look: int) -> float:
        """The share of the error spent by look `look` (1-based; 0 before the first)."""
        if look <= 0:
            return 0.0
        return math.log1p((math.e - 1) * self.looks[look - 1] / self.most)

    def share(self, look: int) -> float:
        """The share of the error look `look` spends (the shares of all looks sum to one)."""
        return self.spent(look) - self.spent(look - 1)

    def text(self) -> str:
        """'looks at 3, 5, 10 runs a cell (shares of the error 0.416, 0.204, 0.380; Pocock-type spending)'."""
        shares = ", ".join(f"{self.share(k):.3f}" for k in range(1, len(self.looks) + 1))
        runs = ", ".join(map(str, self.looks))
        return f"looks at {runs} runs a cell (shares of the error {shares}; Pocock-type spending)"


SEQUENTIAL = Design()


@dataclass(frozen=True)
class Band:
    """Where a cell's effect must lie for the claim to hold: (low, high), either end open (inf).
    `unit` says how margins read: "points", "x" (margins are log ratios, shown as ratios), or a
    plain unit name."""

    low: float = -math.inf
    high: float = math.inf
    why: str = ""
    unit: str = ""

    def inside(self, low: float, high: float) -> bool:
        """Whether the interval [low, high] lies inside the band (False without an interval)."""
        return self.low < low and high < self.high

    def outside(self, low: float, high: float) -> bool:
        """Whether the interval [low, high] lies wholly outside the band (False without an interval)."""
        return high < self.low or low > self.high

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


# A stated size ("2.14x faster") holds where our ratio lies within a factor of 1.25 of it: about one
# pair's spread of log time ratios measured here (0.2, docs/performance.md), so no tighter than one
# of our own runs is exact, and closed on both sides (half the size in log terms, 1.47x for 2.14x,
# passed under rule version 2).
SIZE_TOLERANCE = math.log(1.25)


def stated(size: float, why: str) -> Band:
    """A stated ratio (`size`, e.g. 2.14), on the log scale: within SIZE_TOLERANCE of it either way."""
    return Band(math.log(size) - SIZE_TOLERANCE, math.log(size) + SIZE_TOLERANCE, why, "x")


@dataclass(frozen=True)
class Part:
    """One statement of a claim, tested per cell against its band. `every`: every cell must support
    it (False: "up to", the best cell decides). `paper`, `noise`, `cells`: the paper's effect on the
    band's scale, one run's spread seen in real runs and the paper's number of cells, from which
    `calibrate-claims` builds stores of known truth; `times`: its cells compare times to a target,
    censored (censored.TimeCell)."""

    name: str
    band: Band
    every: bool = True
    paper: float = math.nan
    noise: float = math.nan
    cells: int = 1
    times: bool = False

    @property
    def edge(self) -> float:
        """The effect at which the statement is false at its edge, where a false "reproduced" is
        likeliest: the band's edge nearest the paper's effect (its only finite edge for a direction)."""
        edges = [e for e in (self.band.low, self.band.high) if math.isfinite(e)]
        if math.isnan(self.paper):
            return edges[0]
        return min(edges, key=lambda e: abs(e - self.paper))


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
    # The (table, model, row label) of the runs it compares, where a rule names them: the rows
    # `run claims --until-decided` adds runs to while the cell is open (else the claim's every row).
    rows: tuple[tuple[str, str, str], ...] = ()
    look: int = 0  # the design's look the cell was judged at (0: none reached)
    looks: int = 0  # the design's looks
    share: float = 1.0  # the share of the error its look spent

    def first(self, runs: int) -> Cell:
        """The cell as its first `runs` runs make it (a look of the design)."""
        half, ids = len(self.runs) // 2, self.runs
        if len(ids) == 2 * self.count:  # two rows' ids, paired by run index
            ids = ids[:runs] + ids[half : half + runs]
        return replace(self, values=self.values[:runs], runs=ids, planned=runs)

    @property
    def defined(self) -> list[float]:
        return [v for v in self.values if not math.isnan(v)]

    @property
    def count(self) -> int:
        """The planned runs the cell holds (a row's, for two rows compared unpaired)."""
        return len(self.values)

    @property
    def unmeasured(self) -> int:
        """The cell's runs that failed before they measured anything."""
        return len(self.values) - len(self.defined)

    @property
    def center(self) -> float:
        """The cell's effect, cheaply (the mean margin): which of several supporting cells is best."""
        return math.fsum(self.defined) / len(self.defined) if self.defined else math.nan

    def interval(self, level: float = LEVEL) -> tuple[float, float, float]:
        """(estimate, low, high) at the two-sided `level`: the mean margin and its t interval (NaN
        without two values)."""
        return mean_interval(self.defined, level)

    @property
    def estimate(self) -> tuple[float, float, float]:
        """(estimate, low, high) with the two-sided 95 % interval."""
        return self.interval(LEVEL)

    def inside(self, band: Band, alpha: float) -> bool:
        """Whether the effect lies inside the band, each side a one-sided test at `alpha`."""
        return band.inside(*self.interval(1 - 2 * alpha)[1:])

    def outside(self, band: Band, alpha: float) -> bool:
        """Whether the effect lies outside the band, a one-sided test at `alpha` on the side it lies."""
        return band.outside(*self.interval(1 - 2 * alpha)[1:])

    def judge(self, band: Band, support: float = ALPHA, contradict: float = ALPHA) -> tuple[str, str]:
        """(SUPPORTS | CONTRADICTS | OPEN, why) of this cell against `band`: it supports where its
        effect lies inside the band at one-sided level `support`, contradicts where it lies outside
        at `contradict`."""
        n = self.count
        if n < self.planned:
            return OPEN, f"{n} of {self.planned} planned runs"
        if self.planned < MIN_RUNS:
            return OPEN, f"{self.planned} run(s) planned, {MIN_RUNS} needed to decide"
        if self.inside(band, support):
            if self.unmeasured:
                return OPEN, f"{self.unmeasured} planned run(s) failed before measuring"
            return SUPPORTS, ""
        if self.outside(band, contradict):
            return CONTRADICTS, ""
        return OPEN, ""

    def text(self, band: Band, level: float = LEVEL) -> str:
        """'table1 resnet18 +1.20 pts [+0.50 pts, +1.90 pts], 3 of 3 runs (1 failed)', the interval
        at `level`."""
        mean, low, high = self.interval(level)
        interval = f" [{band.show(low)}, {band.show(high)}]" if not math.isnan(low) else ""
        failed = f", {self.failed} failed, diverged or short of the target" if self.failed else ""
        note = f"; {self.note}" if self.note else ""
        runs = f"{self.count} of {self.planned} runs"
        if self.look:
            runs = f"{self.count} runs, look {self.look} of {self.looks}"
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
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = t_quantile(0.5 + level / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half


@functools.lru_cache(maxsize=256)
def t_quantile(q: float, df: int) -> float:
    """Student's t quantile (scipy.stats.t.ppf), once per level and degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(q, df))


def judge_looks(
    cell: Cell, band: Band, support: float, contradict: float, design: Design = SEQUENTIAL
) -> tuple[Cell, str, str]:
    """(the cell at the look that judged it, SUPPORTS | CONTRADICTS | OPEN, why): each look the cell
    holds the runs of, in turn, on its first runs at the look's share of `support` and `contradict`,
    until one decides (a decision stands: later runs do not move it)."""
    if cell.planned < MIN_RUNS:
        return cell, OPEN, f"{cell.planned} run(s) planned, {MIN_RUNS} needed to decide"
    reached = [n for n in design.looks if n <= cell.count]
    if not reached:
        return cell, OPEN, f"{cell.count} of the {design.looks[0]} runs of its first look"
    for look, runs in enumerate(reached, 1):
        share = design.share(look)
        at = replace(cell.first(runs), look=look, looks=len(design.looks), share=share)
        verdict, why = at.judge(band, support * share, contradict * share)
        if verdict != OPEN:
            return at, verdict, why
    if len(reached) < len(design.looks):
        more = f"next look at {design.looks[len(reached)]} runs"
    else:
        more = f"the design's last look ({design.most} runs) is reached"
    return at, OPEN, f"{why or 'the interval crosses the band'} at look {len(reached)}; {more}"


@dataclass(frozen=True)
class PartResult:
    """A part's verdict over its cells, and why, with the one-sided levels its cells were judged at
    (`support`, `contradict`: ALPHA, or ALPHA shared over a family of cells)."""

    part: Part
    verdict: str
    reason: str
    cells: tuple[Cell, ...] = field(default=())
    support: float = ALPHA
    contradict: float = ALPHA
    open: tuple[Cell, ...] = ()  # the cells no look has decided yet

    @property
    def level(self) -> float:
        """The two-sided level of support over all the looks (each look's share is the cell's)."""
        return 1 - 2 * self.support

    def level_of(self, cell: Cell) -> float:
        """The two-sided level of the interval that decided the cell's support at its look."""
        return 1 - 2 * self.support * cell.share

    @property
    def family(self) -> str:
        """How the part's cells share the error rate, as the report prints it."""
        k = len(self.cells)
        if self.part.every:
            supports = f"every cell at {self.support:.3g} (intersection-union)"
        else:
            supports = f"the best of {k} cells at {ALPHA:g}/{k} (Bonferroni)"
        contradicts = f"each cell at {self.contradict:.3g} (Bonferroni over the claim)"
        return f"supports: {supports}; contradicts: {contradicts}"


def contradiction_tests(parts: Sequence[Part], cells: Sequence[Cell]) -> int:
    """How many tests can each alone make the claim "not reproduced": every cell of a part every
    cell must support, and per "up to" part with cells one (every cell must contradict it) and,
    where its band closes above, each cell (wholly above the band)."""
    count = 0
    for part in parts:
        mine = sum(c.part == part.name for c in cells)
        count += mine if part.every else min(mine, 1) + (mine if math.isfinite(part.band.high) else 0)
    return max(count, 1)


def decide_part(
    part: Part,
    cells: Sequence[Cell],
    tests: int | None = None,
    explain: bool = True,
    design: Design = SEQUENTIAL,
) -> PartResult:
    """A part's verdict from its cells (the module docstring's rule), each judged at the looks of
    `design` (`judge_looks`); `tests`: the claim's contradiction family (`contradiction_tests`; this
    part's own where None); `explain`: say how many runs would decide each open cell (the report;
    the calibration needs only the verdict)."""
    cells = tuple(c for c in cells if c.part == part.name)
    if not cells:
        return PartResult(part, INCONCLUSIVE, f"{part.name}: no cell has runs")
    contradict = ALPHA / (tests or contradiction_tests((part,), cells))
    support = ALPHA if part.every else ALPHA / len(cells)
    judged = [judge_looks(c, part.band, support, contradict, design) for c in cells]
    looked = tuple(c for c, _, _ in judged)
    undecided = tuple(c for c, j, _ in judged if j == OPEN)

    def result(verdict: str, reason: str) -> PartResult:
        return PartResult(part, verdict, f"{part.name}: {reason}", looked, support, contradict, undecided)

    if part.every:
        against = [c for c, j, _ in judged if j == CONTRADICTS]
        if against:
            return result(
                NOT_REPRODUCED, f"outside {part.band.text()} in {', '.join(c.name for c in against)}"
            )
        if all(j == SUPPORTS for _, j, _ in judged):
            return result(REPRODUCED, f"every cell {part.band.text()}")
    else:
        # "Up to X": the best cell is about X, so where the band closes above, no cell may lie above
        # it (version 6 of the "up to" rules, docs/fidelity.md): every cell below the high edge,
        # each at ALPHA (an intersection), and any cell wholly above it decides against the claim.
        above, capped = (), True
        if math.isfinite(part.band.high):
            ceiling = replace(part.band, low=-math.inf)
            under = [judge_looks(c, ceiling, ALPHA, contradict, design) for c in cells]
            above = tuple(c for c, j, _ in under if j == CONTRADICTS)
            capped = all(j == SUPPORTS for _, j, _ in under)
        if above:
            return result(NOT_REPRODUCED, f"above {part.band.text()} in {', '.join(c.name for c in above)}")
        backing = [c for c, j, _ in judged if j == SUPPORTS]
        if backing and capped:
            best = max(backing, key=lambda c: c.center)
            return result(REPRODUCED, f"the best cell, {best.name}, {part.band.text()}, none above it")
        if all(j == CONTRADICTS for _, j, _ in judged):
            return result(NOT_REPRODUCED, f"no cell {part.band.text()}")
    last = design.share(len(design.looks))  # runs to settle: at the level of the design's last look
    open_ = "; ".join(
        f"{c.name}: {why}"
        + (settle_text(c, part.band, support * last, contradict * last) if explain and c.look else "")
        for c, j, why in judged
        if j == OPEN
    )
    return result(INCONCLUSIVE, f"open ({open_})")


MAX_RUNS = 1000  # runs per cell beyond which a plan is not worth stating


def power(effect: float, sd: float, runs: int, alpha: float) -> float:
    """The chance that a one-sided t test at `alpha` on `runs` margins shows a true distance
    `effect` (> 0) from an edge, with spread `sd`: the noncentral t (scipy.stats.nct)."""
    from scipy import stats

    df = runs - 1
    return float(stats.nct.sf(t_quantile(1 - alpha, df), df, effect * math.sqrt(runs) / sd))


def runs_to_decide(
    cell: Cell, band: Band, support: float, contradict: float, target: float = 0.8
) -> int | None:
    """Runs per cell at which the cell would decide with `target` power if its effect and spread
    were what its runs show: support where its mean lies inside the band (both edges for an
    equivalence margin), contradict where it lies outside; None without two values, or beyond
    MAX_RUNS."""
    values = cell.defined
    if len(values) < 2:
        return None
    mean, sd = math.fsum(values) / len(values), statistics.stdev(values)
    if sd == 0:
        return None
    if band.low < mean < band.high:
        edges = [(abs(mean - e), support) for e in (band.low, band.high) if math.isfinite(e)]
    else:
        edge = band.low if mean <= band.low else band.high
        edges = [(abs(mean - edge), contradict)]

    def enough(runs: int) -> bool:
        return math.prod(power(d, sd, runs, a) for d, a in edges) >= target

    if not enough(MAX_RUNS):
        return None
    low, high = MIN_RUNS - 1, MAX_RUNS  # power grows with the runs: bisect for the first enough
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def settle_text(cell: Cell, band: Band, support: float, contradict: float) -> str:
    """'; about N runs a cell would decide it (80 % power at its observed mean and spread)', or ''."""
    runs = runs_to_decide(cell, band, support, contradict)
    if runs is None:
        return (
            f"; more than {MAX_RUNS} runs a cell would be needed at its observed mean and spread"
            if len(cell.defined) > 1
            else ""
        )
    return f"; about {runs} runs a cell would decide it (80 % power at its observed mean and spread)"


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


def decide(
    parts: Sequence[Part], cells: Sequence[Cell], explain: bool = True, design: Design = SEQUENTIAL
) -> tuple[str, str, tuple[PartResult, ...]]:
    """(verdict, reason, each part's result) of a claim from its cells, at the looks of `design`."""
    tests = contradiction_tests(parts, cells)
    results = tuple(decide_part(p, cells, tests, explain, design) for p in parts)
    return combine([r.verdict for r in results]), " | ".join(r.reason for r in results), results
