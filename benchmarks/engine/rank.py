"""One process of a job: its dataset, threads, seeded model and training context, and the method run
through it. The single-process runner, spawned ranks and torchrun ranks all end up here."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

import datasets
from core.config import TrainConfig
from core.context import TrainContext
from core.errors import Diverged
from core.inputs import uses_channels_last
from core.job import Job
from core.result import RunResult
from methods import get_method
from models import build_model

from .mfu import flops_per_sample, job_peak, tokens_per_sample
from .tracking import Tracker

log = logging.getLogger(__name__)

_DATASET_CACHE: dict[tuple, object] = {}


def get_dataset(job: Job, data_dir: Path | None):
    """The job's dataset, loaded once per process (a table's jobs share it)."""
    key = (job.dataset, str(data_dir), job.synthetic_data, job.config.seq_len)
    if key not in _DATASET_CACHE:
        _DATASET_CACHE[key] = datasets.load_dataset(
            job.dataset, data_dir, synthetic_like=job.synthetic_data, seq_len=job.config.seq_len
        )
    return _DATASET_CACHE[key]


def resolve_device(name: str) -> torch.device:
    """`auto` is the first CUDA device where there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def job_device(job: Job, rank: int = 0) -> torch.device:
    """Where process `rank` of a job (its local rank under torchrun) runs: the job's device
    (`resolve_device`); on CUDA one GPU per process, rank r on the r-th GPU from the job's
    (`check_device_count` made sure there are enough: NCCL refuses two ranks on one GPU)."""
    device = resolve_device(job.config.device)
    if device.type == "cuda":
        return torch.device("cuda", (device.index or 0) + rank)
    return device


def configure_threads(cfg: TrainConfig, devices: int) -> None:
    """Intra-op threads: `threads`, else the cores shared evenly among the job's processes."""
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // devices))


def configure_cuda(cfg: TrainConfig) -> None:
    """This process's CUDA math settings from the job (logged with its params): cuDNN's autotuner,
    and TF32 for float32 matmuls and cuDNN (PyTorch's legacy flags, which mfu.py reads back)."""
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
    torch.backends.cudnn.allow_tf32 = cfg.tf32


def seeded_model(job: Job, dataset, device: torch.device) -> torch.nn.Module:
    """The job's model, initialised from its seed, on `device`."""
    torch.manual_seed(job.seed)
    model = build_model(job.model, dataset.spec, job.config.width, job.config.depth).to(device)
    if uses_channels_last(job.config, dataset.spec):
        model = model.to(memory_format=torch.channels_last)
    return model


def mfu_basis(job: Job, dataset, device: torch.device, world: int) -> tuple[float, float, str]:
    """(FLOPs per sample, the job's peak FLOP/s, where the peak comes from) for the `mfu` metric;
    (0, 0, "") where the model's ops cannot be counted (a user's model with ops the meta device
    lacks): the run goes on without MFU."""
    try:
        flops = flops_per_sample(
            job.model, dataset.spec, job.config.width, tokens_per_sample(dataset), job.config.depth
        )
        return flops, *job_peak(device, world)
    except Exception as err:  # noqa: BLE001  (MFU is a metric, never a reason to fail a run)
        log.warning("no MFU for %s: cannot count its FLOPs (%s)", job.model, err)
        return 0.0, 0.0, ""


def run_rank(
    job: Job,
    dataset,
    tracker: Tracker,
    run_id: str,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
    progress: bool = True,
    mfu: tuple[float, float] | None = None,
) -> RunResult:
    """Train (or measure) in this process as rank `rank` of `world`; returns its result.

    `mfu`: (FLOPs per sample, peak FLOP/s) as the runner computed them for the run's params
    (`mfu_basis`, computed here only for callers that give none). A NaN loss ends the job as
    `diverged` (in the result); other exceptions propagate.
    """
    configure_threads(job.config, job.devices)
    configure_cuda(job.config)
    model = seeded_model(job, dataset, device)  # the same seed: every rank starts from the same replica

    def log_metrics(metrics: dict[str, float], step: int) -> None:
        tracker.log_metrics(run_id, metrics, step)

    def log_table(artifact_file: str, columns: dict[str, list]) -> None:
        tracker.log_table(run_id, columns, artifact_file)

    method = get_method(job.method)
    ctx = TrainContext(
        job, dataset, model, device, log_metrics, rank, world, progress, log_table, method.shards_data
    )
    mfu = mfu if mfu is not None else mfu_basis(job, dataset, device, world)[:2]
    ctx.machine.flops_per_sample, ctx.machine.peak_flops = mfu
    status = "finished"
    try:
        method().train(ctx)
    except Diverged as err:
        status = "diverged"
        log.warning("%s diverged: %s", job.name, err)
    finally:
        ctx.finish(status)
    result = ctx.result(status, run_id)
    if not method.measures:  # a measurement records its own values (ctx.record)
        # The epochs trained: the planner's time per epoch (reports read the curves themselves).
        tracker.log_metrics(run_id, dict(epochs=result.epochs), step=max(ctx.epoch - 1, 0))
    return result
