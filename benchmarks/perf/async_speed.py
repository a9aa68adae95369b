"""`perf async`: samples/s of `async_lu` vs `bp` on the same model and batches (on a CPU under two
thread budgets; on a GPU with the GPU's busy fraction and peak memory of each side)."""

from __future__ import annotations

import os
import threading

from methods.async_backprop import AsyncConfig
from methods.timing import TimingConfig

from ..engine.runner import run_job
from ..engine.tracking import NullTracker
from .common import (
    BATCH,
    LSTM_BATCH,
    LSTM_SEQ_LEN,
    PerfOptions,
    cifar10_or_synthetic,
    gpu_usage,
    imdb_or_synthetic,
    interleaved,
    one_epoch_job,
    perf_device,
    perf_width,
    register_perf,
    runner_rate,
)

STEPS = 40  # long enough that filling and draining the pipeline (one pass each) is not the measurement
LSTM_STEPS = 100  # an LSTM step is ~4x shorter: 40 of them (4 s) left the ratios noisy (0.74-1.12)
CUDA_STEPS = 300  # a GPU step is ~100x shorter than a CPU's: ~3 s per side and repetition


@register_perf("async")
def perf_async(options: PerfOptions) -> dict:
    """Both sides train a fresh ResNet-18 (width 0.25 on a CPU, full width on a GPU; `--model lstm`:
    the quick IMDb LSTM, 2x64 over the last 400 tokens, Adam) through the runner on the same batches.

    On a CPU:
    (a) `ratio_1thread`: every thread of both sides limited to one intra-op thread (the paper's
        setting: the method's parallelism is its threads);
    (b) `ratio_all_cores`: `bp` given every core as intra-op threads, `async_lu` as in (a).
    `bound` = min(1 + β, cores), with β = backward / forward time measured here at one thread
    (§3.3's speed-up limit, capped by the cores that can run threads at once); and
    `two_bp_loops_ratio`: two independent `bp` loops at one thread each, run at once, over one: what
    the cores give two threads of this workload when nothing couples them.
    On a GPU: `ratio` = async_lu / bp, `bound` = 1 + β measured on the GPU, and each side's GPU
    busy fraction and peak memory from one more (profiled) run.
    """
    device = perf_device()
    cuda = device.type == "cuda"
    model = options.model or "resnet18"
    width = perf_width(device)
    steps = options.steps or (CUDA_STEPS if cuda else LSTM_STEPS if model == "lstm" else STEPS)
    batch, described, dataset = workload(options, model, width, steps)

    def job(method: str, threads: int, method_config=None):
        return one_epoch_job(method, threads, method_config, model=model, width=width)

    threads = 0 if cuda else 1  # on a GPU the default (intra-op threads only run the host's side)
    async_lu = runner_rate(job("async_lu", threads, AsyncConfig()), dataset)
    bp = runner_rate(job("bp", threads), dataset)
    # On a CPU also: two independent `bp` loops at once, one thread each: what the cores give two
    # threads of this workload with no dependency between them (memory bandwidth, SMT siblings).
    one_thread = interleaved(async_lu, bp, options.reps, c=None if cuda else side_by_side(bp, 2))
    timing = job("fwd_bwd_timing", threads, TimingConfig(batches=min(steps - 2, 50), warmup=2))
    beta = run_job(timing, None, NullTracker(), progress=False, dataset=dataset).measured["beta"]
    common = dict(
        name="async",
        a_name="async_lu (1 forward + 2 backward threads"
        + ("" if cuda else ", 1 intra-op thread each")
        + ")",
        b_name="bp",
        a_per_s=one_thread["a_per_s"],
        b_per_s=one_thread["b_per_s"],
        ratio=one_thread["ratio"],
        ratio_min=one_thread["ratio_min"],
        ratio_max=one_thread["ratio_max"],
        beta=beta,
        reps=options.reps,
        data=dataset.source,
        model=described,
        batch_size=batch,
        steps=steps,
        device=str(device),
    )
    if cuda:
        bound = 1 + beta
        usage = {f"async_lu_{k}": v for k, v in gpu_usage(async_lu, device).items()}
        usage |= {f"bp_{k}": v for k, v in gpu_usage(bp, device).items()}
        return dict(**common, bound=bound, ratio_of_bound=one_thread["ratio"] / bound, **usage)
    all_cores = interleaved(async_lu, runner_rate(job("bp", 0), dataset), options.reps)
    return dict(**common, **cpu_ratios(one_thread, all_cores, beta))


def workload(options: PerfOptions, model: str, width: float, steps: int) -> tuple[int, str, object]:
    """(batch size, a description, the data) of `perf async`'s model: ResNet-18 or the IMDb LSTM."""
    if model == "lstm":
        described = f"lstm width {width} (2x{round(256 * width)}), {LSTM_SEQ_LEN} tokens"
        return LSTM_BATCH, described, imdb_or_synthetic(options.data_dir, LSTM_BATCH * steps, 32)
    return BATCH, f"resnet18 width {width}", cifar10_or_synthetic(options.data_dir, BATCH * steps, 32)


def cpu_ratios(one_thread: dict, all_cores: dict, beta: float) -> dict:
    """On a CPU: the ratios at one intra-op thread and with bp on every core, against min(1 + β, cores)."""
    cores = os.cpu_count() or 1
    bound = min(1 + beta, cores)
    return dict(
        ratio_1thread=one_thread["ratio"],
        ratio_1thread_min=one_thread["ratio_min"],
        ratio_1thread_max=one_thread["ratio_max"],
        bp_all_cores_per_s=all_cores["b_per_s"],
        ratio_all_cores=all_cores["ratio"],
        ratio_all_cores_min=all_cores["ratio_min"],
        ratio_all_cores_max=all_cores["ratio_max"],
        bound=bound,
        ratio_1thread_of_bound=one_thread["ratio"] / bound,
        cores=cores,
        two_bp_loops_ratio=one_thread["c_ratio"],
        ratio_1thread_of_two_loops=one_thread["ratio"] / one_thread["c_ratio"],
    )


def side_by_side(measure, copies: int):
    """A measurement: `copies` runs of `measure` at once, in threads; their summed rate."""

    def together() -> float:
        rates = [0.0] * copies

        def run(k: int) -> None:
            rates[k] = measure()

        threads = [threading.Thread(target=run, args=(k,)) for k in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(rates)

    return together
