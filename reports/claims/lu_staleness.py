"""000 §3.4: layer-wise updates are less stale than block updates; staleness grows with depth."""

from __future__ import annotations

from ._common import (
    ACCURACY_TABLES,
    FULL,
    INCONCLUSIVE,
    REDUCED,
    TTA_TABLES,
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

LU_BU = ("async_lu", "async_bu")


@register_claim(
    id="lu-staleness-below-bu-grows-with-depth",
    source="000 §3.4",
    statement="Layer-wise updates are less stale than block updates; staleness grows with the model's depth.",
    paper="§3.4: LU's expected staleness is below BU's; τ = βT(M-1)/2 grows with the number of layers M",
    decided_by=(
        "the runs' last-epoch `staleness_mean`: BU - LU paired by run index (table1, table3, table6), and LU "
        "ResNet-50 - ResNet-18 paired by run index (table1, table3)"
    ),
    settle="3 runs per cell of table1 or table3 (both ResNets)",
    # At smoke and quick: LU and BU on CIFAR-10 ResNet-18 (below), and LU on ResNet-50 (depth).
    plan=Plan(
        (
            Need("table1", LU_BU, ("resnet18",), REDUCED),
            Need("table1", ("async_lu",), ("resnet50",), REDUCED),
            Need("table1", LU_BU, profiles=FULL),
            Need("table3", LU_BU, profiles=FULL),
            Need("table6", LU_BU, profiles=FULL),
        )
    ),
)
def lu_staleness(evidence: Evidence) -> Verdict:
    below = compare(
        evidence,
        ACCURACY_TABLES,
        "async_bu",
        "async_lu",
        "staleness",
        difference,
        "BU - LU staleness",
    )
    per_run = gather(evidence, TTA_TABLES)
    deeper = None
    if not per_run.empty:
        lu = per_run[per_run["method"] == "async_lu"]
        r18 = lu[lu["model"] == "resnet18"][["table", "run_index", "staleness", "run_id"]]
        r50 = lu[lu["model"] == "resnet50"][["table", "run_index", "staleness", "run_id"]]
        joined = r50.merge(r18, on=["table", "run_index"], suffixes=("_50", "_18"))
        if not joined.empty:
            margins = list(joined["staleness_50"] - joined["staleness_18"])
            verdict, reason = paired_verdict(margins, "LU ResNet-50 - ResNet-18 staleness")
            cells = ", ".join(
                f"{t} run {i} {m:+.3g}"
                for t, i, m in zip(joined["table"], joined["run_index"], margins, strict=True)
            )
            deeper = Verdict(
                verdict,
                reason,
                f"LU R50 - R18 staleness: {cells}",
                short([*joined["run_id_50"], *joined["run_id_18"]]),
            )
    parts = [p for p in (below, deeper) if p is not None]
    if not parts:
        return no_runs("table1/table3/table6 with async runs", "run fig3 (both ResNets)")
    if deeper is None:
        parts.append(Verdict(INCONCLUSIVE, "no LU runs of both ResNets to compare depths"))
    return merge(evidence, parts, hardware_of(gather(evidence, ACCURACY_TABLES)))
