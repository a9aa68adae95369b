"""`calibrate-claims`: each claim's rule on simulated evidence of known truth, its error rates.

For every claim, stores are simulated from its parts (`stats.Part`: the paper's effect on the
band's scale, one run's spread seen in real runs, the paper's number of cells), with 3, 5 and 10
runs per cell: the claim's sequential design (stats.Design) stopped at its first, second and last
look, every look the store reaches judged at its share of the error. The false stores put one
part at a time where it is false, the others at the
paper's effect (where a part is false alone, its claim is likeliest to read "reproduced"), and
the rate kept is the worst part's: every cell at the band's edge ("edge": the statement false by
the least), at the opposite effect (mirrored about that edge), or the paper's effect in one cell
only with the others at the edge, or (parts of times to a target) at the edge with the slower
row's runs past a training budget censored at it, which the log-rank path decides. The true stores
put every part at the paper's effect (the power), halfway between the edge and it, at it with one
run per cell diverged (a time: one run of the faster row censored at half its time), or with the
slower row's runs past a budget censored. Each store goes through
`Claim.decide`, the code that decides real runs, and the share of each verdict is counted.
"""

from __future__ import annotations

import math
import os
import statistics
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context

import numpy as np

from ._common import CLAIMS, Claim, Evidence, Measured
from .censored import TimeCell
from .stats import NOT_REPRODUCED, REPRODUCED, Cell, Part

SCENARIOS = ("edge", "paper", "half", "opposite", "one cell", "diverged", "censored", "edge censored")
FALSE = ("edge", "opposite", "one cell", "edge censored")  # a part false, one at a time
RUNS = (3, 5, 10)
# Acceptance (docs/fidelity.md): the largest share of false "reproduced" each false store may give.
LIMITS = {"edge": 0.05, "opposite": 0.01, "one cell": 0.05, "edge censored": 0.05}


def effect(part: Part, scenario: str, first: bool, false: bool) -> float:
    """The true effect of a cell of `part` in `scenario` (`first`: the part's first cell; `false`:
    the part the scenario makes false; the others stay at the paper's effect)."""
    edge, paper = part.edge, part.paper
    if scenario in FALSE and not false:
        return paper
    return {
        "edge": edge,
        "paper": paper,
        "half": (paper + edge) / 2,
        "opposite": 2 * edge - paper,
        "one cell": paper if first else edge,
        "diverged": paper,
        "censored": paper,
        "edge censored": edge,
    }[scenario]


def diverged_margin(part: Part) -> float:
    """The margin a run of the claim's own method that diverged gives (it counts against the claim):
    the opposite effect, two spreads further from the paper's."""
    opposite = 2 * part.edge - part.paper
    return opposite + math.copysign(2 * part.noise, opposite - part.paper)


def time_cell(
    part: Part, name: str, scenario: str, mean: float, runs: int, rng: np.random.Generator, planned: int
) -> Cell:
    """A cell of times to a target: the slow row's log times `mean` above the fast row's, each run's
    spread part.noise / sqrt(2) (noise is a pair's); "diverged": one fast run stopped at half its
    time short of the target, "censored", "edge censored": the slow runs past a budget stopped at it."""
    spread = part.noise / math.sqrt(2)
    fast = np.exp(rng.normal(0.0, spread, runs)) * 100.0
    slow = np.exp(rng.normal(mean, spread, runs)) * 100.0
    fast_reached, slow_reached = [True] * runs, [True] * runs
    if scenario == "diverged":
        fast[0], fast_reached[0] = fast[0] / 2, False
    if scenario in ("censored", "edge censored"):
        # A training budget that about a fifth of the slow row's runs outlast: they stop at it short
        # of the target (censored at the budget, which does not depend on their own times).
        budget = math.exp(mean + 0.85 * spread) * 100.0
        slow_reached = [bool(t <= budget) for t in slow]
        slow = np.minimum(slow, budget)
    failed = runs * 2 - sum(fast_reached) - sum(slow_reached)
    ratios = tuple(float(v) for v in np.log(slow / fast))
    return TimeCell(
        part.name, name, ratios, planned=planned, failed=failed, slow=tuple(map(float, slow)),
        fast=tuple(map(float, fast)), slow_reached=tuple(slow_reached), fast_reached=tuple(fast_reached),
    )  # fmt: skip


