"""`run claims`' estimate of a job it has no like run of: short bp epochs of the job's own workload,
measured in this process, and the start of one process, measured once, both kept on disk for a
day (`$BENCH_CACHE_DIR/speed.json`, per host): a command resumed again and again (`run claims`
after an interruption) measures them once (~13 s on 2 cores).

A job's seconds = its start (what a bp job of its workload spends around its samples here, measured
by the probe; its run in the store; the start of its processes where it spawns any) + its samples x
bp's seconds per sample on the workload x the method's cost relative to bp, the samples capped by
its time budget. The constants' measurements: docs/performance.md, "Constants".
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import platform
import time
from dataclasses import astuple, dataclass

from core.errors import DataMissingError
from core.job import Job
from core.runtime.processes import usable_cores
from datasets.cache import keep_entry, read_entries

log = logging.getLogger(__name__)


def cost_vs_bp(method: str) -> float:
    """A method's wall time relative to bp's on the same workload before a run of it has finished
    here: its own prior (`Method.cost_vs_bp`), 1 for a name no module registered."""
    from methods import METHODS

    return METHODS[method].cost_vs_bp if method in METHODS else 1.0


PROBE_BATCHES = 8  # the probe's longer bp epoch: this many training batches and one test batch
# ... on data whose batches differ in length (IMDb's reviews), where 8 misread the LSTM's time per
# sample (docs/performance.md, "Constants").
PROBE_BATCHES_VARIED = 32
# What a job spends beyond the probe's epochs in this process: its run in the store (params, tags,
# metrics, its end) and the runner's records around it.
RUN_S = 0.1
KEPT_S = 24 * 3600  # a measurement on disk older than this is taken again
CACHE = "speed"  # the file in $BENCH_CACHE_DIR that keeps them


@dataclass(frozen=True)
class Probe:
    """What the probe measured of one workload: bp's seconds per training sample, and the seconds a
    bp job of it spends around its samples in this process (its model, evaluation and end)."""

    per_sample_s: float
    start_s: float


def _process_started() -> None:
    """A spawned process's start as a job's ranks and workers pay it: the suite's imports and the
    first optimizer (which imports torch._dynamo)."""
    import torch

    import benchmarks.engine.rank  # noqa: F401

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def process_start_s() -> float:
    """Seconds a spawned process takes to start as a job's ranks and workers do (kept on disk)."""
    context = mp.get_context("spawn")
    started = time.perf_counter()
    child = context.Process(target=_process_started, daemon=True)
    child.start()
    child.join()
    seconds = time.perf_counter() - started
    log.info("calibrated a process's start: %.1f s", seconds)
    remember("process start", [seconds])
    return seconds


