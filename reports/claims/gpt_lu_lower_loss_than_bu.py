"""Beyond the papers (pd-transformer): on a Transformer, layer-wise updates reach a lower loss than
block updates."""

from __future__ import annotations

from ._common import Evidence, Need, Plan, Verdict, comparisons, difference, register_claim

TABLES = ("pd-transformer",)


@register_claim(
    id="gpt-lu-lower-loss-than-bu",
    source="beyond the papers: the suite's pd-transformer (000's LU vs BU claim, on a GPT)",
    statement=(
        "Beyond the papers: on a byte-level GPT, Async LU reaches a lower held-out loss (bits per byte) "
        "than Async BU."
    ),
    paper="none: no paper trains a Transformer with PD-ASGD (000 shows LU above BU on ResNets and an LSTM)",
    decided_by="BU minus LU best held-out bits per byte, paired by run index, in the runs of pd-transformer",
    settle="3 runs per cell: `run pd-transformer --runs 3`",
    plan=Plan((Need("pd-transformer", ("async_lu", "async_bu")),)),
)
def gpt_lu_lower_loss(evidence: Evidence) -> Verdict:
    pairs = [("async_bu", "async_lu", "BU - LU best bits per byte")]
    missing = ("pd-transformer with both async_lu and async_bu", "run pd-transformer")
    return comparisons(evidence, TABLES, pairs, "best", difference, missing)
