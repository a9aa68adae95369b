"""000 §3.3: Async LU's speed-up over backprop approaches 1 + β."""

from __future__ import annotations

import math

from ._common import (
    NOT_COMPARABLE,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    Evidence,
    Plan,
    Verdict,
    register_claim,
    short,
)


@register_claim(
    id="speedup-approaches-1-plus-beta",
    source="000 §3.3",
    statement="With enough backward threads, Async LU's speed-up over backprop approaches 1 + β.",
    paper="§3.3: the forward/backward split bounds the speed-up by 1 + β (≈ 3 for β ≈ 2)",
    decided_by=(
        "`perf async` logged to MLflow: async_lu / bp samples/s with one intra-op thread each, over the "
        "bound min(1 + β, cores); reproduced at >= 80 % of the bound"
    ),
    settle="`python -m benchmarks perf async` (on a machine with at least 1 + β cores or a GPU)",
    plan=Plan(perf=("async",)),
)
def speedup_approaches_bound(evidence: Evidence) -> Verdict:
    runs = evidence.perf("async")
    if runs.empty:
        return Verdict(
            NOT_MEASURABLE, "no `perf async` result in the store; run `python -m benchmarks perf async`"
        )
    newest = runs.iloc[0]
    ratio, bound, beta = (float(newest[f"metrics.{k}"]) for k in ("ratio_1thread", "bound", "beta"))
    cores = float(newest.get("metrics.cores", math.nan))
    share = ratio / bound
    text = f"speed-up {ratio:.2f}x, bound {bound:.2f}, β {beta:.2f}; {newest.get('hardware', 'unknown')}"
    test = "threshold: the speed-up >= 80 % of the bound 1 + β"
    if bound < 1 + beta - 1e-9:  # the cores, not the forward/backward split, bound the speed-up here
        return Verdict(
            NOT_COMPARABLE,
            f"this machine has {cores:.0f} cores, fewer than 1 + β = {1 + beta:.2f}: the speed-up is capped "
            f"at {bound:.2f}, of which it reached {share:.0%}; it needs {math.ceil(1 + beta)} cores or a GPU",
            text,
            short([newest["run_id"]]),
            (share - 0.8,),
            test,
        )
    verdict = REPRODUCED if share >= 0.8 else NOT_REPRODUCED
    return Verdict(
        verdict,
        f"{share:.0%} of the bound {'>=' if verdict == REPRODUCED else '<'} 80 %",
        text,
        short([newest["run_id"]]),
        (share - 0.8,),  # the margin: positive where the speed-up reached 80 % of the bound
        test,
    )
