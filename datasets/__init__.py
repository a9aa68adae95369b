"""The data layer: a registry of datasets, each served as device-resident batches.

`load_dataset(name, data_dir)` returns a `Dataset` (see `datasets.base`); `synthetic_like=True`
returns synthetic data in the named dataset's shape (classes, image size or token sequences),
for smoke runs. Each module registers its own datasets (`@register_dataset`) and every module is
imported, so a new dataset is one new file.
"""

import sys

from core.registry import import_modules

from .base import Batch, Dataset, TensorImageDataset
from .imdb import TokenBatch, TokenDataset
from .registry import DATASETS, load_dataset, register_dataset, resolve_data_dir

import_modules(sys.modules[__name__])

__all__ = [
    "Batch", "Dataset", "TensorImageDataset", "TokenBatch", "TokenDataset", "DATASETS", "load_dataset",
    "register_dataset", "resolve_data_dir",
]  # fmt: skip
