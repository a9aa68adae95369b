"""The data layer: a registry of datasets, each served as device-resident batches.

`load_dataset(name, data_dir)` returns a `Dataset` (see `datasets.base`); `synthetic_like=True`
returns synthetic data in the named dataset's shape (classes, image size), for smoke runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from benchmarks.errors import did_you_mean

from .base import Batch, Dataset, TensorImageDataset
from .cache import PROJECT_ROOT
from .cifar import load_cifar
from .synthetic import synthetic_images

__all__ = ["Batch", "Dataset", "TensorImageDataset", "DATASETS", "load_dataset", "resolve_data_dir"]


def resolve_data_dir(cli_value: str | None = None) -> Path:
    """--data-dir > $BENCH_DATA_DIR > datasets/cache/."""
    return Path(cli_value or os.environ.get("BENCH_DATA_DIR") or PROJECT_ROOT / "datasets" / "cache")


# name -> (loader(data_dir) -> Dataset, shape of its synthetic stand-in)
DATASETS: dict[str, tuple[Callable[[Path], Dataset], dict]] = {}


def register_dataset(name: str, **synthetic_shape):
    """Decorator: register `loader(data_dir) -> Dataset` under `name`."""

    def wrap(loader):
        DATASETS[name] = (loader, synthetic_shape)
        return loader

    return wrap


@register_dataset("cifar10", num_classes=10, image_size=32)
def cifar10(data_dir: Path) -> Dataset:
    """CIFAR-10 (50k/10k, 32x32, 10 classes)."""
    return load_cifar("cifar10", data_dir)


@register_dataset("cifar100", num_classes=100, image_size=32)
def cifar100(data_dir: Path) -> Dataset:
    """CIFAR-100 (50k/10k, 32x32, 100 classes)."""
    return load_cifar("cifar100", data_dir)


@register_dataset("synthetic", num_classes=10, image_size=32)
def synthetic(data_dir: Path) -> Dataset:
    """Generated 32x32 images with a class signal, no files."""
    return synthetic_images()


def load_dataset(name: str, data_dir: Path, synthetic_like: bool = False) -> Dataset:
    """Dataset `name` from `data_dir`; or, with `synthetic_like`, synthetic data in its shape."""
    if name not in DATASETS:
        raise did_you_mean("dataset", name, DATASETS)
    loader, shape = DATASETS[name]
    if synthetic_like:
        dataset = synthetic_images(**shape)
        dataset.name = name
        return dataset
    return loader(data_dir)
