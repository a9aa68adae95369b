"""`perf pipeline`: images/s of the tensor batch pipeline vs torchvision Dataset + DataLoader + transforms."""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import VisionDataset

from .common import PerfOptions, cifar10_or_synthetic, interleaved, register_perf

BATCH, IMAGES = 128, 128 * 120


class ArrayCIFAR(VisionDataset):
    """What torchvision.datasets.CIFAR10 does per sample: HWC uint8 array -> PIL image -> transforms."""

    def __init__(self, images: np.ndarray, labels: list[int], transform):
        super().__init__(root="", transform=transform)
        self.data, self.targets = images, labels

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.data[index])), self.targets[index]


@register_perf("pipeline")
def perf_pipeline(options: PerfOptions) -> dict:
    """Both sides produce shuffled, randomly cropped (pad 4), flipped, normalised float batches of 128."""
    images = BATCH * (options.steps or IMAGES // BATCH)
    dataset = cifar10_or_synthetic(options.data_dir, images, 1)
    device = torch.device("cpu")
    workers = os.cpu_count() or 1
    reference = ArrayCIFAR(
        dataset.tensors.train_x.permute(0, 2, 3, 1).numpy(),
        dataset.tensors.train_y.tolist(),
        transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(dataset.mean, dataset.std),
            ]
        ),
    )
    loader = DataLoader(
        reference,
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=True,
    )
    epoch = [0]

    def tensor_pipeline() -> float:
        epoch[0] += 1
        start, n = time.perf_counter(), 0
        for inputs, _ in dataset.train_batches(epoch[0], BATCH, 0, device):
            n += len(inputs)
        return n / (time.perf_counter() - start)

    def torchvision_loader() -> float:
        start, n = time.perf_counter(), 0
        for inputs, _ in loader:
            n += len(inputs)
        return n / (time.perf_counter() - start)

    result = interleaved(tensor_pipeline, torchvision_loader, options.reps)
    return dict(
        name="pipeline",
        a_name="tensor pipeline",
        b_name=f"torchvision DataLoader ({workers} workers)",
        **result,
        data=dataset.source,
        images_per_rep=images,
        batch_size=BATCH,
    )
