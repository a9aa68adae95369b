"""The workloads `calibrate-claims --path` simulates (docs/log/fidelity.md, "Error rates through the
whole path"): their run-to-run spreads, fitted to stored runs where there are any, the curves of
their rows (`synthetic.RowTruth`), and `PathCase`, how a claim's stores are simulated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from core.result import Hardware

from .stores import SYNTHETIC_HARDWARE, PerfTruth, RowTruth

# Epochs for a curve to rise by 1 - 1/e of its plateau: at 1.0 the last of 5 quick epochs adds 0.9
# points, under the 1 point at which the LAP/LPP claims' guard reads a baseline still improving
# ("not comparable"); at 1.5 (2.7 points) the guard held in 11 of 12 stores of those two claims.
TAU = 1.0
SECONDS = 40.0  # a quick CIFAR-10 ResNet-18 epoch on 2 cores (pd-stragglers' runs: 40-47 s)
CIFAR_BEST = 0.75  # a row's best test accuracy after its epochs at quick, before the effects


@dataclass(frozen=True)
class Spreads:
    """Run-to-run spreads of one workload: best test accuracy (`acc`, a fraction) and log seconds
    per epoch (`time`), pooled within rows, the share of their variance that two rows' runs of one
    seed share (`seed_share`, their correlation), with the store and runs they were fitted to."""

    acc: float
    time: float
    source: str
    seed_share: float = 0.0


@dataclass(frozen=True)
class Workloads:
    """The spreads of each simulated workload's rows."""

    cifar: Spreads
    imdb_lu: Spreads
    imdb_bu: Spreads
    gpt: Spreads  # `acc`: bits per byte

    def text(self) -> str:
        """One line per workload: its spreads and where they come from."""
        named = (("CIFAR-10", self.cifar), ("IMDb LU", self.imdb_lu), ("IMDb BU", self.imdb_bu))
        lines = [f"  {name}: best accuracy sd {s.acc * 100:.2f} points" for name, s in named]
        lines.append(f"  GPT: best bits per byte sd {self.gpt.acc:.3f}")
        return "\n".join(
            f"{line}, log seconds per epoch sd {s.time:.3f}, seed correlation {s.seed_share:.2f} ({s.source})"
            for line, s in zip(lines, (*(s for _, s in named), self.gpt), strict=True)
        )


# Fitted by `fit_workloads` to results/claims-stragglers.db (pd-stragglers at quick, CIFAR-10
# ResNet-18, async_lu at 4 delays, 16 runs on 2 cores, 2026-11-27), the one stored CIFAR workload
# with replicated runs; every CIFAR row takes them. IMDb: no replicated runs stored here, so 000
# Table 6's own spreads of 3 runs (LU 85.15 +/- 0.15, BU 85.06 +/- 0.59), CIFAR's time spread.
CIFAR = Spreads(acc=0.0107, time=0.022, source="fitted: pd-stragglers quick, 16 runs in 4 rows, 2026-11-27")
DEFAULT = Workloads(
    CIFAR,
    Spreads(acc=0.0015, time=CIFAR.time, source="000 Table 6's LU; time as CIFAR's"),
    Spreads(acc=0.0059, time=CIFAR.time, source="000 Table 6's BU; time as CIFAR's"),
    # No replicated GPT runs stored here: two runs of one recipe differed by 0.11 bits per byte
    # (pd-transformer-remedies, docs/performance.md), a spread of 0.11 / sqrt(2).
    Spreads(acc=0.078, time=CIFAR.time, source="assumed: one pair 0.11 apart; time as CIFAR's"),
)


def row(best: float, seconds: float, epochs: int, spreads: Spreads, tau: float = TAU) -> RowTruth:
    """A row whose runs reach `best` test accuracy on average at their last epoch (of `epochs`),
    `seconds` per epoch: the plateau that curve's last epoch reaches."""
    reach = 1 - math.exp(-epochs / tau)
    return RowTruth(
        seconds, best / reach, tau, spreads.time, spreads.acc / reach, seed_share=spreads.seed_share
    )


# Each case: the part effects (on the bands' scales, in the claim's part order) -> the rows' truths
# (keyed `perf/NAME` for a perf benchmark's results).
Truths = Callable[[tuple[float, ...], Workloads], dict[str, RowTruth | PerfTruth]]


@dataclass(frozen=True)
class PathCase:
    """How a claim's stores are simulated: its rows' truths from its parts' effects, the row (its
    truths' key) whose run diverges in the "diverged" scenario, which counts against the claim,
    with that row's epochs (it diverges at its last but one, at least its first; a measurement
    fails; "": none, perf results do not diverge), the hardware its runs name and their profile."""

    truths: Truths
    diverges: str
    epochs: int
    hardware: Hardware = SYNTHETIC_HARDWARE
    profile: str = "quick"


# The pilot's DDP GPT curve, 4.458, 4.203, 4.152 bits per byte after epochs 1-3, is 4.14 +
# 1.56 exp(-epochs / 0.62): a fall from 5.7 at epoch 0 with a time constant of 0.62 epochs.
GPT_TAU, GPT_START = 0.62, 5.7
GPUS = Hardware("cuda", "synthetic GPU", 3, 16)  # devices of their own: no 2-core artefact guard
TWO_GPUS = Hardware("cuda", "synthetic GPU", 2, 16)


def falling(
    best: float, seconds: float, epochs: int, spreads: Spreads, tau: float = GPT_TAU, start: float = GPT_START
) -> RowTruth:
    """A row whose runs reach `best` of a metric to lower (bits per byte) on average after `epochs`,
    on a curve falling from `start` with a time constant of `tau` epochs (the pilot's GPT's)."""
    left = math.exp(-epochs / tau)  # the share of the fall still to come after the last epoch
    plateau = (best - start * left) / (1 - left)
    return RowTruth(
        seconds,
        plateau,
        tau,
        spreads.time,
        spreads.acc / (1 - left),
        start=start,
        seed_share=spreads.seed_share,
    )
