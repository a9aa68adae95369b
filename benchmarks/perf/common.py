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


def one_epoch_job(method: str, threads: int = 0, method_config=None, kind: str = "train") -> Job:
    """One epoch of the quick ResNet-18 over whatever data it is given, evaluated on a few images."""
    config = TrainConfig(
        batch_size=BATCH,
        lr=0.05,
        weight_decay=5e-4,
        warmup_epochs=0,
        t_max=1,
        max_epochs=1,
        width=WIDTH,
        eval_batch_size=32,
        threads=threads,
    )
    return Job(
        table="perf",
        dataset="cifar10",
        model="resnet18",
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
        return dataset.num_train // BATCH * BATCH / (time.perf_counter() - start)

    return measure
