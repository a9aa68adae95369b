"""What the perf benchmarks share: the registry, how they time (interleaved), the data they measure
on and the job they time."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable

from core.config import TrainConfig
from core.errors import DataMissingError
from core.job import Job
from core.registry import Registry
from datasets import TensorImageDataset, load_dataset, resolve_data_dir
from datasets.synthetic import synthetic_images

from ..jobs import build_job
from ..runner import run_job
from ..tracking import NullTracker

BATCH, WIDTH = 128, 0.25  # the quick profile's ResNet-18
LSTM_BATCH, LSTM_SEQ_LEN = 64, 400  # the quick profile's IMDb LSTM (width 0.25: 2x64, 400 tokens)

log = logging.getLogger(__name__)

PerfBenchmark = Callable[..., dict]  # (args: argparse.Namespace) -> the result object
PERF: Registry[PerfBenchmark] = Registry("perf benchmark")


def register_perf(name: str, default_reps: int = 9) -> Callable[[PerfBenchmark], PerfBenchmark]:
    """Decorator: register a benchmark `(args) -> dict` as `perf NAME`, with its default repetitions."""

    def wrap(benchmark: PerfBenchmark) -> PerfBenchmark:
        benchmark.default_reps = default_reps
        return PERF.add(name, benchmark)

    return wrap


def interleaved(a: Callable[[], float], b: Callable[[], float], reps: int) -> dict:
    """Run a and b (each returns items/s) alternately `reps` times after one warm-up each.

    The order alternates (A B, B A, A B, ...) so that a steady drift of the machine's speed
    favours neither side; each repetition's ratio compares two adjacent measurements.
    """
    a(), b()
    a_rates, b_rates = [], []
    for rep in range(reps):
        if rep % 2 == 0:
            a_rates.append(a())
            b_rates.append(b())
        else:
            b_rates.append(b())
            a_rates.append(a())
    ratios = [x / y for x, y in zip(a_rates, b_rates, strict=True)]
    return dict(
        a_per_s=statistics.median(a_rates),
        b_per_s=statistics.median(b_rates),
        ratio=statistics.median(ratios),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
        reps=reps,
    )


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


def one_epoch_job(
    method: str, threads: int = 0, method_config=None, model: str = "resnet18", devices: int = 1
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
        width=WIDTH,
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
