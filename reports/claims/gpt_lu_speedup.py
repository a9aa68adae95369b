"""Beyond the papers (pd-transformer): Async LU's speed-up over bp on a Transformer, against the bound
min(1 + β, cores) with the GPT's own β."""

from __future__ import annotations

import math

from ._common import (
    EXTENSION,
    Evidence,
    Measured,
    Need,
    Plan,
    cores,
    described,
    gather,
    gpus,
    no_runs,
    paired_cells,
    register_claim,
)
from .stats import Part, within

TABLES = ("pd-transformer",)
SHARE, CEILING = 0.8, 1.1  # as speedup-approaches-1-plus-beta holds the paper's models
REACHES = Part(
    "tokens/s LU / bp over min(1 + β_GPT, cores)",
    within(
        SHARE,
        CEILING,
        "the share of the bound the paper's models are held to, and no further past it "
        "(speedup-approaches-1-plus-beta)",
    ),
    paper=0.9,  # no paper: the calibration's 'true' store assumes 90 % of the bound
    noise=0.05,
)


def gpt_beta(evidence: Evidence) -> float:
    """The GPT's own β: the mean over the planned runs of pd-transformer-beta (NaN where none)."""
    runs = evidence.runs("pd-transformer-beta")
    if runs.empty or "metrics.beta" not in runs:
        return math.nan
    return float(runs["metrics.beta"].astype(float).mean())


@register_claim(
    id="gpt-lu-speedup",
    source="beyond the papers: the suite's pd-transformer (000 §3.3's speed-up bound, on a GPT)",
    paper_version=EXTENSION,
    statement=(
        f"Beyond the papers: on a byte-level GPT, Async LU's tokens/s over bp's reaches {SHARE:.0%} of the "
        "bound min(1 + β, cores), β the GPT's own."
    ),
    paper="none for Transformers; 000 §3.3: the speed-up approaches 1 + β",
    decided_by=(
        "pd-transformer: async_lu / bp tokens/s (mean over epochs) paired by run index, over "
        "min(1 + β, cores) with the GPT's own β (pd-transformer-beta: Table 9's timing of that GPT); on "
        "fewer cores than 1 + β reaching it is not comparable"
    ),
    settle="3 runs per cell: `run pd-transformer --runs 3` and `run pd-transformer-beta`",
    parts=(REACHES,),
    version="4 (2026-11-26)",
    plan=Plan((Need("pd-transformer", ("bp", "async_lu")), Need("pd-transformer-beta"))),
)
def gpt_lu_speedup(evidence: Evidence) -> Measured:
    per_run = gather(evidence, TABLES)
    if per_run.empty:
        return no_runs("pd-transformer with async_lu and bp", "run pd-transformer")
    beta = gpt_beta(evidence)
    if math.isnan(beta):
        return Measured(
            unmeasurable="needs the GPT's own β (`run pd-transformer-beta`): a ResNet's β says nothing of a "
            "Transformer's"
        )
    host_cores = cores(per_run)
    bound = 1 + beta if gpus(per_run) or host_cores is None else min(1 + beta, float(host_cores))
    cells = paired_cells(
        evidence, REACHES, TABLES, "async_lu", "bp", "samples_per_s", lambda a, b: a / b / bound
    )
    guard = ""
    if bound < 1 + beta - 1e-9:
        guard = (
            f"{host_cores} cores, fewer than 1 + β = {1 + beta:.2f}: reaching min(1 + β, cores) says "
            "nothing of 1 + β"
        )
    return Measured(
        tuple(cells), described(evidence, per_run, f"bound {bound:.2f} (β {beta:.2f})"), guard=guard
    )
