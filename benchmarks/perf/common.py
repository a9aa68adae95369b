"""What the perf benchmarks share: the registry, how they time (interleaved), the data they measure
on and the job they time."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from core.config import TrainConfig
from core.errors import DataMissingError
from core.job import Job
from core.registry import Registry
from datasets import TensorImageDataset, load_dataset, resolve_data_dir
from datasets.synthetic import synthetic_images

from ..engine.build import build_job
from ..engine.rank import resolve_device
from ..engine.runner import run_job
from ..engine.tracking import NullTracker

BATCH, WIDTH = 128, 0.25  # the quick profile's ResNet-18 (on CUDA: full width, the paper profile's)
LSTM_BATCH, LSTM_SEQ_LEN = 64, 400  # the quick profile's IMDb LSTM (width 0.25: 2x64, 400 tokens)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerfOptions:
    """What a perf benchmark is asked for: repetitions, steps per repetition (None: its own
    default), the data folder and, for `perf async`, the model."""

    reps: int
    steps: int | None = None
    data_dir: Path | str | None = None
    model: str | None = None

    @classmethod
    def planned(cls, name: str, profile: str, data_dir) -> PerfOptions:
        """The options `run claims` gives `perf NAME`: 3 short repetitions at smoke, else its defaults."""
        if profile == "smoke":
            return cls(reps=3, steps=10, data_dir=data_dir)
        return cls(PERF[name].default_reps, None, data_dir)


PerfBenchmark = Callable[[PerfOptions], dict]  # the options -> the result object
PERF: Registry[PerfBenchmark] = Registry("perf benchmark")


def register_perf(name: str, default_reps: int = 9) -> Callable[[PerfBenchmark], PerfBenchmark]:
    """Decorator: register a benchmark `(options) -> dict` as `perf NAME`, with its default repetitions."""

    def wrap(benchmark: PerfBenchmark) -> PerfBenchmark:
        benchmark.default_reps = default_reps
        return PERF.add(name, benchmark)

    return wrap


def interleaved(
    a: Callable[[], float], b: Callable[[], float], reps: int, c: Callable[[], float] | None = None
) -> dict:
    """Run a and b (each returns items/s) alternately `reps` times after one warm-up each.

    The order alternates (A B, B A, A B, ...) so that a steady drift of the machine's speed
    favours neither side; each repetition's ratio compares two adjacent measurements. A third
    measurement `c`, if given, runs between them in every repetition and is compared with b too.
    """
    sides = [a, b] if c is None else [a, c, b]
    for side in sides:
        side()
    rates: dict[Callable, list[float]] = {side: [] for side in sides}
    for rep in range(reps):
        for side in sides if rep % 2 == 0 else reversed(sides):
            rates[side].append(side())
    ratios = [x / y for x, y in zip(rates[a], rates[b], strict=True)]
    result = dict(
        a_per_s=statistics.median(rates[a]),
        b_per_s=statistics.median(rates[b]),
        ratio=statistics.median(ratios),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
        reps=reps,
    )
    if c is not None:
        result["c_per_s"] = statistics.median(rates[c])
        result["c_ratio"] = statistics.median(x / y for x, y in zip(rates[c], rates[b], strict=True))
    return result


def cifar10_or_synthetic(data_dir: str | None, num_train: int, num_test: int) -> TensorImageDataset:
    """The first `num_train`/`num_test` images of CIFAR-10 where it is on disk, else synthetic ones.

    Throughput does not depend on pixel values; real data is used where present so that nothing
    about the measurement is synthetic but the speed of the source.
    """
    try:
        full = load_dataset("cifar10", resolve_data_dir(data_dir))
    except DataMissingError:
        log.info("CIFAR-10 not found: measuring on synthetic images of its shape")
        full = synthetic_images(num_train=num_train, num_test=num_test)
    return full.subset(num_train, num_test)


def imdb_or_synthetic(data_dir: str | None, num_train: int, num_test: int):
    """The first IMDb reviews (their last 400 tokens, as the quick profile) where on disk, else
    synthetic sequences of 100-400 tokens (IMDb's median review is about 175 words)."""
    from datasets.imdb import synthetic_tokens

    try:
        full = load_dataset("imdb", resolve_data_dir(data_dir), seq_len=LSTM_SEQ_LEN)
    except DataMissingError:
        log.info("IMDb not found: measuring on synthetic token sequences of 100-400 tokens")
        full = synthetic_tokens(vocab_size=25_002, num_train=num_train, num_test=num_test, lengths=(100, 400))
    return full.subset(num_train, num_test)


def perf_device() -> torch.device:
    """Where the perf benchmarks run: the first GPU where there is one, else the CPU."""
    return resolve_device("auto")


def perf_width(device: torch.device) -> float:
    """The model width measured: the paper profile's (full) on a GPU, the quick profile's on a CPU."""
    return 1.0 if device.type == "cuda" else WIDTH


def one_epoch_job(
    method: str,
    threads: int = 0,
    method_config=None,
    model: str = "resnet18",
    devices: int = 1,
    width: float = WIDTH,
) -> Job:
    """One epoch of the quick ResNet-18 (or IMDb LSTM) over the data given, evaluated on a few samples."""
    lstm = model == "lstm"
    config = TrainConfig(
        batch_size=LSTM_BATCH if lstm else BATCH,
        optimizer="adam" if lstm else "sgd",
        lr=0.003 if lstm else 0.05,
        weight_decay=0.0 if lstm else 5e-4,
        warmup_epochs=0,
        t_max=1,
        max_epochs=1,
        width=width,
        eval_batch_size=32,
        threads=threads,
    )
    dataset = "imdb" if lstm else "cifar10"
    return build_job(
        "perf", dataset, model, method, "quick", devices=devices, config=config, method_config=method_config
    )


def runner_rate(job: Job, dataset: TensorImageDataset):
    """A measurement: training samples per second of `job` through the runner, from start to end."""

    def measure() -> float:
        start = time.perf_counter()
        run_job(job, None, NullTracker(), progress=False, dataset=dataset)
        batch = job.config.batch_size
        return dataset.num_train // batch * batch / (time.perf_counter() - start)

    return measure


def busy_time(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of (start, end) intervals: time during which at least one ran."""
    busy, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy


def gpu_usage(measure: Callable[[], float], device: torch.device) -> dict:
    """One more run of `measure` on CUDA: the fraction of it during which the GPU ran a kernel or a
    copy (the union of their intervals in a profiler trace over the span from the first to the last;
    the profiler slows the host a little, so this errs low), and the peak of allocated memory (GiB).
    Empty on the CPU."""
    if device.type != "cuda":
        return {}
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        measure()
        torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    intervals = [
        (e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == DeviceType.CUDA
    ]
    span = max(end for _, end in intervals) - min(start for start, _ in intervals) if intervals else 0.0
    return dict(gpu_busy_frac=busy_time(intervals) / span if span else None, peak_mem_gib=peak)
