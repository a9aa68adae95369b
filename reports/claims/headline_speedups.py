"""004: PD-ASGD reaches its target 2.14x faster than LPP-SGD, 1.34x faster than DDP."""

from __future__ import annotations

import math
from dataclasses import replace

from ._common import NOT_MEASURABLE, Evidence, Need, Plan, Verdict, comparisons, log_ratio, register_claim


@register_claim(
    id="004-faster-than-lppsgd-and-ddp",
    source="004",
    statement=(
        "PD-ASGD reaches its target 2.14x faster than LPP-SGD, 1.34x faster than DDP (CIFAR-100, ResNet-18)."
    ),
    paper="004: 2.14x over LPP-SGD, 1.34x over DDP",
    decided_by=(
        "pd-headline: log(t_LPP / t_LU) and log(t_DDP / t_LU) to the fixed target, paired by run index "
        "(quick is a CIFAR-10 stand-in); the ratios shown against 2.14 and 1.34"
    ),
    settle="3 runs per cell of pd-headline at the paper profile (CIFAR-100, GPUs)",
    plan=Plan((Need("pd-headline"),)),
    paper_effect=(math.log(2.14) + math.log(1.34)) / 2,
)
def faster_than_lppsgd_and_ddp(evidence: Evidence) -> Verdict:
    pairs = [("lppsgd", "async_lu", "log(t_LPP/t_LU)"), ("ddp", "async_lu", "log(t_DDP/t_LU)")]
    missing = ("pd-headline", "run pd-headline")
    verdict = comparisons(evidence, ("pd-headline",), pairs, "tta_target_s", log_ratio, missing)
    if evidence.profile != "paper" and verdict.verdict != NOT_MEASURABLE:
        verdict = replace(verdict, evidence=f"CIFAR-10 stand-in, not 004's CIFAR-100; {verdict.evidence}")
    return verdict
