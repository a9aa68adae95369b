"""Synthetic images with a learnable class signal: for smoke runs, tests and timing, no files needed."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .base import ImageTensors, TensorImageDataset
from .registry import register_dataset

# Training samples of a synthetic stand-in (smoke runs): 16 batches of 64 an epoch, a few seconds.
SMOKE_TRAIN = 1024


def make_images(n: int, prototypes: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n uint8 images: a random class's smooth prototype plus pixel noise."""
    labels = torch.randint(0, len(prototypes), (n,), generator=gen)
    noise = torch.randn((n, *prototypes.shape[1:]), generator=gen) * 40.0
    images = (prototypes[labels] + noise).clamp(0, 255).to(torch.uint8)
    return images, labels


def synthetic_images(
    num_classes: int = 10,
    image_size: int = 32,
    num_train: int = SMOKE_TRAIN,
    num_test: int = 512,
    seed: int = 0,
) -> TensorImageDataset:
    """A dataset shaped like CIFAR (or ImageNet) whose classes are separable but not trivially."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand((num_classes, 3, 4, 4), generator=gen) * 255.0
    prototypes = F.interpolate(coarse, size=(image_size, image_size), mode="bilinear", align_corners=False)
    train_x, train_y = make_images(num_train, prototypes, gen)
    test_x, test_y = make_images(num_test, prototypes, gen)
    tensors = ImageTensors(train_x, train_y, test_x, test_y, [f"class{i}" for i in range(num_classes)])
    return TensorImageDataset(
        "synthetic", tensors, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), source="synthetic"
    )


@register_dataset("synthetic", synthetic=lambda _dir, _len: synthetic_images())
def synthetic(data_dir: Path, seq_len: int = 0) -> TensorImageDataset:
    """Generated 32x32 images with a class signal, no files."""
    return synthetic_images()
