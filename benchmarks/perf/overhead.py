"""`perf overhead`: samples/s of `bp` through the runner vs a minimal hand-written PyTorch loop,
both on the job's device."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from models import build_model

from ..engine.rank import configure_cuda, configure_threads
from .common import (
    BATCH,
    PerfOptions,
    cifar10_or_synthetic,
    interleaved,
    one_epoch_job,
    perf_device,
    perf_width,
    register_perf,
    runner_rate,
)

STEPS = 24
CUDA_STEPS = 300  # ~3 s per side on a GPU: model building and evaluation are then not the measurement


@register_perf("overhead")
def perf_overhead(options: PerfOptions) -> dict:
    """Both sides train the same fresh ResNet-18 (width 0.25 on a CPU, full width on a GPU) on the
    same batches for STEPS steps, on the same device, with the same cuDNN and TF32 settings.

    Each side's time runs from building the model to its last step (on a GPU, to the end of its
    kernels), measured outside the code it times; the runner's side also includes its epoch-end
    evaluation (on 32 images) and its bookkeeping. MLflow is not timed (a NullTracker): it writes
    once per epoch, not per step.
    """
    device = perf_device()
    width = perf_width(device)
    steps = options.steps or (CUDA_STEPS if device.type == "cuda" else STEPS)
    dataset = cifar10_or_synthetic(options.data_dir, BATCH * steps, 32)
    job = one_epoch_job("bp", width=width)
    configure_threads(job.config, 1)
    configure_cuda(job.config)
    samples = BATCH * steps
    runner = runner_rate(job, dataset)

    def hand_written() -> float:
        start = time.perf_counter()
        torch.manual_seed(job.seed)
        model = build_model("resnet18", dataset.spec, width).to(device, memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        for inputs, targets in dataset.train_batches(0, BATCH, job.seed, device):
            loss = F.cross_entropy(model(inputs.contiguous(memory_format=torch.channels_last)), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return samples / (time.perf_counter() - start)

    result = interleaved(runner, hand_written, options.reps)
    return dict(
        name="overhead",
        a_name="bp via runner",
        b_name="hand-written loop",
        **result,
        data=dataset.source,
        model=f"resnet18 width {width}",
        batch_size=BATCH,
        steps=steps,
        device=str(device),
    )
