"""`perf loader`: images/s of the ImageNet loader alone (JPEG decode, augmentation), workers vs none."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from core.errors import DataMissingError
from datasets import resolve_data_dir
from datasets.imagenet import ImageFolderDataset, default_workers, imagenet_root, write_synthetic_imagefolder

from .common import PerfOptions, interleaved, register_perf

BATCH = 64
SIZE = (500, 375)  # the typical ImageNet photo


@register_perf("loader", default_reps=3)
def perf_loader(options: PerfOptions) -> dict:
    """One pass over a tree's training batches (random-resized crop 224, flip, normalise) per repetition.

    A (`workers`): DataLoader worker processes, every core up to 8 (what training uses);
    B: the same loader with no workers (decoding in the training process). Measured on
    `<data dir>/imagenet` where there is one (at most `--steps` batches of it), else on a synthetic
    tree of real JPEG files (500x375, 16 classes) written to a temporary folder.
    """
    steps = options.steps or 8
    with tempfile.TemporaryDirectory() as tmp:
        try:
            root, source = imagenet_root(resolve_data_dir(options.data_dir)), "imagenet"
        except DataMissingError:  # no ImageNet here: a synthetic tree of real JPEGs
            per_class = BATCH * steps // 16
            root = write_synthetic_imagefolder(Path(tmp), 16, per_class, 2, size=SIZE) / "imagenet"
            source = f"synthetic tree: 16 classes x {per_class} JPEGs of {SIZE[0]}x{SIZE[1]}"
        limit = (BATCH * steps, 32)
        parallel = ImageFolderDataset("imagenet", root, limit=limit)
        serial = ImageFolderDataset("imagenet", root, limit=limit, workers=0)
        device = torch.device("cpu")

        def rate(dataset: ImageFolderDataset):
            def measure() -> float:
                start, images = time.perf_counter(), 0
                for x, _ in dataset.train_batches(0, BATCH, 0, device):
                    images += len(x)
                return images / (time.perf_counter() - start)

            return measure

        result = interleaved(rate(parallel), rate(serial), options.reps)
    return dict(
        name="loader",
        a_name=f"DataLoader with {parallel.workers} workers",
        b_name="DataLoader without workers",
        **result,
        workers=parallel.workers,
        images_per_rep=BATCH * steps,
        batch_size=BATCH,
        data=source,
        default_workers=default_workers(),
    )
