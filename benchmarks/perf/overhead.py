"""`perf overhead`: samples/s of `bp` through the runner vs a minimal hand-written PyTorch loop."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from models import build_model

from ..rank import configure_threads
from .common import BATCH, WIDTH, cifar10_or_synthetic, interleaved, one_epoch_job, register_perf, runner_rate

STEPS = 24


@register_perf("overhead")
def perf_overhead(args) -> dict:
    """Both sides train the same fresh ResNet-18 (width 0.25) on the same batches for STEPS steps.

    Each side's time runs from building the model to its last step, measured outside the code
    it times; the runner's side also includes its epoch-end evaluation (on 32 images) and its
    bookkeeping. MLflow is not timed (a NullTracker): it writes once per epoch, not per step.
    """
    steps = args.steps or STEPS
    dataset = cifar10_or_synthetic(args.data_dir, BATCH * steps, 32)
    job = one_epoch_job("bp")
    configure_threads(job.config, 1)
    device = torch.device("cpu")
    samples = BATCH * steps
    runner = runner_rate(job, dataset)

    def hand_written() -> float:
        start = time.perf_counter()
        torch.manual_seed(job.seed)
        model = build_model("resnet18", dataset.spec, WIDTH).to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        for inputs, targets in dataset.train_batches(0, BATCH, job.seed, device):
            loss = F.cross_entropy(model(inputs.contiguous(memory_format=torch.channels_last)), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return samples / (time.perf_counter() - start)

    result = interleaved(runner, hand_written, args.reps)
    return dict(
        name="overhead",
        a_name="bp via runner",
        b_name="hand-written loop",
        **result,
        data=dataset.source,
        model=f"resnet18 width {WIDTH}",
        batch_size=BATCH,
        steps=steps,
    )
