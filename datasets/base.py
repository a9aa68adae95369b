"""The data layer's interface and the tensor-resident image dataset with batched augmentation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.inputs import InputSpec
from core.metric import ACCURACY, Metric

Batch = tuple[object, torch.Tensor]
"""(inputs, targets): inputs is whatever the model's forward takes (a tensor, or a tuple for sequences)."""


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator for one epoch's shuffling and augmentation: the same on every device and rank."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def shard(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank `rank`'s equal, contiguous part of `indices` (the remainder is dropped so steps match)."""
    per_rank = len(indices) // world
    return indices[rank * per_rank : (rank + 1) * per_rank]


class Dataset:
    """What methods consume: batches of (inputs, targets) on a device, per epoch and per shard.

    Tensor-resident datasets (CIFAR, synthetic, IMDb) and streamed ones (ImageNet) implement the
    same three calls, so methods never special-case a dataset.
    """

    name: str
    spec: InputSpec
    num_train: int
    num_test: int
    source: str  # where the data came from (a path, or "synthetic"), logged as a run param
    metric: Metric = ACCURACY  # the task's held-out metric (core/metric.py): early stopping reads it

    def steps_per_epoch(self, batch_size: int, world: int = 1, keep_partial: bool = False) -> int:
        """Optimizer steps per epoch for one of `world` shards.

        The last partial batch is dropped, unless `keep_partial` (as a DataLoader's default
        drop_last=False does): it is then the position after the full batches.
        """
        per_rank = self.num_train // world
        return -(-per_rank // batch_size) if keep_partial else per_rank // batch_size

    def train_batches(
        self,
        epoch: int,
        batch_size: int,
        seed: int,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
        positions: Iterable[int] | None = None,
    ) -> Iterator[Batch]:
        """Shuffled, augmented training batches of epoch `epoch` for shard `rank` of `world`.

        `positions` (default: every full batch in order) picks which batches of the epoch's seeded
        order to yield, one per value: Hogwild!-style workers draw them from a shared counter. The
        position after the full batches is the partial batch of the remaining samples, if any.
        """
        raise NotImplementedError

    def test_batches(self, batch_size: int, device: torch.device) -> Iterator[Batch]:
        """The whole test split in order, without augmentation."""
        raise NotImplementedError

    def held_out(self, loss: float, accuracy: float) -> dict[str, float]:
        """The metrics an evaluation logs, from its mean loss per target and accuracy (a language
        model adds bits per byte); the workload's `metric` is one of them."""
        return dict(test_loss=loss, test_acc=accuracy)


class Normalise:
    """uint8 NCHW -> normalised float32: (x / 255 - mean) / std = x * scale + shift, one conversion
    then an in-place multiply and add per batch (scale and shift copied to each device once)."""

    def __init__(self, mean, std):
        std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        scale = 1.0 / (255.0 * std_t)
        shift = -torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) / std_t
        self.on_device = {torch.device("cpu"): (scale, shift)}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.device not in self.on_device:
            self.on_device[x.device] = tuple(t.to(x.device) for t in self.on_device[torch.device("cpu")])
        scale, shift = self.on_device[x.device]
        return x.float().mul_(scale).add_(shift)


@dataclass
class ImageTensors:
    """A decoded image split pair as uint8 NCHW tensors with int64 labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]


class TensorImageDataset(Dataset):
    """Images held as one uint8 tensor; shuffling, random crop (pad 4), flip and normalisation
    are done on whole batches on the target device, with no PIL and no per-sample Python."""

    def __init__(
        self, name: str, tensors: ImageTensors, mean, std, source: str, augment: bool = True, pad: int = 4
    ):
        self.name, self.source, self.augment, self.pad = name, source, augment, pad
        self.mean, self.std = tuple(mean), tuple(std)
        self.tensors = tensors
        self.classes = tensors.classes
        self.num_train, self.num_test = len(tensors.train_y), len(tensors.test_y)
        self.spec = InputSpec(num_classes=len(tensors.classes), image_size=tensors.train_x.shape[-1])
        self.normalise = Normalise(mean, std)
        self._device_copies: dict[torch.device, ImageTensors] = {}

    def subset(self, num_train: int, num_test: int) -> TensorImageDataset:
        """The first `num_train` training and `num_test` test images, as a dataset of their own."""
        t = self.tensors
        part = ImageTensors(
            t.train_x[:num_train], t.train_y[:num_train], t.test_x[:num_test], t.test_y[:num_test], t.classes
        )
        return TensorImageDataset(self.name, part, self.mean, self.std, self.source, self.augment, self.pad)

    def _on(self, device: torch.device) -> ImageTensors:
        """The uint8 tensors on `device`, copied there once (150 MB for CIFAR: fits any GPU)."""
        device = torch.device(device)
        if device.type == "cpu":
            return self.tensors
        if device not in self._device_copies:
            t = self.tensors
            self._device_copies[device] = ImageTensors(
                *(x.to(device) for x in (t.train_x, t.train_y, t.test_x, t.test_y)), t.classes
            )
        return self._device_copies[device]

    def crop_and_flip(self, x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """Random crop of the zero-padded batch and horizontal flip, as one gather over the batch.

        Each output pixel (i, j) of image b reads padded pixel (oy_b + i, ox_b + j), or column
        ox_b + (w - 1 - j) when b is flipped. torch.gather on flat indices is 3x faster here than
        the equivalent four-tensor advanced indexing.
        """
        n, c, h, w = x.shape
        pad = self.pad
        padded = F.pad(x, (pad,) * 4).flatten(2)  # [n, c, (h + 2 pad) (w + 2 pad)]
        ar_h = torch.arange(h, device=x.device)
        ar_w = torch.arange(w, device=x.device)
        rows = offsets[:, 0:1] + ar_h  # [n, h]
        cols = torch.where(flips[:, None], offsets[:, 1:2] + (w - 1) - ar_w, offsets[:, 1:2] + ar_w)  # [n, w]
        flat = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).flatten(1)  # [n, h w]
        return padded.gather(2, flat[:, None, :].expand(-1, c, -1)).view(n, c, h, w)

    def train_batches(self, epoch, batch_size, seed, device, rank=0, world=1, positions=None):
        data = self._on(device)
        gen = epoch_generator(seed, epoch)
        order = shard(torch.randperm(self.num_train, generator=gen), rank, world)
        # All of the epoch's augmentation draws at once, from the same generator: deterministic.
        offsets = torch.randint(0, 2 * self.pad + 1, (len(order), 2), generator=gen)
        flips = torch.rand(len(order), generator=gen) < 0.5
        order, offsets, flips = (t.to(data.train_x.device) for t in (order, offsets, flips))
        if positions is None:
            positions = range(len(order) // batch_size)
        for position in positions:
            start = position * batch_size
            idx = order[start : start + batch_size]
            x = data.train_x[idx]
            if self.augment:
                x = self.crop_and_flip(
                    x, offsets[start : start + batch_size], flips[start : start + batch_size]
                )
            yield self.normalise(x), data.train_y[idx]

    def test_batches(self, batch_size, device):
        data = self._on(device)
        for start in range(0, self.num_test, batch_size):
            yield (
                self.normalise(data.test_x[start : start + batch_size]),
                data.test_y[start : start + batch_size],
            )
