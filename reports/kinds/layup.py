"""The `layup` table: per model and row, the best value of the model's metric and its loss under
each delay, time to target and its slowdown, samples/s, MFU and the replicas' drift."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, register_kind
from ..runs import load_runs
from ..values import relative_to, summarise


@register_kind("layup")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Best value, its loss against no delay, time to target and its slowdown, rate, MFU, drift."""
    worse = {
        model: (lambda a, ref, m=spec.metric_of(model): (ref - a) * 100 if m.direction == "max" else a - ref)
        for model in set(per_run["model"])
    }
    # The run without delay of the same method on as many processes, with the same mixing rule.
    same = ("devices", "mix")
    per_run = relative_to(
        per_run,
        spec.reference,
        {
            "tta_vs_no_delay": ("tta_target_s", lambda a, ref: a / ref),
            "rate_vs_no_delay": ("samples_per_s", lambda a, ref: a / ref),
        },
        same,
    )
    reference = relative_to(per_run, spec.reference, {"_ref_best": ("best", lambda a, ref: ref)}, same)
    per_run["loss_vs_no_delay"] = [
        worse[model](best, ref)
        for model, best, ref in zip(per_run["model"], per_run["best"], reference["_ref_best"], strict=True)
    ]
    columns = ["best", "loss_vs_no_delay", "tta_target_s", "tta_vs_no_delay", "samples_per_s"]
    declared = [m for m in ("mfu", *spec.metrics) if m not in columns]  # drift, the wire's bytes and ages
    summary = summarise(per_run, [*columns, "rate_vs_no_delay", *dict.fromkeys(declared)])
    summary.insert(2, "metric", [spec.metric_of(model).name for model in summary["model"]])
    summary["target_value"] = [spec.target_values(section.profile).get(m) for m in summary["model"]]
    section.notes.append(
        "The suite's reading of LayUp's abstract, not a paper's table. best: each run's best test "
        "accuracy (ResNet-18) or lowest held-out bits per byte (GPT); loss_vs_no_delay: what the "
        "delay cost against the same method's run without it (same run index): points of accuracy, "
        "or bits per byte; tta_target_s: training seconds to `target_value` (mean over the runs that "
        "reached it); tta_vs_no_delay and rate_vs_no_delay: time to target and samples/s over the run "
        "without delay's; replica_drift: the largest relative distance of a worker's parameters "
        "from the workers' mean at epoch ends (layup, plsgd, diloco, lapsgd; ddp's replicas are one). "
        "The wire (core/runtime/wire.py), per epoch: wire_bytes_per_step, the model state a worker "
        "sends per batch it trains (gradients, weights, pseudo-gradients; an all-reduce counted as the "
        "ring's 2 (N-1)/N of its tensor); wire_mib, all workers' MiB an epoch; wire_age_median_ms, the "
        "median age at arrival of what the last worker sent (the one a wire straggler delays)."
    )
    section.notes += tuning_notes(spec, section.profile, section.uri, sorted(set(per_run["model"])))
    return summary


def tuning_notes(spec, profile: str, uri: str, models: list[str]) -> list[str]:
    """What tuning each compared method got (AlgoPerf's external rule): the declared spaces, the
    trials in the store and each frozen choice, or that none is frozen (every method at its
    defaults) and what that leaves DiLoCo at."""
    if spec.tuning is None:
        return []
    experiment = f"tuning-{spec.id}"
    trials = load_runs(uri, experiment) if uri else pd.DataFrame()
    if not trials.empty:
        trials = trials[(trials["profile"] == profile) & (trials["status"] == "finished")]
    lines = []
    for model in models:
        spaces = spec.tuning.spaces(profile, model)
        chosen = spec.tuning.chosen.get(profile, {}).get(model, {})
        done = int((trials["model"] == model).sum()) if not trials.empty else 0
        declared = "; ".join(f"{m}: {space.text()}" for m, space in spaces.items())
        head = (
            f"Tuning of {model} (AlgoPerf's external rule: every compared method the same "
            f"{len(next(iter(spaces.values())).trials)} trials, one run each, `python -m benchmarks tune "
            f"{spec.id} --profile {profile}`): {done} of {sum(len(s.trials) for s in spaces.values())} "
            f"trials finished in the experiment {experiment}. Declared spaces: {declared}."
        )
        if chosen:
            picks = "; ".join(
                f"{m}: {', '.join(f'{k}={v}' for k, v in tuned.settings)} ({tuned.source})"
                for m, tuned in chosen.items()
            )
            lines.append(f"{head} Frozen choices: {picks}.")
        else:
            lines.append(
                f"{head} No choice is frozen at {profile}: every method runs its defaults (zero trials "
                "each), DiLoCo with its paper's outer step (lr 0.7, Nesterov 0.9), set for H = 500, at "
                "the H its run's length gives (1/32 of its steps)."
            )
    return lines
