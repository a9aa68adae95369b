"""`bp`: single-device backpropagation, the reference every other method is measured against."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.context import TrainContext
from core.runtime.straggler import straggler_for
from core.schedule import lr_at

from .common.base import Method, register_method
from .common.optim import make_optimizer, set_lr


@register_method("bp")
class Backprop(Method):
    """Sequential forward, backward, step on one device (000 Table 5, A.2)."""

    summary = "single-device backprop: forward, backward, SGD step (the reference)"

    def trained_module(self, ctx: TrainContext) -> nn.Module:
        """What the loop calls forward on (a subclass may wrap `ctx.model`)."""
        return ctx.model

    def make_optimizer(self, module: nn.Module, ctx: TrainContext) -> torch.optim.Optimizer:
        """The optimiser of the loop (a subclass may wrap it)."""
        return make_optimizer(module.parameters(), ctx.config)

    def epoch_metrics(self, ctx: TrainContext) -> dict[str, float] | None:
        """Extra metrics logged at each epoch end (none for single-device backprop)."""
        return None

    def train(self, ctx: TrainContext) -> None:
        model = self.trained_module(ctx)
        cfg = ctx.config
        optimizer = self.make_optimizer(model, ctx)
        steps = ctx.steps_per_epoch
        straggler = straggler_for(cfg, ctx.rank, ctx.world)  # the last rank, where delays are asked for
        for epoch in ctx.epochs():
            meter = ctx.meter()
            if straggler is not None:
                straggler.restart()
            # lockstep: DDP's ranks (and PL-SGD's averaging) all-reduce in their steps.
            for step, (inputs, targets) in enumerate(ctx.train_batches(epoch, lockstep=True)):
                set_lr(optimizer, lr_at(epoch + step / steps, cfg))
                logits = model(inputs)
                loss = F.cross_entropy(logits, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                meter.add(loss, logits, targets)
                if straggler is not None:
                    straggler.tick(ctx.device)
            ctx.end_epoch(meter, ctx.model, extra=self.epoch_metrics(ctx))
