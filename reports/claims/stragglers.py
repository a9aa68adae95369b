"""004: straggler delays cost PD-ASGD under 2.5 points of accuracy."""

from __future__ import annotations

from ._common import (
    FULL,
    REDUCED,
    Evidence,
    Need,
    Plan,
    Verdict,
    hardware_of,
    no_runs,
    of_settings,
    paired_verdict,
    register_claim,
    short,
)


@register_claim(
    id="004-stragglers-cost-under-2.5-points",
    source="004",
    statement=(
        "Straggler delays cost PD-ASGD under 2.5 points of accuracy, because faster devices do not wait."
    ),
    paper="004: accuracy within 2.5 points under straggler delays",
    decided_by=(
        "pd-stragglers: 2.5 - (async_lu's best accuracy without delay - with it), in points, per delay "
        "level and run index; ddp's and lapsgd's drops and time ratios shown beside"
    ),
    settle="3 runs per cell of pd-stragglers",
    # Only async_lu's drops decide; ddp's and lapsgd's are context, run at the paper profile (and
    # shown at any profile where the store has them): at smoke/quick the plan is LU's 12 runs, not 36.
    plan=Plan((Need("pd-stragglers", ("async_lu",), profiles=REDUCED), Need("pd-stragglers", profiles=FULL))),
)
def stragglers_under_2_5_points(evidence: Evidence) -> Verdict:
    per_run = evidence.per_run("pd-stragglers")
    margins, lines, ids = [], [], []
    spec = evidence.specs["pd-stragglers"]
    no_delay = of_settings(per_run, spec.reference) if not per_run.empty else per_run
    for method in ("async_lu", "ddp", "lapsgd"):
        rows = per_run[per_run["method"] == method] if not per_run.empty else per_run
        for run_index, group in rows.groupby("run_index") if not rows.empty else []:
            refs = no_delay[(no_delay["method"] == method) & (no_delay["run_index"] == run_index)]
            if refs.empty:
                continue
            ref = refs.iloc[0]
            for _, run in group[group["run_id"] != ref["run_id"]].iterrows():
                cell = spec.rows[run["row"]].name
                drop = (ref["best_acc"] - run["best_acc"]) * 100
                slower = run["tta_target_s"] / ref["tta_target_s"]
                lines.append(
                    f"{method} {cell} run {run_index}: drop {drop:+.2f} pts, time to target x{slower:.2f}"
                )
                if method == "async_lu":
                    margins.append(2.5 - drop)
                    ids += [ref["run_id"], run["run_id"]]
    if not margins:
        return no_runs("pd-stragglers with async_lu at delay 0 and another level", "run pd-stragglers")
    fewest = int(per_run[per_run["method"] == "async_lu"].groupby("row").size().min())
    verdict, reason = paired_verdict(margins, "2.5 - LU's accuracy drop (points)", runs_per_cell=fewest)
    text = f"{'; '.join(lines)}; profile {evidence.profile}; {hardware_of(per_run)}"
    return Verdict(verdict, reason, text, short(dict.fromkeys(ids)), tuple(margins))
