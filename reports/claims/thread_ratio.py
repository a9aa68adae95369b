"""004: a 1:2 forward:backward thread ratio is the best ratio."""

from __future__ import annotations

import math

from ._common import (
    Evidence,
    Need,
    Plan,
    Verdict,
    hardware_of,
    no_runs,
    paired_verdict,
    register_claim,
    short,
)

ONE_TO_TWO = (1, 2)  # 004's (forward threads, backward threads)


@register_claim(
    id="004-thread-ratio-1-2-best",
    source="004",
    statement=(
        "A 1:2 forward:backward thread ratio matches the 2x longer backward pass and is the best ratio."
    ),
    paper="004: 1 forward and 2 backward threads raise hardware utilisation (no other ratio reported)",
    decided_by=(
        "pd-threads: log(samples/s at F=1,B=2 / the best of the other ratios), per method, model and "
        "run index"
    ),
    settle="3 runs per cell of pd-threads (F:B in 1:1, 1:2, 1:3, 2:2, 2:4)",
    plan=Plan((Need("pd-threads"),)),
)
def thread_ratio_1_2_best(evidence: Evidence) -> Verdict:
    per_run = evidence.per_run("pd-threads")
    margins, lines, ids = [], [], []
    spec = evidence.specs["pd-threads"]
    has_ratios = "forward_threads" in per_run
    groups = [
        (method, key, group)
        for method in ("async_lu", "async_bu")
        for key, group in (
            per_run[per_run["method"] == method].groupby(["model", "run_index"]) if has_ratios else []
        )
    ]
    for method, (model, run_index), group in groups:
        threads = zip(group["forward_threads"], group["backward_threads"], strict=True)
        ratios = [(int(f), int(b)) for f, b in threads]
        rates = dict(zip(ratios, group["samples_per_s"], strict=True))
        names = {ratio: spec.rows[row].name for ratio, row in zip(ratios, group["row"], strict=True)}
        others = {ratio: rate for ratio, rate in rates.items() if ratio != ONE_TO_TWO}
        if ONE_TO_TWO not in rates or not others:
            continue
        best = max(others, key=others.get)
        margins.append(math.log(rates[ONE_TO_TWO] / others[best]))
        lines.append(
            f"{method} {model} run {run_index}: 1:2 {rates[ONE_TO_TWO]:.0f}/s, "
            f"best other {names[best]} {others[best]:.0f}/s"
        )
        ids += list(group["run_id"])
    if not margins:
        return no_runs("pd-threads (the 1:2 cell and another)", "run pd-threads")
    fewest = int(per_run.groupby("label").size().min())
    verdict, reason = paired_verdict(margins, "log(rate at 1:2 / best other rate)", runs_per_cell=fewest)
    text = f"{'; '.join(lines)}; profile {evidence.profile}; {hardware_of(per_run)}"
    return Verdict(verdict, reason, text, short(ids), tuple(margins))
