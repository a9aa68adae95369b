"""The paper store: 000's own tables (mean ± std of 3 runs) as cells, decided by each claim's rule
(docs/claims.md, "The rules on the paper's own numbers").

Each row of a table becomes 3 runs with the table's mean and sample standard deviation (mean -
std, mean, mean + std). The paper does not say which runs of two methods shared a seed, so two
rows' runs are paired in rank order (the pairing most favourable to the paper: the seeds'
effects shared); its times all reached their targets (nothing is censored). The paper's runs came
by a fixed plan of 3, so each rule decides them as one look at the whole error (PAPER_DESIGN), not
as the first look of the sequential design our runs follow.
"""

from __future__ import annotations

import math
from dataclasses import replace

from . import CLAIMS
from ._common import Measured
from .async_more_accurate_than_lap_lpp import MORE_ACCURATE
from .bu_fastest_to_target import FASTEST
from .censored import TimeCell
from .imdb_lu_twice_as_fast import SAME, TWICE
from .lu_faster_than_lap_lpp import FASTER, UP_TO
from .lu_more_accurate_than_bu import CIFAR, IMDB
from .stats import Cell, Design, Part

# (table, model) -> (mean, std) of Async LU, Async BU, LAP-SGD, LPP-SGD: Tables 1 and 3 (time to the
# worst method's best, s), Tables 2 and 4 (best accuracy, %); Table 6 (IMDb, LU and BU).
METHODS = ("async_lu", "async_bu", "lapsgd", "lppsgd")
TIME = {
    ("table1", "resnet18"): ((223.8, 28), (173.4, 2), (706.3, 13), (461.0, 7)),
    ("table1", "resnet50"): ((737.9, 24), (700.6, 20), (999.5, 38), (863.4, 35)),
    ("table3", "resnet18"): ((226.4, 10), (155.4, 10), (667.1, 8), (672.9, 11)),
    ("table3", "resnet50"): ((622.7, 32), (641.8, 16), (1006.6, 13), (1016.0, 6)),
}
ACCURACY = {
    ("table1", "resnet18"): ((93.7, 0.28), (92.7, 0.16), (88.2, 0.43), (87.8, 0.09)),
    ("table1", "resnet50"): ((93.9, 0.10), (93.2, 0.25), (89.7, 0.27), (89.3, 0.43)),
    ("table3", "resnet18"): ((73.9, 0.38), (71.8, 0.08), (61.3, 0.23), (61.0, 0.17)),
    ("table3", "resnet50"): ((76.2, 0.57), (73.7, 0.23), (63.7, 0.33), (63.5, 0.10)),
}
IMDB_ACCURACY = dict(async_lu=(85.15, 0.15), async_bu=(85.06, 0.59))
IMDB_TIME = dict(async_lu=(49.3, 9.46), async_bu=(83.41, 12.56))
RUNS = 3
PAPER_DESIGN = Design((RUNS,))  # the paper's fixed plan: one look at its 3 runs


def three(mean: float, std: float, reverse: bool = False) -> tuple[float, ...]:
    """3 runs with this mean and sample standard deviation, in rank order (`reverse`: reversed)."""
    runs = (mean - std, mean, mean + std)
    return runs[::-1] if reverse else runs


def gap_cell(part: Part, name: str, a: tuple[float, float], b: tuple[float, float], reverse: bool) -> Cell:
    """Points of "a is more accurate than b", runs paired in rank order (`reverse`: against it)."""
    values = tuple(x - y for x, y in zip(three(*a), three(*b, reverse), strict=True))
    return Cell(part.name, name, values, planned=RUNS)


def time_cell(
    part: Part, name: str, slow: tuple[float, float], fast: tuple[float, float], reverse: bool
) -> TimeCell:
    """Times to a target of "fast is faster than slow", runs paired in rank order (`reverse`:
    against it), none censored."""
    slows, fasts = three(*slow), three(*fast, reverse)
    ratios = tuple(math.log(s / f) for s, f in zip(slows, fasts, strict=True))
    return TimeCell(
        part.name, name, ratios, planned=RUNS, slow=slows, fast=fasts,
        slow_reached=(True,) * RUNS, fast_reached=(True,) * RUNS,
    )  # fmt: skip


def paper_cells(reverse: bool = False) -> dict[str, list[Cell]]:
    """Each claim 000's Tables 1-4 and 6 bear on, with its cells from the paper's numbers; two rows'
    runs paired in rank order (`reverse`: in reverse order, the pairing least favourable)."""
    cells: dict[str, list[Cell]] = {}
    for (table, model), means in TIME.items():
        row = dict(zip(METHODS, means, strict=True))
        for other in ("async_lu", "lapsgd", "lppsgd"):
            cells.setdefault("bu-fastest-to-target", []).append(
                time_cell(FASTEST, f"{table} {model} {other}", row[other], row["async_bu"], reverse)
            )
        for base in ("lapsgd", "lppsgd"):
            for part in (FASTER, UP_TO):
                cells.setdefault("lu-faster-than-lap-lpp", []).append(
                    time_cell(
                        part, f"{table} {model} log(t_{base}/t_LU)", row[base], row["async_lu"], reverse
                    )
                )
    for (table, model), means in ACCURACY.items():
        row = dict(zip(METHODS, means, strict=True))
        for ours in ("async_lu", "async_bu"):
            for base in ("lapsgd", "lppsgd"):
                cells.setdefault("async-more-accurate-than-lap-lpp", []).append(
                    gap_cell(MORE_ACCURATE, f"{table} {model} {ours} - {base}", row[ours], row[base], reverse)
                )
        cells.setdefault("lu-more-accurate-than-bu", []).append(
            gap_cell(CIFAR, f"{table} {model}", row["async_lu"], row["async_bu"], reverse)
        )
    lu, bu = IMDB_ACCURACY["async_lu"], IMDB_ACCURACY["async_bu"]
    cells["lu-more-accurate-than-bu"].append(gap_cell(IMDB, "table6 lstm", lu, bu, reverse))
    cells["imdb-lu-twice-as-fast"] = [
        time_cell(TWICE, "table6 lstm", IMDB_TIME["async_bu"], IMDB_TIME["async_lu"], reverse),
        gap_cell(SAME, "table6 lstm", lu, bu, reverse),
    ]
    return cells


def paper_verdicts() -> dict[str, dict[str, str]]:
    """Each claim's verdict and reason on the paper store under both pairings, with its rule's version."""
    out: dict[str, dict[str, str]] = {}
    for reverse, pairing in ((False, "rank order"), (True, "reverse order")):
        for claim, cells in paper_cells(reverse).items():
            rule = CLAIMS[claim]
            rule = replace(rule, plan=replace(rule.plan, design=PAPER_DESIGN))
            verdict = rule.decide(Measured(tuple(cells)))
            out.setdefault(claim, {"version": CLAIMS[claim].version})[pairing] = (
                f"{verdict.verdict}: {verdict.reason}"
            )
    return out