def simulate(claim: Claim, scenario: str, runs: int, rng: np.random.Generator, false: int = 0) -> Measured:
    """One simulated store of `claim` in `scenario`: each part's cells, `runs` margins (or two rows'
    times) each; `false`: the index of the part a false scenario makes false."""
    cells, planned = [], claim.plan.design.looks[0]
    for index, part in enumerate(claim.parts):
        for k in range(part.cells):
            mean = effect(part, scenario, k == 0, index == false)
            if part.times:
                cells.append(time_cell(part, f"cell {k}", scenario, mean, runs, rng, planned))
                continue
            values = rng.normal(mean, part.noise, runs)
            failed = 0
            if scenario == "diverged":
                values[0], failed = diverged_margin(part), 1
            cells.append(
                Cell(part.name, f"cell {k}", tuple(float(v) for v in values), planned=planned, failed=failed)
            )
    return Measured(tuple(cells))


def false_parts(claim: Claim, scenario: str) -> list[int]:
    """The parts a scenario makes false in turn: every part (none for a true scenario: [0], which
    leaves them all true); "one cell" only the parts every cell of which must hold, with several cells."""
    if scenario not in FALSE:
        return [0]
    if scenario == "one cell":
        return [i for i, p in enumerate(claim.parts) if p.every and p.cells > 1]
    if scenario == "edge censored":  # the log-rank path: parts of times only
        return [i for i, p in enumerate(claim.parts) if p.times]
    return list(range(len(claim.parts)))


@dataclass(frozen=True)
class Rates:
    """The share of each verdict for one claim, scenario and runs per cell; `changed` (stores
    judged on their first 3, 5 and 10 runs, `calibrate-claims --path`): the share whose verdict at
    these runs differs from one an earlier look decided, which a sequential design forbids."""

    claim: str
    scenario: str
    runs: int
    reproduced: float
    not_reproduced: float
    inconclusive: float
    sims: int
    changed: float = 0.0


def calibrate(
    sims: int = 400, seed: int = 0, claims: list[Claim] | None = None, workers: int = 1
) -> list[Rates]:
    """The verdict shares of every claim in every scenario, `sims` stores each (a false scenario:
    the worst of its parts, each made false in turn), a claim's scenario a task over `workers`
    processes (1: in this one; 0: one per core). Each draws from its own seeds: the rates do not
    depend on the workers."""
    tasks = [(c, scenario, sims, seed) for c in claims or list(CLAIMS.values()) for scenario in SCENARIOS]
    if workers == 1:
        return [rate for task in tasks for rate in calibrate_scenario(task)]
    with ProcessPoolExecutor(workers or os.cpu_count(), mp_context=get_context("spawn")) as pool:
        return [rate for rates in pool.map(calibrate_scenario, tasks) for rate in rates]


def calibrate_scenario(task: tuple[Claim, str, int, int]) -> list[Rates]:
    """One claim's verdict shares in one scenario at each runs per cell (`calibrate`)."""
    claim, scenario, sims, seed = task
    rates = []
    index = zlib.crc32(claim.id.encode())  # a claim's stores do not move when others are added
    for runs in RUNS:
        worst = None
        for false in false_parts(claim, scenario):
            rng = np.random.default_rng([seed, index, SCENARIOS.index(scenario), runs, false])
            verdicts = [
                claim.decide(simulate(claim, scenario, runs, rng, false), explain=False).verdict
                for _ in range(sims)
            ]
            rate = shares(claim.id, scenario, runs, verdicts)
            worst = rate if worst is None or rate.reproduced > worst.reproduced else worst
        if worst is not None:
            rates.append(worst)
    return rates


