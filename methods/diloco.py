"""`diloco`: DiLoCo (Douillard et al. 2023, arXiv 2311.08105), local steps with an outer Nesterov step,
a communication-efficient baseline beside DDP, PL-SGD and LAP-SGD (table `layup` compares them).

Each of the `--devices N` processes trains its replica on its shard with the workload's optimiser
(the inner optimiser: AdamW on the GPT, SGD on the ResNets, as every method here) for
`inner_steps` (H) steps; then every process all-reduces its pseudo-gradient, the outer parameters
θ minus its replica (Algorithm 1: Δ = (1/N) Σ_i (θ^(t-1) − θ_i^(t))), and steps θ with SGD under
Nesterov momentum (`outer_lr` 0.7, `outer_momentum` 0.9: the paper's values), and every replica
starts the next round from the new θ. Each process keeps its inner optimiser's state across
rounds, as the paper does. BatchNorm's running statistics are averaged at each outer step (the
paper's models have none). The steps are counted over the run, not the epoch: a round may span an
epoch's end, where rank 0 evaluates its own replica (as `plsgd` does between its averagings). No
library of the environment has it (torchft's DiLoCo needs its own fault-tolerant process groups):
written once here from the paper's Algorithm 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from core.context import TrainContext
from core.errors import UserError

from .bp import Backprop
from .common.base import register_method
from .common.update_exchange import replica_drift


@dataclass(frozen=True)
class DilocoConfig:
    """DiLoCo's round length and outer optimiser (Douillard et al. 2023, §3 and Table 1)."""

    inner_steps: int = 50  # H: the paper's 500 is ~0.8 % of its 64k steps; 50 gives a quick run ~15 rounds
    outer_lr: float = 0.7
    outer_momentum: float = 0.9  # Nesterov

    def validate(self) -> None:
        """Reject values that cannot run, with one line naming the key."""
        if self.inner_steps < 1:
            raise UserError(f"inner_steps must be >= 1, got {self.inner_steps}")
        if self.outer_lr <= 0:
            raise UserError(f"outer_lr must be > 0, got {self.outer_lr}")
        if not 0.0 <= self.outer_momentum < 1.0:
            raise UserError(f"outer_momentum must be in [0, 1), got {self.outer_momentum}")


class OuterStep:
    """The inner optimiser, and every `inner_steps` of its steps the outer step of DiLoCo.

    Stands in for the inner optimiser as torch's PostLocalSGDOptimizer does for its own:
    `param_groups` and `state` are the inner optimiser's (the schedule sets the inner lr)."""

    def __init__(self, inner, module: nn.Module, settings: DilocoConfig, world: int):
        self.inner, self.world, self.every = inner, world, settings.inner_steps
        self.params = list(module.parameters())
        self.buffers = [b for b in module.buffers() if b.is_floating_point()]
        with torch.no_grad():
            self.outer_params = [p.detach().clone() for p in self.params]  # θ^(t-1)
        momentum = settings.outer_momentum
        self.outer = torch.optim.SGD(
            self.outer_params, lr=settings.outer_lr, momentum=momentum, nesterov=momentum > 0
        )
        self.steps, self.rounds = 0, 0

    @property
    def param_groups(self):
        return self.inner.param_groups

    @property
    def state(self):
        return self.inner.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return self.inner.state_dict()

    def step(self, closure=None):
        """The inner step; after every `inner_steps` of them, the outer step."""
        loss = self.inner.step(closure)
        self.steps += 1
        if self.steps % self.every == 0:
            self.outer_step()
        return loss

    @torch.no_grad()
    def outer_step(self) -> None:
        """Δ = mean over the processes of θ − θ_i; θ ← Nesterov SGD step on Δ; every θ_i ← θ."""
        pseudo = torch._foreach_sub(self.outer_params, self.params)
        if self.world > 1:
            flat = torch.cat([d.reshape(-1) for d in pseudo] + [b.reshape(-1) for b in self.buffers])
            dist.all_reduce(flat)
            flat /= self.world
            offset = 0
            for d in pseudo:
                d.copy_(flat[offset : offset + d.numel()].view_as(d))
                offset += d.numel()
            for b in self.buffers:  # BatchNorm's running statistics: their mean
                b.copy_(flat[offset : offset + b.numel()].view_as(b))
                offset += b.numel()
        for p, d in zip(self.outer_params, pseudo, strict=True):
            p.grad = d
        self.outer.step()
        torch._foreach_copy_(self.params, self.outer_params)
        self.rounds += 1


@register_method("diloco")
class DiLoCo(Backprop):
    """bp's loop on each of `--devices N` processes, without DDP; every H steps the outer step."""

    summary = "DiLoCo: H local steps of the inner optimiser, then an all-reduced outer Nesterov step"
    Config = DilocoConfig
    max_devices = None

    def make_optimizer(self, module: nn.Module, ctx: TrainContext) -> OuterStep:
        self.outer = OuterStep(super().make_optimizer(module, ctx), module, ctx.method_config, ctx.world)
        return self.outer

    def epoch_metrics(self, ctx: TrainContext) -> dict[str, float] | None:
        metrics = {"outer_steps": float(self.outer.rounds)}
        if ctx.world > 1:
            metrics["replica_drift"] = replica_drift(ctx.model)
        return metrics
