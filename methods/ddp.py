"""`ddp`: synchronous data parallel SGD (MB-SGD), torch DistributedDataParallel.

Each rank trains on its shard with the spec's per-rank batch; gradients are averaged by DDP's
all-reduce every step (a communication hook puts it on the wire: core/runtime/wire.py), so the
replicas stay identical (000 A.2's baseline, 002's MB-SGD).
BatchNorm buffers are broadcast from rank 0 at every forward (DDP's default).
"""

from __future__ import annotations

from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.config import NoConfig
from core.context import TrainContext
from core.runtime.wire import DdpHookState, ddp_hook

from .bp import Backprop
from .common.base import register_method
from .common.update_exchange import replica_drift


@register_method("ddp")
class DataParallel(Backprop):
    """bp's loop through DistributedDataParallel over `--devices N` processes (one process: bp)."""

    summary = "synchronous data parallel (MB-SGD): DistributedDataParallel, gradients all-reduced each step"
    cost_vs_bp = 1.2  # run claims' prior: wall time / bp's
    max_devices = None
    Config = NoConfig  # not bp's gradient delay: DDP's gradients are this step's

    def trained_module(self, ctx: TrainContext) -> nn.Module:
        if ctx.world == 1:
            return ctx.model
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        module = DistributedDataParallel(ctx.model, device_ids=device_ids)
        module.register_comm_hook(self.hook_state(ctx), ddp_hook)  # DDP's all-reduce, on the wire
        return module

    def hook_state(self, ctx: TrainContext) -> DdpHookState:
        """What the communication hook reads (a subclass may stop the all-reduce after a switch)."""
        return DdpHookState(self.wire)

    def epoch_metrics(self, ctx: TrainContext) -> dict[str, float] | None:
        return {"replica_drift": replica_drift(ctx.model)} if ctx.world > 1 else None