def shares(claim: str, scenario: str, runs: int, verdicts: list[str]) -> Rates:
    """The share of each verdict among `verdicts`."""
    n = len(verdicts)
    reproduced, not_reproduced = verdicts.count(REPRODUCED) / n, verdicts.count(NOT_REPRODUCED) / n
    return Rates(claim, scenario, runs, reproduced, not_reproduced, 1 - reproduced - not_reproduced, n)


@dataclass(frozen=True)
class Spread:
    """One part's spread of a margin between runs, fitted from a store's cells: the pooled sample
    standard deviation over its cells (each cell's runs about its own mean), from `values` margins
    in `cells` cells, beside the spread the part assumes."""

    claim: str
    part: str
    fitted: float
    assumed: float
    cells: int
    values: int


def fit_spreads(evidence: Evidence, claims: list[Claim] | None = None) -> list[Spread]:
    """Each part's pooled spread of margins in the store's cells (`Evidence`: its runs, read as the
    claims read them), where some cell holds two margins or more."""
    spreads = []
    for claim in claims or list(CLAIMS.values()):
        measured = claim.rule(evidence.planned(claim))
        for part in claim.parts:
            groups = [c.defined for c in measured.cells if c.part == part.name and len(c.defined) > 1]
            if groups:
                fitted = pooled_sd(groups)
                spreads.append(
                    Spread(claim.id, part.name, fitted, part.noise, len(groups), sum(map(len, groups)))
                )
    return spreads


def pooled_sd(groups: list) -> float:
    """The pooled sample standard deviation of groups of two values or more (each about its own mean)."""
    dof = sum(len(g) - 1 for g in groups)
    return math.sqrt(sum(statistics.variance(g) * (len(g) - 1) for g in groups) / dof)


def with_spreads(claims: list[Claim], spreads: list[Spread]) -> list[Claim]:
    """The claims with each fitted part's `noise` replaced by its fitted spread (for `calibrate`)."""
    fitted = {(s.claim, s.part): s.fitted for s in spreads}
    return [
        replace(c, parts=tuple(replace(p, noise=fitted.get((c.id, p.name), p.noise)) for p in c.parts))
        for c in claims
    ]


def violations(rates: list[Rates], by_chance: bool = False) -> list[str]:
    """The acceptance limits a rule exceeds (false "reproduced" on false stores), one line each;
    `by_chance`: allow what a rate estimated from few stores may add by chance (two standard errors
    of the limit over the rate's stores)."""

    def slack(r: Rates) -> float:
        limit = LIMITS[r.scenario]
        return 2 * math.sqrt(limit * (1 - limit) / r.sims) if by_chance else 0.0

    return [
        f"{r.claim}: {r.reproduced:.1%} 'reproduced' on {r.scenario} stores with {r.runs} runs "
        f"(limit {LIMITS[r.scenario]:.0%})"
        for r in rates
        if r.scenario in LIMITS and r.reproduced > LIMITS[r.scenario] + slack(r)
    ] + [
        f"{r.claim}: {r.changed:.1%} of {r.scenario} stores changed a decided verdict at {r.runs} runs"
        for r in rates
        if r.changed
    ]


def pins(sims: int = 4) -> dict[str, dict[str, str]]:
    """Each rule's verdicts on fixed simulated evidence ('R', 'N', 'I' per store), with its version:
    tests/claim_rules.json holds them (`calibrate-claims --pins`), so a change of a rule's logic
    fails until its version changes."""
    letters = {REPRODUCED: "R", NOT_REPRODUCED: "N"}
    out = {}
    for claim in CLAIMS.values():
        index, text = zlib.crc32(claim.id.encode()), []
        for scenario in SCENARIOS:
            for false in false_parts(claim, scenario):
                for runs in RUNS:
                    rng = np.random.default_rng([1234, index, SCENARIOS.index(scenario), runs, false])
                    stores = [simulate(claim, scenario, runs, rng, false) for _ in range(sims)]
                    text.append(
                        "".join(letters.get(claim.decide(s, explain=False).verdict, "I") for s in stores)
                    )
        out[claim.id] = {"version": claim.version, "verdicts": " ".join(text)}
    return out
