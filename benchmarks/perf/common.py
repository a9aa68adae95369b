"""What the perf benchmarks share: the data they measure on, the job they time, how they time it."""

from __future__ import annotations

import logging
import time

from datasets import TensorImageDataset, load_dataset, resolve_data_dir
from datasets.synthetic import synthetic_images
from methods import NoConfig

from ..config import TrainConfig
from ..errors import DataMissingError
from ..runner import Job, run_job
from ..tracking import NullTracker

BATCH, WIDTH = 128, 0.25  # the quick profile's ResNet-18
LSTM_BATCH, LSTM_SEQ_LEN = 64, 400  # the quick profile's IMDb LSTM (width 0.25: 2x64, 400 tokens)

log = logging.getLogger(__name__)


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
    method: str, threads: int = 0, method_config=None, kind: str = "train", model: str = "resnet18"
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
    return Job(
        table="perf",
        dataset="imdb" if lstm else "cifar10",
        model=model,
        method=method,
        profile="quick",
        config=config,
        method_config=method_config or NoConfig(),
        kind=kind,
    )


def runner_rate(job: Job, dataset: TensorImageDataset):
    """A measurement: training samples per second of `job` through the runner, from start to end."""

    def measure() -> float:
        start = time.perf_counter()
        run_job(job, None, NullTracker(), progress=False, dataset=dataset)
        batch = job.config.batch_size
        return dataset.num_train // batch * batch / (time.perf_counter() - start)

    return measure
