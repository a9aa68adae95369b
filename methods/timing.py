"""`fwd_bwd_timing`: Table 9's measurement, the time of a forward and of a backward pass per batch.

Not a training method: it runs the model's forward and backward passes (no update) and records
their mean times; the tables that need β (Table 9, `perf async`) run it like any method.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.context import TrainContext
from core.errors import UserError

from .common.base import Method, register_method


@dataclass(frozen=True)
class TimingConfig:
    """How many batches Table 9's timing measures, after how many warm-up batches."""

    batches: int = 10
    warmup: int = 2

    def validate(self) -> None:
        """Reject counts that measure nothing, with one line naming the key."""
        if self.batches < 1:
            raise UserError(f"batches must be >= 1, got {self.batches}")
        if self.warmup < 0:
            raise UserError(f"warmup must be >= 0, got {self.warmup}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@register_method("fwd_bwd_timing")
class ForwardBackwardTiming(Method):
    """Table 9: seconds per forward pass (to the loss) and per backward pass, in training mode."""

    summary = "Table 9's measurement: seconds per forward and per backward pass (no update), and β"
    Config = TimingConfig
    measures = True

    def train(self, ctx: TrainContext) -> None:
        """Time every pass on its own, with the device synchronised at both ends, over `batches`
        batches after `warmup`; β = backward / forward is the paper's speed-up bound's input."""
        cfg: TimingConfig = ctx.method_config
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
        forward, backward = forward[cfg.warmup :], backward[cfg.warmup :]
        result = dict(
            forward_s=statistics.mean(forward),
            forward_s_std=statistics.pstdev(forward),
            backward_s=statistics.mean(backward),
            backward_s_std=statistics.pstdev(backward),
        )
        result["beta"] = result["backward_s"] / result["forward_s"]
        ctx.record({**result, "batches": len(forward)})
        ctx.request_stop("measured")
