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
    paper=(
        "§3.4: LU's expected staleness is below BU's; BU's delay τ = βT(M-1)/2 from a gradient's "
        "computation to its update grows with the number of layers M"
    ),
    decided_by=(
        "the runs' last epoch: BU - LU `staleness_mean` (updates a tensor received since the forward read "
        "it) paired by run index (table1, table3, table6), and BU's `update_delay_s_mean` (§3.4's τ, "
        "seconds from each gradient to its update) ResNet-50 - ResNet-18 paired by run index (table1, table3)"
    ),
    settle="3 runs per cell of table1 or table3 (LU and BU on ResNet-18, BU on ResNet-50)",
    # At smoke and quick: LU and BU on CIFAR-10 ResNet-18 (below), and BU on ResNet-50 (depth).
    plan=Plan(
        (
            Need("table1", LU_BU, ("resnet18",), REDUCED),
            Need("table1", ("async_bu",), ("resnet50",), REDUCED),
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
        bu = per_run[(per_run["method"] == "async_bu") & per_run["update_delay_s"].notna()]
        r18 = bu[bu["model"] == "resnet18"][["table", "run_index", "update_delay_s", "run_id"]]
        r50 = bu[bu["model"] == "resnet50"][["table", "run_index", "update_delay_s", "run_id"]]
        joined = r50.merge(r18, on=["table", "run_index"], suffixes=("_50", "_18"))
        if not joined.empty:
            margins = list(joined["update_delay_s_50"] - joined["update_delay_s_18"])
            verdict, reason = paired_verdict(margins, "BU's update delay, ResNet-50 - ResNet-18")
            delays = zip(joined["update_delay_s_50"], joined["update_delay_s_18"], strict=True)
            cells = ", ".join(
                f"{t} run {i} {d50 * 1e3:.1f} - {d18 * 1e3:.1f} ms"
                for t, i, (d50, d18) in zip(joined["table"], joined["run_index"], delays, strict=True)
            )
            deeper = Verdict(
                verdict,
                reason,
                f"BU's update delay (τ) R50 - R18: {cells}",
                short([*joined["run_id_50"], *joined["run_id_18"]]),
            )  # no values: the claim's effect stays BU - LU staleness (updates), not mixed with seconds
    parts = [p for p in (below, deeper) if p is not None]
    if not parts:
        return no_runs("table1/table3/table6 with async runs", "run fig3 (both ResNets)")
    if deeper is None:
        parts.append(
            Verdict(
                INCONCLUSIVE,
                "no BU runs of both ResNets that logged `update_delay_s_mean` (§3.4's τ; runs before "
                "2026-11-24 did not) to compare depths: BU on ResNet-50 and ResNet-18 in a new store",
            )
        )
    return merge(evidence, parts, hardware_of(gather(evidence, ACCURACY_TABLES)))
