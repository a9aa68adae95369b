"""`plsgd`: post-local SGD (Lin et al. 2020; 002 Table 1), a baseline of LAP-SGD's paper.

Synchronous data parallel SGD (gradients all-reduced every step, i.e. the replicas averaged after
every update) for the first `average_switch` of the budget, then local SGD: each replica steps on
its own and the models are averaged every `average_every` steps. Built from PyTorch's own pieces,
as docs/methods.md describes: DistributedDataParallel, `PostLocalSGDOptimizer` with a
`PeriodicModelAverager`; the communication hook is `post_localSGD_hook`'s (all-reduce before the
switch, nothing after it) written on the wire (core/runtime/wire.py), as is each averaging.

The switch is a step count (the hook and the averager count steps): `average_switch` of
max_epochs x steps per epoch. When a time budget ends training earlier than max_epochs, the switch
comes later in the run than "half the budget"; the quick profiles size max_epochs to the budget.
BatchNorm buffers are broadcast from rank 0 at every forward (DDP's default), as in the ddp method.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.config import TrainConfig
from core.context import TrainContext
from core.errors import UserError
from core.runtime.wire import DdpHookState, Wire

from .common.base import register_method
from .ddp import DataParallel


@dataclass(frozen=True)
class PlsgdConfig:
    """Post-local SGD's averaging period after the switch and the switch point."""

    average_every: int = 16  # 002 Table 1: K = 16 after the first half
    average_switch: float = 0.5  # fraction of max_epochs with averaging after every step

    def validate(self) -> None:
        """Reject values that cannot run, with one line naming the key."""
        if self.average_every < 1:
            raise UserError(f"average_every must be >= 1, got {self.average_every}")
        if not 0.0 <= self.average_switch <= 1.0:
            raise UserError(f"average_switch must be in [0, 1], got {self.average_switch}")


def wire_averager(period: int, warmup_steps: int, wire: Wire):
    """torch's PeriodicModelAverager (its steps and period, as PostLocalSGDOptimizer drives it),
    each averaging an all-reduce on the wire (a delayed rank joins late; its age and bytes logged).

    torch's own averaging rebinds `p.data` to views of one flat buffer, which drops channels_last:
    convolutions then convert layouts every step (12 % slower here, and DDP warns that grad strides
    no longer match its buckets). Here the mean is copied back into each parameter in place, the
    same values in the parameter's own layout. torch's model-averaging package is imported here, on
    first use: it pulls in torch.distributed's sharding and sympy (~0.7 s at every process start
    otherwise).
    """
    from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager
    from torch.distributed.algorithms.model_averaging.utils import get_params_to_average

    class WireAverager(PeriodicModelAverager):
        @torch.no_grad()
        def average_parameters(self, params) -> None:
            if self.step >= self.warmup_steps and (self.step - self.warmup_steps) % self.period == 0:
                averaged = get_params_to_average(params)  # those with a gradient, as torch's
                flat = torch.cat([p.reshape(-1) for p in averaged])
                wire.all_reduce(flat)
                flat /= wire.world
                for p, mean in zip(averaged, flat.split([p.numel() for p in averaged]), strict=True):
                    p.copy_(mean.view_as(p))
            self.step += 1

    return WireAverager(period=period, warmup_steps=warmup_steps)


def switch_step(ctx: TrainContext) -> int:
    """The step from which replicas train locally: `average_switch` of max_epochs' steps."""
    return round(ctx.method_config.average_switch * ctx.config.max_epochs * ctx.steps_per_epoch)


@register_method("plsgd")
class PostLocalSGD(DataParallel):
    """ddp's loop; after the switch, DDP stops all-reducing gradients and the averager runs every K steps."""

    summary = "post-local SGD: synchronous SGD for the first half, then local SGD averaged every K=16 steps"
    cost_vs_bp = 1.2  # run claims' prior: wall time / bp's
    Config = PlsgdConfig

    @classmethod
    def train_defaults(cls, config: TrainConfig, devices: int) -> dict:
        """002's PL-SGD setup (§2, under its Table 1), which follows Lin et al. (2020):

        - the LR "warmed up for the first 5 epochs to scale from α0 to α0 × B_loc/128 × Q" (Q
          processes; the linear scaling rule), here over the profile's warm-up epochs, from its lr;
          SGD only (the rule is SGD's; Adam keeps its LR);
        - then Lin et al.'s step schedule, x0.1 at 50 % and 75 % of the epochs (002 §3.1: "the LR
          schedule for Mb-sgd and Pl-sgd are identical to Lin et al."), so the switch to local SGD
          comes with the first decay. Under the other methods' cosine, local SGD started at half
          the peak LR and its train loss stalled (quick CIFAR-10: 10 points below bp).
        """
        defaults = {"lr_schedule": "step"}
        if config.optimizer == "sgd":
            defaults.update(warmup_lr=config.lr, lr=config.lr * config.batch_size / 128 * devices)
        return defaults

    def hook_state(self, ctx: TrainContext) -> DdpHookState:
        """ddp's all-reduce until the switch, then none: pure local SGD (post_localSGD_hook with
        `post_local_gradient_allreduce=False`)."""
        return DdpHookState(self.wire, start_local=switch_step(ctx))

    def make_optimizer(self, module: nn.Module, ctx: TrainContext) -> torch.optim.Optimizer:
        optimizer = super().make_optimizer(module, ctx)
        if ctx.world == 1:
            return optimizer
        from torch.distributed.optim import PostLocalSGDOptimizer

        averager = wire_averager(ctx.method_config.average_every, switch_step(ctx), self.wire)
        return PostLocalSGDOptimizer(optim=optimizer, averager=averager)
