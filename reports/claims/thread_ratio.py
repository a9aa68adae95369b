"""004: a 1:2 forward:backward thread ratio raises utilisation over 1:1."""

from __future__ import annotations

import math

from ._common import (
    PAPER_004,
    Evidence,
    Measured,
    Need,
    Plan,
    described,
    log_ratio,
    no_runs,
    paired_cells,
    register_claim,
)
from .stats import Part, above

ONE_TO_ONE = {"forward_threads": 1, "backward_threads": 1}
ONE_TO_TWO = {"forward_threads": 1, "backward_threads": 2}
RAISES = Part(
    "samples/s at 1:2 / at 1:1",
    above(math.log(1.05), "'raises utilisation': at least 5 % more samples/s, below which two runs' "
          "throughput differ by machine noise", "x"),
    paper=math.log(1.3),  # none stated: the calibration's 'paper' store assumes 1.3x (β ≈ 2: up to 1.5x)
    noise=0.05,
    cells=2,
)  # fmt: skip


@register_claim(
    id="004-thread-ratio-1-2-best",
    source="004",
    paper_version=PAPER_004,
    statement="A 1:2 forward:backward thread ratio, matching the 2x longer backward pass, beats 1:1.",
    paper="004: 1 forward and 2 backward threads raise hardware utilisation (no other ratio reported)",
    decided_by="pd-threads: samples/s at F=1,B=2 over F=1,B=1, per method and model, paired by run index",
    settle="3 runs per cell of pd-threads' 1:1 and 1:2 rows",
    parts=(RAISES,),
    version="4 (2026-11-26)",
    plan=Plan((Need("pd-threads"),)),
)
def thread_ratio_1_2(evidence: Evidence) -> Measured:
    per_run = evidence.per_run("pd-threads")
    if per_run.empty or "forward_threads" not in per_run:
        return no_runs("pd-threads (the 1:1 and 1:2 cells)", "run pd-threads")
    cells = [
        cell
        for method in ("async_lu", "async_bu")
        for cell in paired_cells(
            evidence,
            RAISES,
            ("pd-threads",),
            {"method": method, **ONE_TO_TWO},
            {"method": method, **ONE_TO_ONE},
            "samples_per_s",
            log_ratio,
            method,
        )  # fmt: skip
    ]
    if not cells:
        return no_runs("pd-threads (the 1:1 and 1:2 cells)", "run pd-threads")
    return Measured(tuple(cells), described(evidence, per_run))
