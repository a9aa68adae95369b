"""004: PD-ASGD's MFU is above DDP's."""

from __future__ import annotations

from dataclasses import replace

from ._common import (
    NOT_COMPARABLE,
    Evidence,
    Need,
    Plan,
    Verdict,
    compare,
    difference,
    gather,
    gpus,
    hardware_of,
    merge,
    no_runs,
    register_claim,
)


@register_claim(
    id="004-mfu-above-ddp",
    source="004",
    statement="PD-ASGD's model FLOPs utilisation is above DDP's.",
    paper="004: MFU 53.8 % (PD-ASGD) vs 35.1 % (DDP), ResNet-18",
    decided_by=(
        "MFU (mean over epochs) of async_lu - ddp, paired by run index: pd-headline, and pd-stragglers "
        "without delay"
    ),
    settle="3 runs per cell of pd-headline (paper profile on GPUs)",
    plan=Plan((Need("pd-headline", ("async_lu", "ddp")),)),
    needs_hardware="a GPU (on a CPU the threads share the cores MFU is measured against)",
    needs_gpus=1,
)
def mfu_above_ddp(evidence: Evidence) -> Verdict:
    parts = [
        compare(evidence, ("pd-headline",), "async_lu", "ddp", "mfu", difference, "MFU LU - DDP"),
        compare(
            evidence,
            ("pd-stragglers",),
            "async_lu",
            "ddp",
            "mfu",
            difference,
            "MFU LU - DDP, no delay",
            where=evidence.specs["pd-stragglers"].reference,
        ),
    ]
    parts = [p for p in parts if p is not None]
    if not parts:
        return no_runs("pd-headline or pd-stragglers with async_lu and ddp", "run pd-headline")
    hardware = hardware_of(gather(evidence, ("pd-headline", "pd-stragglers")))
    merged = merge(evidence, parts, hardware)
    if gpus(hardware) == 0:  # the guard: MFU on a CPU measures core sharing, not 004's GPU utilisation
        reason = (
            "on a CPU the async threads and DDP's processes share the cores whose peak MFU divides by; "
            "004 measured GPUs"
        )
        return replace(merged, verdict=NOT_COMPARABLE, reason=reason)
    return merged
