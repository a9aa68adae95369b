"""What the perf benchmarks share: the data they measure on."""

from __future__ import annotations

import logging

from datasets import TensorImageDataset, load_dataset, resolve_data_dir
from datasets.synthetic import synthetic_images

from ..errors import DataMissingError

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
