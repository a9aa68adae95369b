"""000 Tables 1, 3: Async BU reaches the target fastest."""

from __future__ import annotations

from ._common import (
    FULL,
    REDUCED,
    TTA_TABLES,
    Evidence,
    Need,
    Plan,
    Verdict,
    comparisons,
    log_ratio,
    register_claim,
)


@register_claim(
    id="bu-fastest-to-target",
    source="000 Tables 1, 3",
    statement="Async BU reaches the target accuracy fastest of Async LU/BU, LAP-SGD and LPP-SGD.",
    paper="CIFAR-10 R18: BU 173.4 s vs LU 223.8, LPP 461.0, LAP 706.3; similar on R50 and CIFAR-100",
    decided_by=(
        "training time to the lowest best accuracy of the model's runs (the paper's rule), "
        "log(t_other / t_BU) paired by run index against each other method, table1 and table3"
    ),
    settle="3 runs per cell of table1 and table3 (`run table1 --runs 3`)",
    # At smoke and quick, CIFAR-10 ResNet-18 alone (12 runs); the paper profile runs both tables.
    plan=Plan(
        (
            Need("table1", models=("resnet18",), profiles=REDUCED),
            Need("table1", profiles=FULL),
            Need("table3", profiles=FULL),
        )
    ),
)
def bu_fastest_to_target(evidence: Evidence) -> Verdict:
    others = evidence.rows(TTA_TABLES, ("async_lu", "lapsgd", "lppsgd"))
    pairs = [(other, "async_bu", f"log(t_{other}/t_BU)") for other in others]
    return comparisons(evidence, TTA_TABLES, pairs, "tta_worst_s", log_ratio, ("table1/table3", "run table1"))
