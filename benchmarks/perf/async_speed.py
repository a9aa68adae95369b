"""`perf async`: samples/s of `async_lu` vs `bp` on the same model and batches, under two thread budgets."""

from __future__ import annotations

import os

from methods.async_backprop import AsyncConfig
from methods.timing import TimingConfig

from ..runner import run_job
from ..tracking import NullTracker
from .common import (
    BATCH,
    LSTM_BATCH,
    LSTM_SEQ_LEN,
    WIDTH,
    cifar10_or_synthetic,
    imdb_or_synthetic,
    interleaved,
    one_epoch_job,
    register_perf,
    runner_rate,
)

STEPS = 40  # long enough that filling and draining the pipeline (one pass each) is not the measurement
LSTM_STEPS = 100  # an LSTM step is ~4x shorter: 40 of them (4 s) left the ratios noisy (0.74-1.12)


@register_perf("async")
def perf_async(args) -> dict:
    """Both sides train a fresh ResNet-18 (width 0.25; `--model lstm`: the quick IMDb LSTM, 2x64
    over the last 400 tokens, Adam) through the runner on the same STEPS batches.

    (a) `ratio_1thread`: every thread of both sides limited to one intra-op thread (the paper's
        setting: the method's parallelism is its threads);
    (b) `ratio_all_cores`: `bp` given every core as intra-op threads, `async_lu` as in (a).
    `bound` = min(1 + β, cores), with β = backward / forward time measured here at one thread
    (§3.3's speed-up limit, capped by the cores that can run threads at once).
    """
    model = getattr(args, "model", None) or "resnet18"
    steps = args.steps or (LSTM_STEPS if model == "lstm" else STEPS)
    if model == "lstm":
        batch, described = LSTM_BATCH, f"lstm width {WIDTH} (2x{round(256 * WIDTH)}), {LSTM_SEQ_LEN} tokens"
        dataset = imdb_or_synthetic(args.data_dir, batch * steps, 32)
    else:
        batch, described = BATCH, f"resnet18 width {WIDTH}"
        dataset = cifar10_or_synthetic(args.data_dir, batch * steps, 32)
    cores = os.cpu_count() or 1
    async_lu = runner_rate(one_epoch_job("async_lu", 1, AsyncConfig(), model=model), dataset)
    one_thread = interleaved(async_lu, runner_rate(one_epoch_job("bp", 1, model=model), dataset), args.reps)
    all_cores = interleaved(async_lu, runner_rate(one_epoch_job("bp", 0, model=model), dataset), args.reps)
    timing = one_epoch_job("fwd_bwd_timing", 1, TimingConfig(batches=steps - 2, warmup=2), model=model)
    beta = run_job(timing, None, NullTracker(), progress=False, dataset=dataset)["beta"]
    bound = min(1 + beta, cores)
    return dict(
        name="async",
        a_name="async_lu (1 forward + 2 backward threads, 1 intra-op thread each)",
        b_name="bp",
        a_per_s=one_thread["a_per_s"],
        b_per_s=one_thread["b_per_s"],
        ratio=one_thread["ratio"],
        ratio_1thread=one_thread["ratio"],
        ratio_1thread_min=one_thread["ratio_min"],
        ratio_1thread_max=one_thread["ratio_max"],
        bp_all_cores_per_s=all_cores["b_per_s"],
        ratio_all_cores=all_cores["ratio"],
        ratio_all_cores_min=all_cores["ratio_min"],
        ratio_all_cores_max=all_cores["ratio_max"],
        beta=beta,
        bound=bound,
        ratio_1thread_of_bound=one_thread["ratio"] / bound,
        cores=cores,
        reps=args.reps,
        data=dataset.source,
        model=described,
        batch_size=batch,
        steps=steps,
    )
