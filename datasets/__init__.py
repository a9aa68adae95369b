"""The data layer: a registry of datasets, each served as device-resident batches.

`load_dataset(name, data_dir)` returns a `Dataset` (see `datasets.base`); `synthetic_like=True`
returns synthetic data in the named dataset's shape (classes, image size or token sequences),
for smoke runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from benchmarks.errors import did_you_mean

from .base import Batch, Dataset, TensorImageDataset
from .cache import PROJECT_ROOT
from .cifar import load_cifar
from .imagenet import ImageFolderDataset, imagenet_root, load_imagenet
from .imdb import TokenBatch, TokenDataset, load_imdb, synthetic_tokens
from .synthetic import synthetic_images

__all__ = [
    "Batch", "Dataset", "TensorImageDataset", "TokenBatch", "TokenDataset", "DATASETS", "load_dataset",
    "resolve_data_dir",
]  # fmt: skip


def resolve_data_dir(cli_value: str | None = None) -> Path:
    """--data-dir > $BENCH_DATA_DIR > datasets/cache/."""
    return Path(cli_value or os.environ.get("BENCH_DATA_DIR") or PROJECT_ROOT / "datasets" / "cache")


# name -> (loader(data_dir, seq_len) -> Dataset, its smoke stand-in's factory(data_dir))
DATASETS: dict[str, tuple[Callable[..., Dataset], Callable[[Path], Dataset]]] = {}


def register_dataset(name: str, synthetic: Callable[[Path], Dataset]):
    """Decorator: register `loader(data_dir, seq_len) -> Dataset` under `name`, with a synthetic stand-in."""

    def wrap(loader):
        DATASETS[name] = (loader, synthetic)
        return loader

    return wrap


@register_dataset("cifar10", synthetic=lambda _: synthetic_images(num_classes=10, image_size=32))
def cifar10(data_dir: Path, seq_len: int = 0) -> Dataset:
    """CIFAR-10 (50k/10k, 32x32, 10 classes)."""
    return load_cifar("cifar10", data_dir)


@register_dataset("cifar100", synthetic=lambda _: synthetic_images(num_classes=100, image_size=32))
def cifar100(data_dir: Path, seq_len: int = 0) -> Dataset:
    """CIFAR-100 (50k/10k, 32x32, 100 classes)."""
    return load_cifar("cifar100", data_dir)


@register_dataset("imdb", synthetic=lambda _: synthetic_tokens(num_classes=2, vocab_size=1000))
def imdb_reviews(data_dir: Path, seq_len: int = 0) -> Dataset:
    """IMDb sentiment (25k/25k reviews, 2 classes) as token sequences; `seq_len` keeps the last tokens."""
    return load_imdb(data_dir, seq_len)


def imagenet_smoke(data_dir: Path) -> Dataset:
    """Smoke ImageNet: 512/128 evenly spread images of the real tree where there is one (so a smoke
    run exercises the streaming loader), else synthetic 224 px images of 1000 classes."""
    if (data_dir / "imagenet" / "train").is_dir():
        return ImageFolderDataset("imagenet", imagenet_root(data_dir), limit=(512, 128))
    return synthetic_images(num_classes=1000, image_size=224, num_train=512, num_test=128)


@register_dataset("imagenet", synthetic=imagenet_smoke)
def imagenet_folder(data_dir: Path, seq_len: int = 0) -> Dataset:
    """ImageNet-1k from an ImageFolder tree (train/, val/), streamed through DataLoader workers."""
    return load_imagenet(data_dir)


@register_dataset("synthetic", synthetic=lambda _: synthetic_images())
def synthetic(data_dir: Path, seq_len: int = 0) -> Dataset:
    """Generated 32x32 images with a class signal, no files."""
    return synthetic_images()


def load_dataset(name: str, data_dir: Path, synthetic_like: bool = False, seq_len: int = 0) -> Dataset:
    """Dataset `name` from `data_dir`; or, with `synthetic_like`, its smoke stand-in (synthetic data
    in its shape; for ImageNet a tiny subset of the tree where there is one).

    `seq_len` caps token sequences (0: the dataset's own length); image datasets ignore it.
    """
    if name not in DATASETS:
        raise did_you_mean("dataset", name, DATASETS)
    loader, synthetic_factory = DATASETS[name]
    if synthetic_like:
        dataset = synthetic_factory(data_dir)
        dataset.name = name
        return dataset
    return loader(data_dir, seq_len)
