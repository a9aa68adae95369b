"""000 Table 6: on IMDb, Async LU reaches Async BU's accuracy about twice as fast."""

from __future__ import annotations

import math

from ._common import (
    NOT_REPRODUCED,
    PAIRED_TEST,
    REPRODUCED,
    Evidence,
    Need,
    Plan,
    Verdict,
    comparability,
    hardware_of,
    no_runs,
    paired_verdict,
    register_claim,
    short,
)

RATIO = 1.5  # "about twice as fast": at least 1.5x (the paper's own times give 1.7x)


@register_claim(
    id="imdb-lu-twice-as-fast",
    source="000 Table 6, Figure 4",
    statement="On IMDb, Async LU reaches the same accuracy as Async BU about twice as fast.",
    paper="LU 85.15 % in 49.3 s (6 epochs) vs BU 85.06 % in 83.41 s (12 epochs): 1.7x in time, 2x in epochs",
    decided_by=(
        "table6 runs paired by run index, on the table's figures: BU's / LU's mean time to its own best "
        "accuracy >= 1.5 (within 25 % of 2x) with LU faster by a one-sided paired t-test on log(t_BU/t_LU), "
        "and mean best accuracies within 1 point"
    ),
    settle="3 runs per method: `run table6 --runs 3`",
    plan=Plan((Need("table6"),)),
    paper_effect=math.log(83.41 / 49.3) - math.log(RATIO),
)
def imdb_claim(evidence: Evidence) -> Verdict:
    per_run = evidence.per_run("table6")
    if per_run.empty:
        return no_runs("table6", "run table6")
    margins, lines, ids, gaps = [], [], [], []
    lu = per_run[per_run["method"] == "async_lu"].set_index("run_index")
    bu = per_run[per_run["method"] == "async_bu"].set_index("run_index")
    for index in sorted(set(lu.index) & set(bu.index)):
        t_lu, t_bu = lu.at[index, "tta_best_s"], bu.at[index, "tta_best_s"]
        margins.append(math.log(t_bu / t_lu) - math.log(RATIO))
        gaps.append((lu.at[index, "best_acc"] - bu.at[index, "best_acc"]) * 100)
        lines.append(
            f"run {index}: LU {t_lu:.1f} s, BU {t_bu:.1f} s to their best (BU/LU {t_bu / t_lu:.2f}x), "
            f"LU-BU {gaps[-1]:+.2f} points"
        )
        ids += [lu.at[index, "run_id"], bu.at[index, "run_id"]]
    if not margins:
        return no_runs("table6 with both async_lu and async_bu", "run table6")
    # The table's figures: mean times to each method's best, mean best accuracies.
    paired = sorted(set(lu.index) & set(bu.index))
    ratio = float(bu.loc[paired, "tta_best_s"].mean() / lu.loc[paired, "tta_best_s"].mean())
    gap = sum(gaps) / len(gaps)
    faster, reason = paired_verdict([m + math.log(RATIO) for m in margins], "log(t_BU/t_LU)")
    table = f"the table's mean times give BU/LU {ratio:.2f}x and LU-BU {gap:+.2f} points"
    if faster == REPRODUCED and ratio >= RATIO and abs(gap) <= 1:
        verdict, reason = REPRODUCED, f"{table} (>= {RATIO}x, within 1 point); LU faster: {reason}"
    elif faster == REPRODUCED and abs(gap) <= 1:
        verdict, reason = NOT_REPRODUCED, f"{table}: LU faster ({reason}) but by less than {RATIO}x"
    elif faster in (REPRODUCED, NOT_REPRODUCED) and abs(gap) > 1:
        verdict, reason = NOT_REPRODUCED, f"{table}: the best accuracies differ by more than 1 point"
    elif faster == NOT_REPRODUCED:
        verdict, reason = NOT_REPRODUCED, f"{table}: LU is not faster ({reason})"
    else:
        verdict, reason = faster, f"{table}; whether LU is faster: {reason}"
    guard = comparability(per_run, ("async_lu", "async_bu"))
    if guard is not None:
        verdict, reason = guard.verdict, guard.reason
    text = f"{'; '.join(lines)}; profile {evidence.profile}; {hardware_of(per_run)}"
    return Verdict(verdict, reason, text, short(ids), tuple(margins), PAIRED_TEST)
