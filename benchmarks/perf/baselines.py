"""`perf baselines`: training samples/s of every data-parallel method of processes (`baselines_of`:
ddp, diloco, lapsgd, layup, lppsgd, plsgd, and any method registered later) on every device (2 CPU
processes on a CPU) vs `bp` on one."""

from __future__ import annotations

import logging

import torch

from core.errors import UserError
from methods import METHODS

from ..engine.runner import run_job
from ..engine.tracking import NullTracker
from .common import (
    BATCH,
    PerfOptions,
    cifar10_or_synthetic,
    interleaved,
    one_epoch_job,
    perf_device,
    perf_width,
    register_perf,
)

STEPS = 32  # bp's batches per repetition; each of the ranks takes its share of them
CPU_DEVICES = 2
log = logging.getLogger(__name__)


def baselines_of() -> list[str]:
    """The registry's data-parallel training methods of processes (a pipeline cuts the model instead)."""
    return [
        name
        for name, method in METHODS.items()
        if method.max_devices is None and method.parallel == "processes" and not method.cuts_model
        and not method.measures
    ]  # fmt: skip


@register_perf("baselines", default_reps=3)
def perf_baselines(options: PerfOptions) -> dict:
    """Each side trains a fresh ResNet-18 (width 0.25 on a CPU, full width on GPUs) for one epoch
    over the same STEPS batches; the baselines on every GPU there is (one process each), or on 2
    CPU processes.

    The rate is the runner's own: samples over the training clock, which counts every step, the
    averaging and the data, but not process start-up (spawning ranks and workers) or evaluation.
    `bp` gets every core as intra-op threads; each rank of a baseline gets cores / 2, as in a run.
    """
    steps = options.steps or STEPS
    dataset = cifar10_or_synthetic(options.data_dir, BATCH * steps, 32)
    device = perf_device()
    width = perf_width(device)
    devices = torch.cuda.device_count() if device.type == "cuda" else CPU_DEVICES
    log.info(
        "perf baselines: %d %s",
        devices,
        "GPU(s), one process each" if device.type == "cuda" else "CPU processes",
    )

    def rate(job):
        def measure() -> float:
            return run_job(job, None, NullTracker(), progress=False, dataset=dataset).samples_per_s

        return measure

    bp = rate(one_epoch_job("bp", 0, width=width))
    result = dict(name="baselines", b_name="bp (1 process)", devices=devices, device=device.type)
    for method in baselines_of():
        try:
            job = one_epoch_job(method, 0, devices=devices, width=width)
        except UserError as refused:  # LayUp on one GPU: it needs a peer
            log.info("perf baselines: %s left out: %s", method, refused)
            continue
        measured = interleaved(rate(job), bp, options.reps)
        result[f"{method}_per_s"] = measured["a_per_s"]
        result[f"ratio_{method}"] = measured["ratio"]
        result[f"ratio_{method}_min"] = measured["ratio_min"]
        result[f"ratio_{method}_max"] = measured["ratio_max"]
        result.setdefault("bp_per_s", measured["b_per_s"])
    return dict(
        **result,
        reps=options.reps,
        data=dataset.source,
        model=f"resnet18 width {width}",
        batch_size=BATCH,
        steps=steps,
    )
