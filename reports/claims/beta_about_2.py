"""000 Table 9: the backward pass takes about twice the forward pass."""

from __future__ import annotations

import math

from ._common import PAPER_000, Evidence, Measured, Need, Plan, described, no_runs, register_claim
from .stats import Cell, Part, within

ABOUT = Part(
    "β / the paper's β",
    within(math.log(0.8), math.log(1.25), "'β ≈ 2': each model's β within 25 % of the paper's "
           "(2.08 and 1.80 on an A100) either way", "x"),
    paper=0.0,
    noise=0.05,  # sd of log β between runs here (2.12-2.21 on ResNet-18)
    cells=2,
)  # fmt: skip


def paper_beta(cell: dict) -> float:
    """β = backward / forward of a Table 9 cell of the paper."""
    return cell["backward_s"][0] / cell["forward_s"][0]


@register_claim(
    id="beta-about-2",
    source="000 Table 9",
    paper_version=PAPER_000,
    statement="The backward pass takes about twice as long as the forward pass (β ≈ 2).",
    paper="A100: ResNet-18 β = 0.0102 / 0.0049 = 2.08; ResNet-50 β = 0.0299 / 0.0166 = 1.80",
    decided_by="β = backward / forward of each table9 run over the paper's β of its model: in [0.8, 1.25]",
    settle="`run table9` (3 runs per model) on the hardware to compare",
    parts=(ABOUT,),
    version="4 (2026-11-26)",
    plan=Plan((Need("table9"),)),
)
def beta_about_2(evidence: Evidence) -> Measured:
    runs = evidence.runs("table9")
    if runs.empty or "beta" not in runs:
        return no_runs("table9", "run table9")
    spec = evidence.specs["table9"]
    cells = []
    for model, group in runs.sort_values("run_index").groupby("model"):
        cell = spec.paper.get(model)
        if cell is None:  # a model the paper did not time: nothing to compare
            continue
        ratios = tuple(math.log(b / paper_beta(cell)) for b in group["beta"])
        cells.append(
            Cell(ABOUT.name, f"table9 {model}", ratios, tuple(group["run_id"]), evidence.planned_runs)
        )
    if not cells:
        return Measured(unmeasurable="no table9 run of a model the paper timed (ResNet-18, ResNet-50)")
    return Measured(tuple(cells), described(evidence, runs))
