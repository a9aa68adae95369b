"""`calibrate-claims`: each claim's rule on simulated evidence of known truth, its error rates.

For every claim, stores are simulated from its parts (`stats.Part`: the paper's effect on the
band's scale, one run's spread seen in real runs, the paper's number of cells): every cell at no
effect (the statement false at its edge), at the paper's effect, at half of it, at the opposite,
the paper's effect in one cell only, and the paper's effect with one run per cell diverged; with
3 and 10 runs per cell. Each goes through `Claim.decide`, the code that decides real runs, and
the share of each verdict is counted: false "reproduced" on the null, opposite and one-cell
stores, false "not reproduced" and the power on the paper's.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from ._common import CLAIMS, Claim, Measured
from .stats import NOT_REPRODUCED, REPRODUCED, Cell, Part

SCENARIOS = ("null", "paper", "half", "opposite", "one cell", "diverged")
RUNS = (3, 10)
# Acceptance (docs/fidelity.md): the largest share of false "reproduced" each false store may give.
LIMITS = {"null": 0.05, "opposite": 0.01, "one cell": 0.05}


def effect(part: Part, scenario: str, first: bool) -> float:
    """The true effect of a cell of `part` in `scenario` (`first`: the claim's first cell)."""
    null, paper = part.null, part.paper
    return {
        "null": null,
        "paper": paper,
        "half": (paper + null) / 2,
        "opposite": 2 * null - paper,
        "one cell": paper if first else null,
        "diverged": paper,
    }[scenario]


def diverged_margin(part: Part) -> float:
    """The margin a run of the claim's own method that diverged gives (it counts against the claim):
    the opposite effect, two spreads further."""
    return (
        2 * part.null - part.paper - 2 * part.noise
        if part.band.low > -math.inf
        else part.band.high + 2 * part.noise
    )


def simulate(claim: Claim, scenario: str, runs: int, rng: np.random.Generator) -> Measured:
    """One simulated store of `claim` in `scenario`: each part's cells, `runs` margins each."""
    cells, first = [], True
    for part in claim.parts:
        for k in range(part.cells):
            values = rng.normal(effect(part, scenario, first), part.noise, runs)
            failed = 0
            if scenario == "diverged":
                values[0], failed = diverged_margin(part), 1
            cells.append(
                Cell(part.name, f"cell {k}", tuple(float(v) for v in values), planned=runs, failed=failed)
            )
            first = False
    return Measured(tuple(cells))


def applies(claim: Claim, scenario: str) -> bool:
    """ "one cell" only where the claim has several cells."""
    return scenario != "one cell" or sum(p.cells for p in claim.parts) > 1


@dataclass(frozen=True)
class Rates:
    """The share of each verdict for one claim, scenario and runs per cell."""

    claim: str
    scenario: str
    runs: int
    reproduced: float
    not_reproduced: float
    inconclusive: float
    sims: int


def calibrate(sims: int = 400, seed: int = 0, claims: list[Claim] | None = None) -> list[Rates]:
    """The verdict shares of every claim in every scenario, `sims` stores each."""
    rates = []
    for claim in claims or list(CLAIMS.values()):
        index = zlib.crc32(claim.id.encode())  # a claim's stores do not move when others are added
        for scenario in SCENARIOS:
            if not applies(claim, scenario):
                continue
            for runs in RUNS:
                rng = np.random.default_rng([seed, index, SCENARIOS.index(scenario), runs])
                verdicts = [claim.decide(simulate(claim, scenario, runs, rng)).verdict for _ in range(sims)]
                share = {v: verdicts.count(v) / sims for v in (REPRODUCED, NOT_REPRODUCED)}
                rates.append(
                    Rates(
                        claim.id,
                        scenario,
                        runs,
                        share[REPRODUCED],
                        share[NOT_REPRODUCED],
                        1 - share[REPRODUCED] - share[NOT_REPRODUCED],
                        sims,
                    )  # fmt: skip
                )
    return rates


def violations(rates: list[Rates]) -> list[str]:
    """The acceptance limits a rule exceeds (false "reproduced" on false stores), one line each."""
    return [
        f"{r.claim}: {r.reproduced:.1%} 'reproduced' on {r.scenario} stores with {r.runs} runs "
        f"(limit {LIMITS[r.scenario]:.0%})"
        for r in rates
        if r.scenario in LIMITS and r.reproduced > LIMITS[r.scenario]
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
            if applies(claim, scenario):
                for runs in RUNS:
                    rng = np.random.default_rng([1234, index, SCENARIOS.index(scenario), runs])
                    stores = [simulate(claim, scenario, runs, rng) for _ in range(sims)]
                    text.append("".join(letters.get(claim.decide(s).verdict, "I") for s in stores))
        out[claim.id] = {"version": claim.version, "verdicts": " ".join(text)}
    return out
