"""ImageNet-1k from an ImageFolder tree, streamed from disk through a DataLoader with worker processes.

Layout: `<data dir>/imagenet/train/<wnid>/*.JPEG` and `<data dir>/imagenet/val/<wnid>/*.JPEG` (the
usual layout after sorting the validation images into class folders). Too large to hold in memory,
so unlike CIFAR and IMDb it is decoded per epoch: DataLoader workers read and augment each image
(train: random-resized crop 224 and horizontal flip; eval: resize 256 and centre crop 224) and
hand back uint8 tensors (a quarter of float32's bytes between processes; pinned on CUDA), which
are normalised on the training device in one fused multiply-add per batch. The shuffling and the
workers' augmentation seeds come from the epoch's seeded generator, as for the other datasets.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from core.errors import DataMissingError
from core.inputs import InputSpec

from .base import Dataset, Normalise, epoch_generator, shard
from .registry import register_dataset
from .synthetic import synthetic_images

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_SIZE, RESIZE = 224, 256


def default_workers() -> int:
    """DataLoader workers: every core up to 8 (inside a daemon process `_loader` uses none)."""
    return min(8, os.cpu_count() or 1)


class BatchPositions:
    """A batch sampler: the sample indices of the chosen batch positions of an epoch's order, lazily."""

    def __init__(self, order: torch.Tensor, batch_size: int, positions: Iterable[int]):
        self.order, self.batch_size, self.positions = order, batch_size, positions

    def __iter__(self) -> Iterator[list[int]]:
        for position in self.positions:
            yield self.order[position * self.batch_size : (position + 1) * self.batch_size].tolist()


class ImageFolderDataset(Dataset):
    """An ImageFolder train/val pair served as normalised device batches through DataLoader workers."""

    def __init__(
        self, name: str, root: Path, limit: tuple[int, int] | None = None, workers: int | None = None
    ):
        from torchvision import transforms
        from torchvision.datasets import ImageFolder

        self.name, self.source, self.root = name, str(root), root
        self.workers = default_workers() if workers is None else workers
        to_uint8 = transforms.PILToTensor()
        train_tf = transforms.Compose(
            [transforms.RandomResizedCrop(IMAGE_SIZE), transforms.RandomHorizontalFlip(), to_uint8]
        )
        eval_tf = transforms.Compose([transforms.Resize(RESIZE), transforms.CenterCrop(IMAGE_SIZE), to_uint8])
        try:
            self.train = ImageFolder(str(root / "train"), transform=train_tf)
            self.val = ImageFolder(str(root / "val"), transform=eval_tf)
        except (FileNotFoundError, OSError) as err:
            raise DataMissingError(
                f"{root}: not an ImageNet folder with train/<wnid>/ and val/<wnid>/ images ({err})"
            ) from None
        unknown = set(self.val.classes) - set(self.train.classes)
        if unknown:
            raise DataMissingError(f"{root / 'val'}: classes {sorted(unknown)[:5]} do not appear in train/")
        # val's labels in train's numbering (a val tree may lack classes: numbering must not shift).
        to_train = [self.train.class_to_idx[c] for c in self.val.classes]
        self.val.samples = [(path, to_train[t]) for path, t in self.val.samples]
        self.val.targets = [t for _, t in self.val.samples]
        if limit is not None:  # a tiny evenly spread subset (smoke runs on a real tree)
            for split, n in zip((self.train, self.val), limit, strict=True):
                step = max(1, len(split.samples) // n)
                split.samples = split.samples[::step][:n]
                split.targets = [t for _, t in split.samples]
        self.num_train, self.num_test = len(self.train.samples), len(self.val.samples)
        self.spec = InputSpec(num_classes=len(self.train.classes), image_size=IMAGE_SIZE)
        self.normalise = Normalise(MEAN, STD)

    def _loader(self, split, batch_sampler, device: torch.device, gen: torch.Generator | None = None):
        from torch.utils.data import DataLoader

        # A daemon process may not have children: lapsgd's Hogwild! workers (daemons, which receive
        # this dataset pickled) decode in their own process. Decided here, not at construction.
        workers = 0 if multiprocessing.current_process().daemon else self.workers
        return DataLoader(
            split,
            batch_sampler=batch_sampler,
            num_workers=workers,
            pin_memory=torch.device(device).type == "cuda",
            generator=gen,  # the workers' augmentation seeds follow the epoch's seed
            prefetch_factor=4 if workers else None,
        )

    def _normalised(self, loader, device: torch.device):
        device = torch.device(device)
        for x, y in loader:  # pinned on CUDA (pin_memory), so the copies can overlap
            yield self.normalise(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)

    def train_batches(self, epoch, batch_size, seed, device, rank=0, world=1, positions=None):
        gen = epoch_generator(seed, epoch)
        order = shard(torch.randperm(self.num_train, generator=gen), rank, world)
        if positions is None:
            positions = range(len(order) // batch_size)
        loader = self._loader(self.train, BatchPositions(order, batch_size, positions), device, gen)
        yield from self._normalised(loader, device)

    def test_batches(self, batch_size, device):
        order = torch.arange(self.num_test)
        batches = BatchPositions(order, batch_size, range((self.num_test + batch_size - 1) // batch_size))
        yield from self._normalised(self._loader(self.val, batches, device), device)


def imagenet_root(data_dir: Path) -> Path:
    """`<data dir>/imagenet`, or exit 1 naming what is missing and how to get it."""
    root = data_dir / "imagenet"
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise DataMissingError(
            f"imagenet not found: {root} must hold train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (ImageNet-1k "
            f"cannot be downloaded automatically: get it from image-net.org, sort val/ into class folders, "
            f"and point --data-dir / BENCH_DATA_DIR at the folder holding imagenet/)"
        )
    return root


def load_imagenet(data_dir: Path) -> ImageFolderDataset:
    """ImageNet-1k (or any ImageFolder pair) under `<data dir>/imagenet`."""
    return ImageFolderDataset("imagenet", imagenet_root(data_dir))


def write_synthetic_imagefolder(
    root: Path,
    classes: int = 4,
    train_per_class: int = 16,
    val_per_class: int = 4,
    size=(320, 256),
    seed: int = 0,
) -> Path:
    """Write real JPEGs in ImageNet's layout (`root/imagenet/{train,val}/<wnid>/*.JPEG`), for tests and perf.

    Each class has its own mean colour plus noise, and the images are larger than 224 px and not
    square, so crops, resizes and decoding do real work. Returns `root`.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            folder = root / "imagenet" / split / f"n{c:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            colour = rng.integers(0, 256, 3)
            for i in range(per_class):
                pixels = np.clip(colour + rng.normal(0, 40, (height, width, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{split}_{c}_{i}.JPEG", quality=85)
    return root


def imagenet_smoke(data_dir: Path) -> Dataset:
    """Smoke ImageNet: 512/128 evenly spread images of the real tree where there is one (so a smoke
    run exercises the streaming loader), else synthetic 224 px images of 1000 classes."""
    if (data_dir / "imagenet" / "train").is_dir():
        return ImageFolderDataset("imagenet", imagenet_root(data_dir), limit=(512, 128))
    return synthetic_images(num_classes=1000, image_size=224, num_train=512, num_test=128)


@register_dataset("imagenet", synthetic=lambda data_dir, _len: imagenet_smoke(data_dir))
def imagenet_folder(data_dir: Path, seq_len: int = 0) -> Dataset:
    """ImageNet-1k from an ImageFolder tree (train/, val/), streamed through DataLoader workers."""
    return load_imagenet(data_dir)
