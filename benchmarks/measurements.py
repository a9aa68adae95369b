"""Measurements that tables run instead of a training method (Table 9's forward/backward timing)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class TimingConfig:
    """How many batches Table 9's timing measures, after how many warm-up batches."""

    batches: int = 10
    warmup: int = 2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward_backward(job, ctx) -> dict:
    """Table 9: seconds per forward pass (to the loss) and per backward pass, in training mode.

    Every pass is timed on its own, with the device synchronised at both ends, over
    `batches` batches after `warmup`; β = backward / forward is the paper's speed-up bound's input.
    """
    cfg: TimingConfig = job.method_config
    model, device = ctx.model, ctx.device
    forward, backward = [], []
    total, epoch = cfg.warmup + cfg.batches, 0
    while len(forward) < total and ctx.stop_reason is None:
        for inputs, targets in ctx.train_batches(epoch):
            _sync(device)
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(inputs), targets)
            _sync(device)
            t1 = time.perf_counter()
            loss.backward()
            _sync(device)
            t2 = time.perf_counter()
            model.zero_grad(set_to_none=True)
            forward.append(t1 - t0)
            backward.append(t2 - t1)
            if len(forward) == total:
                break
        epoch += 1
    ctx.clock.pause()
    forward, backward = forward[cfg.warmup :], backward[cfg.warmup :]
    result = dict(
        forward_s=statistics.mean(forward),
        forward_s_std=statistics.pstdev(forward),
        backward_s=statistics.mean(backward),
        backward_s_std=statistics.pstdev(backward),
    )
    result["beta"] = result["backward_s"] / result["forward_s"]
    ctx.tracker.log_metrics(ctx.run_id, {**result, "batches": len(forward)}, step=0)
    ctx.stop_reason = "measured"
    return result


MEASUREMENTS = {"fwd_bwd_timing": time_forward_backward}