class Speed:
    """A job's seconds on this machine without a like run in the store (the module's docstring)."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self._probes: dict[tuple, Probe] = {}
        self._process_s: float | None = None

    def job_s(self, job: Job, budget_margin_s: float) -> float | None:
        """The estimate, or None where a bp probe says nothing of the job (a measuring method, or a
        dataset without subsets) and it has no time budget (then its budget + `budget_margin_s`)."""
        from methods import METHODS

        from .rank import get_dataset

        cfg = job.config
        budget = cfg.time_budget_s + budget_margin_s if cfg.time_budget_s else None
        try:
            dataset = get_dataset(job, self.data_dir)
        except DataMissingError:  # its claim reads "not measurable here"; the planner drops such jobs
            return budget
        if METHODS[job.method].measures or not hasattr(dataset, "subset"):
            return budget
        key = (job.dataset, job.model, job.synthetic_data, cfg.width, cfg.depth, cfg.batch_size, cfg.seq_len)
        if key not in self._probes:
            if kept := remembered(repr(key)):
                self._probes[key] = Probe(*kept)
            else:
                self._probes[key] = self.probe(job, dataset)
                remember(repr(key), list(astuple(self._probes[key])))
        probe = self._probes[key]
        samples = cfg.max_epochs * (dataset.num_train + dataset.num_test / 3)  # a test sample: a forward
        seconds = samples * probe.per_sample_s * cost_vs_bp(job.method)
        if cfg.time_budget_s:
            seconds = min(seconds, cfg.time_budget_s)
        return probe.start_s + RUN_S + self.processes_s(job) + seconds

    def processes_s(self, job: Job) -> float:
        """The start of the job's spawned processes (its ranks where it has several, and LAP-SGD's
        workers), as many at once as there are cores; 0 for a job of this process alone."""
        ranks = job.devices if job.devices > 1 else 0  # one device: the job runs in this process
        processes = ranks + job.devices * getattr(job.method_config, "workers_per_device", 0)
        if not processes:
            return 0.0
        if self._process_s is None:
            kept = remembered("process start")
            self._process_s = kept[0] if kept else process_start_s()
        return self._process_s * math.ceil(processes / usable_cores())

    def probe(self, job: Job, dataset) -> Probe:
        """bp over the job's data: epochs of 2 and of PROBE_BATCHES (or PROBE_BATCHES_VARIED) batches,
        after a warm-up epoch, each measured twice and the faster kept, so one stall on a shared
        machine does not count (a probe's difference is a fraction of a second: one stall once read
        10x too slow). Their difference over their samples is the seconds per sample; what the short
        epoch took beyond its samples, the job's start."""
        from dataclasses import replace

        from .build import build_job
        from .runner import run_job
        from .tracking import NullTracker

        batch = job.config.batch_size
        config = replace(job.config, max_epochs=1, t_max=1, warmup_epochs=0, time_budget_s=0.0)
        probe = build_job(
            "calibration", job.dataset, job.model, "bp", job.profile, config=config,
            synthetic=job.synthetic_data,
        )  # fmt: skip
        n_test = min(dataset.num_test, batch)
        seconds: dict[int, float] = {}
        logging.disable(logging.WARNING)  # a probe's own warnings (MFU, contention) are not the user's
        try:
            # The first epoch pays one-time costs (kernels, threads, an LSTM's shapes): not kept.
            many = PROBE_BATCHES_VARIED if hasattr(dataset, "train_len") else PROBE_BATCHES
            for i, batches in enumerate((2, 2, many, 2, many)):
                n_train = min(dataset.num_train, batches * batch)
                started = time.perf_counter()
                run_job(probe, None, NullTracker(), progress=False, dataset=dataset.subset(n_train, n_test))
                if i > 0:
                    seconds[n_train] = min(seconds.get(n_train, math.inf), time.perf_counter() - started)
        finally:
            logging.disable(logging.NOTSET)
        measured = sorted(seconds.items())  # one entry where the whole train split fits 2 batches
        (few, t_few), (many, t_many) = measured[0], measured[-1]
        per_sample = max((t_many - t_few) / (many - few) if many > few else t_many / many, 1e-6)
        # The short epoch's samples (n_test of them evaluated, a third of a training sample each).
        start = max(0.0, t_few - (few + n_test / 3) * per_sample)
        log.info(
            "calibrated %s/%s: %.3f ms per training sample, %.2f s around them",
            job.dataset, job.model, 1e3 * per_sample, start,
        )  # fmt: skip
        return Probe(per_sample, start)


def remembered(what: str) -> list[float] | None:
    """A measurement of this host kept on disk (`remember`) within KEPT_S, or None."""
    entry = read_entries(CACHE).get(f"{platform.node()} {what}")
    if not entry or time.time() - entry.get("measured_s", 0.0) > KEPT_S:
        return None
    return entry["values"]


def remember(what: str, values: list[float]) -> None:
    """Keep a measurement of this host on disk, with when it was taken."""
    keep_entry(CACHE, f"{platform.node()} {what}", {"values": values, "measured_s": time.time()})
