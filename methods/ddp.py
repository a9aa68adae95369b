"""`ddp`: synchronous data parallel SGD (MB-SGD), torch DistributedDataParallel.

Each rank trains on its shard with the spec's per-rank batch; gradients are averaged by DDP's
all-reduce every step, so the replicas stay identical (000 A.2's baseline, 002's MB-SGD).
BatchNorm buffers are broadcast from rank 0 at every forward (DDP's default).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from .base import Method, register_method
from .optim import lr_at, make_optimizer, set_lr
from .update_exchange import replica_drift


@register_method("ddp")
class DataParallel(Method):
    """DistributedDataParallel over `--devices N` processes (on one process: plain backprop)."""

    summary = "synchronous data parallel (MB-SGD): DistributedDataParallel, gradients all-reduced each step"
    max_devices = None

    def train(self, job, ctx) -> None:
        cfg, model = job.config, ctx.model
        if ctx.world > 1:
            device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            model = DistributedDataParallel(ctx.model, device_ids=device_ids)
        optimizer = make_optimizer(model.parameters(), cfg)
        steps = ctx.steps_per_epoch
        for epoch in ctx.epochs():
            meter = ctx.meter()
            for step, (inputs, targets) in enumerate(ctx.train_batches(epoch)):
                set_lr(optimizer, lr_at(epoch + step / steps, cfg))
                logits = model(inputs)
                loss = F.cross_entropy(logits, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                meter.add(loss, logits, targets)
            extra = {"replica_drift": replica_drift(ctx.model)} if ctx.world > 1 else None
            ctx.end_epoch(meter, ctx.model, extra=extra)
