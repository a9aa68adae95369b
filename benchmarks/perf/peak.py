"""`perf peak`: the float32 GEMM probe measured again and cached, beside the theoretical peak that
every run's `mfu` divides by where it is known (benchmarks/engine/mfu.py)."""

from __future__ import annotations

import os
import statistics

import torch

from core.config import TrainConfig
from core.inputs import InputSpec

from ..engine.mfu import (
    PROBE_S,
    PROBE_SIZE,
    datasheet_peak,
    device_name,
    flops_per_sample,
    measure_peak,
    peak_flops,
    store_peak,
    theoretical_peak,
)
from ..engine.rank import configure_cuda, resolve_device
from .common import LSTM_SEQ_LEN, WIDTH, PerfOptions, register_perf


@register_perf("peak", default_reps=3)
def perf_peak(options: PerfOptions) -> dict:
    """`reps` GEMM probes (each the best product over PROBE_S seconds) on the default device; the
    best of them and of the cached peak becomes the cached peak. With the FLOPs per sample of the
    quick ResNet-18 and LSTM, for reference."""
    device = resolve_device("auto")
    configure_cuda(TrainConfig())  # the default runs' TF32 setting, which their peak is cached under
    rates = [measure_peak(device) for _ in range(options.reps)]
    cached = peak_flops(device)  # the probe of the first run here (measured then, if none is cached)
    best = max(cached, *rates)  # a busy machine measures low, never high: a peak is the best seen
    store_peak(device, best)  # what a run's `mfu` divides by where no theoretical peak is known
    theoretical, source = theoretical_peak(device) or (0.0, "none known")
    n = PROBE_SIZE[device.type]
    tf32 = device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
    return dict(
        name="peak",
        device=device_name(device),
        dtype="float32" + (" (TF32 allowed)" if tf32 else ""),
        threads=(os.cpu_count() or 1) if device.type == "cpu" else 0,
        probe=f"{n}x{n} @ {n}x{n}, best over {PROBE_S[device.type]:g} s per repetition",
        peak_gflops=best / 1e9,
        median_gflops=statistics.median(rates) / 1e9,
        previous_peak_gflops=cached / 1e9,
        datasheet_gflops=(datasheet_peak(device) or 0.0) / 1e9,
        theoretical_gflops=theoretical / 1e9,
        theoretical_source=source,
        resnet18_quick_gflop_per_sample=flops_per_sample("resnet18", InputSpec(10, 32), WIDTH) / 1e9,
        lstm_quick_gflop_per_sample_at_200_tokens=flops_per_sample(
            "lstm", InputSpec(2, 0, 25_002), WIDTH, min(200, LSTM_SEQ_LEN)
        )
        / 1e9,
    )
