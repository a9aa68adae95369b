"""000 Table 6: on IMDb, Async LU reaches Async BU's accuracy about twice as fast."""

from __future__ import annotations

import math

from ..runs import time_to_target
from ._common import (
    NOT_REPRODUCED,
    REPRODUCED,
    Evidence,
    Verdict,
    hardware_of,
    no_runs,
    paired_verdict,
    register_claim,
    short,
)


@register_claim(
    id="imdb-lu-twice-as-fast",
    source="000 Table 6, Figure 4",
    statement="On IMDb, Async LU reaches the same accuracy as Async BU about twice as fast.",
    paper="LU 85.15 % in 49.3 s (6 epochs) vs BU 85.06 % in 83.41 s (12 epochs): 1.7x in time, 2x in epochs",
    decided_by=(
        "table6 runs paired by run index: best accuracies within 1 point, and BU's / LU's time to the lower "
        "of the two best accuracies >= 1.6 (log ratio tested against log 1.6)"
    ),
    settle="3 runs per method: `run table6 --runs 3`",
)
def imdb_claim(evidence: Evidence) -> Verdict:
    per_run = evidence.per_run("table6")
    if per_run.empty:
        return no_runs("table6", "run table6")
    margins, lines, ids, gaps = [], [], [], []
    lu = per_run[per_run["method"] == "async_lu"].set_index("run_index")
    bu = per_run[per_run["method"] == "async_bu"].set_index("run_index")
    for index in sorted(set(lu.index) & set(bu.index)):
        target = min(lu.at[index, "best_acc"], bu.at[index, "best_acc"])
        t_lu = time_to_target(lu.at[index, "_curve"], target)[0]
        t_bu = time_to_target(bu.at[index, "_curve"], target)[0]
        margins.append(math.log(t_bu / t_lu) - math.log(1.6))
        gaps.append((lu.at[index, "best_acc"] - bu.at[index, "best_acc"]) * 100)
        lines.append(f"run {index}: BU/LU {t_bu / t_lu:.2f}x to {target:.3f}, LU-BU {gaps[-1]:+.2f} points")
        ids += [lu.at[index, "run_id"], bu.at[index, "run_id"]]
    if not margins:
        return no_runs("table6 with both async_lu and async_bu", "run table6")
    verdict, reason = paired_verdict(margins, "log(t_BU/t_LU) - log 1.6")
    if any(abs(g) > 1 for g in gaps) and verdict == REPRODUCED:
        verdict, reason = NOT_REPRODUCED, f"{reason}; but the accuracies differ by more than 1 point"
    return Verdict(
        verdict, reason, f"{'; '.join(lines)}; profile {evidence.profile}; {hardware_of(per_run)}", short(ids)
    )
