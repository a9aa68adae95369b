"""Run a job start to end and record it in MLflow: on one process here, or on `job.devices` ranks
(benchmarks/engine/distributed.py), or as one of torchrun's ranks. Each process trains through
benchmarks/engine/rank.py."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from core.context import check_batch_fits
from core.errors import StorageError, Terminated
from core.job import Job
from core.result import RunResult, this_machine
from core.runtime.contention import set_job_root
from core.runtime.processes import identity
from methods import get_method
from models import check_model

from .distributed import launched_by_torchrun, run_torchrun_rank, spawn_ranks, torchrun_rank
from .mfu import probe_entry
from .rank import configure_cuda, get_dataset, job_device, mfu_basis, run_rank
from .store import git_sha, one_line
from .tracking import Tracker, rank_tracker

log = logging.getLogger(__name__)


def job_tags(job: Job) -> dict:
    """The MLflow tags of docs/design.md known when a job starts."""
    return dict(
        table=job.table,
        method=job.method,
        dataset=job.dataset,
        model=job.model,
        profile=job.profile,
        seed=job.seed,
        run_index=job.run_index,
        devices=job.devices,
        git_sha=git_sha(),
        status="running",
        job_key=job.key,
        hardware=str(this_machine()),  # for people; claims read the params hardware_*
        torch_version=torch.__version__,
        **identity(),  # host, pid, pid_start: a later command can tell whether this process died
        **({"row_name": job.row.name} if job.row.settings else {}),  # for the UI; reports read params
    )


class JobFailed(Exception):
    """A job ended with an exception; the run is marked failed. Carries its result."""

    def __init__(self, message: str, result: RunResult):
        super().__init__(message)
        self.result = result


def close_run(tracker: Tracker, job: Job, run_id: str, status: str, tags: dict) -> None:
    """End the run in the store; where the store cannot be written (its disk full, the run's own
    metrics having failed likewise), a StorageError whose one line says the run stays open until
    the store can be written again, when the next command closes it (Tracker.close_stale_runs)."""
    try:
        tracker.finish(run_id, status, tags)
    except Exception as err:  # noqa: BLE001  (MLflow, SQLAlchemy and OS errors all mean the same here)
        raise StorageError(
            f"tracking store {tracker.uri} cannot be written ({one_line(err)}): run {job.run_name} "
            f"({run_id[:8]}) stays 'running' there; once the store can be written again, the next command "
            "marks it failed (stale) and `run` redoes its job"
        ) from None


def run_params(job: Job, dataset, device, flops: float, peak: float, peak_source: str) -> dict:
    """A run's MLflow params: the job's hyperparameters, its data, the MFU basis and the hardware."""
    params = {
        **job.params(),
        "data_source": dataset.source,
        "num_train": dataset.num_train,
        "flops_per_sample": flops,
        "peak_flops": peak,
        "peak_source": peak_source,
        **this_machine().params(),
    }
    probe = probe_entry(device) if flops else {}  # the measured GEMM rate, beside the peak
    if probe:
        params.update(probe_peak_flops=probe["flops"], probe_measured=probe.get("measured", ""))
    return params


def train_ranks(job: Job, dataset, data_dir, tracker, run_id: str, device, mfu, progress: bool) -> RunResult:
    """Train on this process (one device, or one of torchrun's ranks) or on spawned ranks."""
    if launched_by_torchrun():
        return run_torchrun_rank(job, dataset, tracker, run_id, mfu)
    if job.devices == 1:
        return run_rank(job, dataset, tracker, run_id, device, progress=progress, mfu=mfu)
    # A caller that passed its own dataset (and no data folder) has it shipped to the ranks.
    shipped = dataset if data_dir is None else None
    return spawn_ranks(job, data_dir, tracker, run_id, mfu, dataset=shipped)


def run_job(
    job: Job,
    data_dir: Path | None,
    tracker: Tracker,
    progress: bool = True,
    dataset=None,
    reserve: bool = False,
) -> RunResult | None:
    """Run one job start to end, on `job.devices` processes, and record it; returns its result.

    A NaN loss ends it as `diverged` (returned); KeyboardInterrupt marks it `interrupted` and
    propagates; any other exception, in any process, marks it `failed` and raises JobFailed. With
    `reserve` (`run`), a job another process has finished or is running is not run: None.
    """
    if dataset is None:
        dataset = get_dataset(job, data_dir)  # missing data fails here, before a run is created
    check_model(job.model, dataset.spec)  # and a model that cannot read it
    shards = get_method(job.method).shards_data  # a pipeline's stages each read the whole epoch
    check_batch_fits(job.config.batch_size, dataset, job.devices if shards else 1)  # and a batch past a shard
    torchrun = launched_by_torchrun()
    if torchrun:
        tracker = rank_tracker(torchrun_rank()[0], tracker)
    device = job_device(job)
    configure_cuda(job.config)  # the GEMM probe below runs with the job's TF32 setting
    # The GEMM probe (first job on a machine) runs here, before the ranks load the cores.
    flops, peak, peak_source = mfu_basis(job, dataset, device, job.devices)
    params = run_params(job, dataset, device, flops, peak, peak_source)
    # The job's processes are this one's tree (under torchrun, the agent's): contention readings
    # count everything else as other processes' (core/runtime/contention.py).
    if torchrun:
        set_job_root(os.getppid())
    run_id = tracker.start(job.table, job.run_name, job_tags(job), params, reserve=reserve)
    if run_id is None:
        return None
    kind = "synthetic" if job.synthetic_data else "real"
    tracker.log_dataset(run_id, job.dataset, dataset.source, "train", data=kind, num_train=dataset.num_train)
    try:
        result = train_ranks(job, dataset, data_dir, tracker, run_id, device, (flops, peak), progress)
    except KeyboardInterrupt as err:
        stopped_by = {"signal": err.signal} if isinstance(err, Terminated) else {}
        try:
            close_run(tracker, job, run_id, "interrupted", dict(stop_reason="interrupted", **stopped_by))
        except StorageError as store_err:
            log.error("%s", store_err)  # then the interruption's own line and exit code
        err.result = RunResult.of(job, run_id, "interrupted", "interrupted")  # for `train --json`
        raise
    except Exception as err:
        message = f"{type(err).__name__}: {err}"
        close_run(tracker, job, run_id, "failed", dict(stop_reason="failed", error=message[:4000]))
        raise JobFailed(message, RunResult.of(job, run_id, "failed", "failed", error=message[:4000])) from err
    contended = "true" if result.contended else "false"
    close_run(tracker, job, run_id, result.status, dict(stop_reason=result.stop_reason, contended=contended))
    if result.contended:
        log.warning(
            "%s: other processes used up to %.0f%% of this machine's CPU during its epochs: its timings "
            "are not this machine's alone (tagged contended)",
            job.name,
            100 * (result.others_cpu_max or 0.0),
        )
    return result
