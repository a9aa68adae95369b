"""000 Tables 1, 3: Async LU reaches the target faster than LAP-SGD and LPP-SGD."""

from __future__ import annotations

import math
from dataclasses import replace

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

LU_LAP_LPP = ("async_lu", "lapsgd", "lppsgd")


@register_claim(
    id="lu-faster-than-lap-lpp",
    source="000 Tables 1, 3",
    statement="Async LU reaches the target faster than LAP-SGD and LPP-SGD, up to 2.97x.",
    paper="CIFAR-100 R18: LU 226.4 s vs LAP 667.1 s (2.95x), LPP 672.9 s (2.97x); CIFAR-10 R18 3.16x / 2.06x",
    decided_by=(
        "log(t_LAP / t_LU), log(t_LPP / t_LU) to the model's lowest best accuracy, paired (table1, 3); "
        "against each reading of LAP/LPP-SGD with runs (002's text, and `reading=authors_code`)"
    ),
    settle="3 runs per cell of table1 and table3",
    # At smoke and quick, CIFAR-10 ResNet-18 alone (9 runs); the paper profile runs both tables.
    plan=Plan(
        (
            Need("table1", LU_LAP_LPP, ("resnet18",), REDUCED),
            Need("table1", LU_LAP_LPP, profiles=FULL),
            Need("table3", LU_LAP_LPP, profiles=FULL),
        )
    ),
    # log(t_LAP/t_LU), log(t_LPP/t_LU) of the paper's CIFAR-10 (both ResNets) and CIFAR-100 ResNet-18.
    paper_effect=0.75,
)
def lu_faster_than_lap_lpp(evidence: Evidence) -> Verdict:
    # Against each reading of the baselines there are runs of (`run table1 --set reading=authors_code`).
    pairs = [
        (base, "async_lu", f"log(t_{base}/t_LU)") for base in evidence.rows(TTA_TABLES, ("lapsgd", "lppsgd"))
    ]
    missing = ("table1/table3 with async_lu and lapsgd/lppsgd", "run table1 (or table3)")
    verdict = comparisons(evidence, TTA_TABLES, pairs, "tta_worst_s", log_ratio, missing)
    if not verdict.values:
        return verdict
    best = math.exp(max(verdict.values))
    return replace(verdict, evidence=f"largest speed-up {best:.2f}x; {verdict.evidence}")
