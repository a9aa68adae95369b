"""The dataset registry (`@register_dataset("name", synthetic=...)` on a loader) and where data lives."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from core.registry import Registry

from .base import Dataset
from .cache import PROJECT_ROOT

Loader = Callable[[Path, int], Dataset]  # (data_dir, seq_len) -> Dataset
Synthetic = Callable[[Path, int], Dataset]  # (data_dir, seq_len) -> the smoke stand-in
# name -> (loader, its smoke stand-in's factory)
DATASETS: Registry[tuple[Loader, Synthetic]] = Registry("dataset")


def register_dataset(name: str, synthetic: Synthetic):
    """Decorator: register `loader(data_dir, seq_len) -> Dataset` under `name`, with a synthetic stand-in."""

    def wrap(loader: Loader) -> Loader:
        DATASETS.add(name, (loader, synthetic))
        return loader

    return wrap


_looking_only = False  # inside `looking_only()`: nothing is downloaded


@contextmanager
def looking_only() -> Iterator[None]:
    """Inside: a missing dataset is reported missing, never downloaded (`doctor`, a dry run)."""
    global _looking_only
    before, _looking_only = _looking_only, True
    try:
        yield
    finally:
        _looking_only = before


def downloads_allowed() -> bool:
    """Whether a missing dataset may be downloaded: not inside `looking_only()`, nor where the user
    set BENCH_DOWNLOAD=0 (a machine that must not fetch)."""
    return not _looking_only and os.environ.get("BENCH_DOWNLOAD", "1") != "0"


def resolve_data_dir(cli_value: str | None = None) -> Path:
    """--data-dir > $BENCH_DATA_DIR > datasets/cache/."""
    return Path(cli_value or os.environ.get("BENCH_DATA_DIR") or PROJECT_ROOT / "datasets" / "cache")


def load_dataset(name: str, data_dir: Path, synthetic_like: bool = False, seq_len: int = 0) -> Dataset:
    """Dataset `name` from `data_dir`; or, with `synthetic_like`, its smoke stand-in (synthetic data
    in its shape; for ImageNet a tiny subset of the tree where there is one).

    `seq_len` caps token sequences (0: the dataset's own length); image datasets ignore it.
    """
    loader, synthetic_factory = DATASETS.lookup(name)
    if synthetic_like:
        dataset = synthetic_factory(data_dir, seq_len)
        dataset.name = name
        return dataset
    return loader(data_dir, seq_len)
