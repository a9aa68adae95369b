"""Beyond the papers (pd-transformer): on a Transformer, LU is less stale than BU, and LU's staleness
grows with a block's depth (its distance from the output, where every backward pass starts)."""

from __future__ import annotations

from ..kinds.language_model import depth_slope, staleness_per_block
from ..kinds.staleness import staleness_per_tensor
from ._common import (
    INCONCLUSIVE,
    PAIRED_TEST,
    Evidence,
    Need,
    Plan,
    Verdict,
    compare,
    difference,
    gather,
    hardware_of,
    merge,
    no_runs,
    paired_verdict,
    register_claim,
    short,
)

TABLES = ("pd-transformer",)


@register_claim(
    id="gpt-lu-staleness-below-bu-grows-with-depth",
    source="beyond the papers: the suite's pd-transformer (000 §3.4's staleness claim, on a GPT)",
    statement=(
        "Beyond the papers: on a byte-level GPT, layer-wise updates are less stale than block updates, "
        "and a block's staleness under LU grows with its distance from the output."
    ),
    paper="none for Transformers; 000 §3.4: LU below BU, τ_m growing with the layers a pass crosses",
    decided_by=(
        "pd-transformer's last-epoch staleness: BU - LU mean staleness paired by run index, and per LU run "
        "the least-squares slope of block staleness against blocks from the output (> 0)"
    ),
    settle="3 runs per cell: `run pd-transformer --runs 3`",
    plan=Plan((Need("pd-transformer", ("async_lu", "async_bu")),)),
)
def gpt_lu_staleness(evidence: Evidence) -> Verdict:
    below = compare(evidence, TABLES, "async_bu", "async_lu", "staleness", difference, "BU - LU staleness")
    per_run = gather(evidence, TABLES)
    deeper = None
    if not per_run.empty:
        lu = per_run[per_run["method"] == "async_lu"]
        slopes = (
            depth_slope(staleness_per_block(staleness_per_tensor(evidence.uri, lu))) if not lu.empty else None
        )
        if slopes is not None and not slopes.empty:
            margins = list(slopes["depth_slope"])
            verdict, reason = paired_verdict(margins, "LU staleness slope per block from the output")
            cells = ", ".join(f"run {i} {m:+.3g}" for i, m in zip(slopes["run_index"], margins, strict=True))
            deeper = Verdict(
                verdict, reason, f"LU staleness per block from the output (slope): {cells}",
                short(lu["run_id"]), tuple(margins), PAIRED_TEST.replace("paired", "one-sample"),
            )  # fmt: skip
    parts = [p for p in (below, deeper) if p is not None]
    if not parts:
        return no_runs("pd-transformer with async runs", "run pd-transformer")
    if deeper is None:
        parts.append(Verdict(INCONCLUSIVE, "no LU run with the per-tensor staleness table (staleness.json)"))
    return merge(evidence, parts, hardware_of(per_run))
