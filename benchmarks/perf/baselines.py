"""`perf baselines`: training samples/s of `ddp`, `plsgd`, `lapsgd`, `lppsgd` on 2 processes vs `bp` on 1."""

from __future__ import annotations

from ..runner import run_job
from ..tracking import NullTracker
from .common import BATCH, WIDTH, cifar10_or_synthetic, interleaved, one_epoch_job, register_perf

STEPS = 32  # bp's batches per repetition; each of the 2 ranks takes half of them
DEVICES = 2
METHODS = ("ddp", "plsgd", "lapsgd", "lppsgd")


@register_perf("baselines", default_reps=3)
def perf_baselines(args) -> dict:
    """Each side trains a fresh ResNet-18 (width 0.25) for one epoch over the same STEPS batches.

    The rate is the runner's own: samples over the training clock, which counts every step, the
    averaging and the data, but not process start-up (spawning ranks and workers) or evaluation.
    `bp` gets every core as intra-op threads; each rank of a baseline gets cores / 2, as in a run.
    """
    steps = args.steps or STEPS
    dataset = cifar10_or_synthetic(args.data_dir, BATCH * steps, 32)

    def rate(method: str, devices: int):
        job = one_epoch_job(method, 0, devices=devices)

        def measure() -> float:
            return run_job(job, None, NullTracker(), progress=False, dataset=dataset)["samples_per_s"]

        return measure

    bp = rate("bp", 1)
    result = dict(name="baselines", b_name="bp (1 process, all cores)", devices=DEVICES)
    for method in METHODS:
        measured = interleaved(rate(method, DEVICES), bp, args.reps)
        result[f"{method}_per_s"] = measured["a_per_s"]
        result[f"ratio_{method}"] = measured["ratio"]
        result[f"ratio_{method}_min"] = measured["ratio_min"]
        result[f"ratio_{method}_max"] = measured["ratio_max"]
        result.setdefault("bp_per_s", measured["b_per_s"])
    return dict(
        **result,
        reps=args.reps,
        data=dataset.source,
        model=f"resnet18 width {WIDTH}",
        batch_size=BATCH,
        steps=steps,
    )
