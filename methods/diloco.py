"""`diloco`: DiLoCo (Douillard et al. 2023, arXiv 2311.08105), local steps with an outer Nesterov step,
a communication-efficient baseline beside DDP, PL-SGD and LAP-SGD (table `layup` compares them).

Each of the `--devices N` processes trains its replica on its shard with the inner optimiser for
`inner_steps` (H) steps; then every process all-reduces its pseudo-gradient, the outer parameters
θ minus its replica (Algorithm 1: Δ = (1/N) Σ_i (θ^(t-1) − θ_i^(t))), and steps θ with SGD under
Nesterov momentum (`outer_lr` 0.7, `outer_momentum` 0.9: the paper's values), and every replica
starts the next round from the new θ. Each process keeps its inner optimiser's state across
rounds, as the paper does. BatchNorm's running statistics are averaged at each outer step (the
paper's models have none). The steps are counted over the run, not the epoch.

As Algorithm 1 returns θ, the model evaluated at an epoch end is θ (`eval_on=outer`): the outer
parameters with the steps since the last outer step merged by an outer step taken on copies (the
final outer step the run would take if it stopped there; training goes on from the replicas
unchanged). θ and the outer momentum live on the host, as torchft's and OpenDiLoCo's do: the
device holds the replica and, during an outer step, one flat buffer. `inner_steps=0` (default)
sets H from the run's length (`inner_steps_for`). On AdamW (the GPT) the inner optimiser takes
the paper's and OpenDiLoCo's β2 0.95, weight decay 0.1 and gradient clipping at 1.0
(`train_defaults`); the warm-up is the workload's. No library of the environment has DiLoCo
(torchft's needs its own fault-tolerant process groups): written once here from Algorithm 1.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from core.config import TrainConfig, changed_setting
from core.context import TrainContext
from core.errors import UserError
from core.runtime.wire import Wire

from .bp import Backprop
from .common.base import register_method
from .common.update_exchange import replica_drift

EVALUATES = ("outer", "replica")
# H from the run's length: at least ROUNDS outer steps over the run's planned steps per worker, and
# at most the paper's H = 500 (docs/fidelity.md, "DiLoCo").
ROUNDS, PAPER_H = 32, 500


def inner_steps_for(steps_per_worker: int) -> int:
    """H for a run of `steps_per_worker` inner steps: ROUNDS outer steps, H between 1 and 500."""
    return max(1, min(PAPER_H, steps_per_worker // ROUNDS))


@dataclass(frozen=True)
class DilocoConfig:
    """DiLoCo's round length and outer optimiser (Douillard et al. 2023, §3 and Table 1)."""

    inner_steps: int = 0  # H; 0: from the run's length (inner_steps_for)
    outer_lr: float = 0.7
    outer_momentum: float = 0.9  # Nesterov
    # outer: θ with the tail merged (Algorithm 1's output); replica: rank 0's replica (runs before
    # 2026-11-26, which read as diloco[eval_on=replica]).
    eval_on: str = changed_setting("eval_on", "outer", before="replica", since="2026-11-26")
    # Every process flushes denormal floats on the CPU since 2026-11-28 (core/runtime/denormals.py).
    # DiLoCo's runs before computed on them, 14x slower on a CPU (its gradients decay below 1e-38):
    # they read as diloco[cpu_denormals=computed], a row of their own that cannot run again.
    cpu_denormals: str = changed_setting("cpu_denormals", "flushed", before="computed", since="2026-11-28")

    def validate(self) -> None:
        """Reject values that cannot run, with one line naming the key."""
        if self.inner_steps < 0:
            raise UserError(f"inner_steps must be >= 0 (0: from the run's length), got {self.inner_steps}")
        if self.outer_lr <= 0:
            raise UserError(f"outer_lr must be > 0, got {self.outer_lr}")
        if not 0.0 <= self.outer_momentum < 1.0:
            raise UserError(f"outer_momentum must be in [0, 1), got {self.outer_momentum}")
        if self.eval_on not in EVALUATES:
            raise UserError(f"eval_on must be one of {', '.join(EVALUATES)}, got {self.eval_on!r}")
        if self.cpu_denormals != "flushed":
            raise UserError(
                f"cpu_denormals={self.cpu_denormals} names DiLoCo's runs before 2026-11-28 (their CPU "
                "backward on denormal floats): every process now flushes them, so only `flushed` runs"
            )


class OuterStep:
    """The inner optimiser, and every `every` of its steps the outer step of DiLoCo.

    Stands in for the inner optimiser as torch's PostLocalSGDOptimizer does for its own:
    `param_groups` and `state` are the inner optimiser's (the schedule sets the inner lr)."""

    def __init__(self, inner, module: nn.Module, settings: DilocoConfig, world: int, every: int,
                 wire: Wire | None = None):  # fmt: skip
        self.inner, self.world, self.every, self.wire = inner, world, every, wire
        self.params = list(module.parameters())
        self.buffers = [b for b in module.buffers() if b.is_floating_point()]
        pin = self.params[0].is_cuda  # pinned host memory: asynchronous copies to and from the device
        with torch.no_grad():  # θ^(t-1) and its momentum on the host
            self.outer_params = [p.detach().to("cpu", copy=True).pin_memory() if pin else
                                 p.detach().to("cpu", copy=True) for p in self.params]  # fmt: skip
        self.lr, self.momentum = settings.outer_lr, settings.outer_momentum
        self.velocity = [torch.zeros_like(t) for t in self.outer_params]
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
        """The inner step; after every `every` of them, the outer step."""
        loss = self.inner.step(closure)
        self.steps += 1
        if self.steps % self.every == 0:
            self.outer_step()
        return loss

    @property
    def tail(self) -> int:
        """Inner steps since the last outer step (the same on every rank: lockstep batches)."""
        return self.steps % self.every

    @torch.no_grad()
    def outer_step(self) -> None:
        """Δ = mean over the processes of θ − θ_i; θ ← Nesterov SGD step on Δ; every θ_i ← θ."""
        pseudo, buffers = self._mean_pseudo_gradient(self.wire)
        copy_all(self.buffers, buffers)  # BatchNorm's running statistics: their mean
        self._nesterov(self.outer_params, self.velocity, pseudo)
        torch._foreach_copy_(self.params, self.outer_params, non_blocking=True)
        self.rounds += 1

    @torch.no_grad()
    def merged(self, into: nn.Module) -> None:
        """Write θ into `into`, with the steps since the last outer step merged by an outer step on
        copies (a collective when there are any); the training state is left as it was."""
        targets = list(into.parameters())
        buffers = [b for b in into.buffers() if b.is_floating_point()]
        if self.tail == 0:
            torch._foreach_copy_(targets, self.outer_params, non_blocking=True)
            copy_all(buffers, self.buffers)
            return
        pseudo, mean_buffers = self._mean_pseudo_gradient()
        theta = [t.clone() for t in self.outer_params]
        self._nesterov(theta, [v.clone() for v in self.velocity], pseudo)
        torch._foreach_copy_(targets, theta)
        copy_all(buffers, mean_buffers)

    def _mean_pseudo_gradient(self, wire: Wire | None = None) -> tuple[list[torch.Tensor], ...]:
        """(1/N) Σ_i (θ − θ_i) on the host, and the replicas' mean BatchNorm statistics (on the
        device): one flat buffer on the device, one all-reduce (on the `wire`: the outer step's; an
        evaluation's merge takes no wire delay)."""
        device = self.params[0].device
        theta = torch.cat([t.reshape(-1) for t in self.outer_params]).to(device, non_blocking=True)
        flat = torch.cat([theta - torch.cat([p.reshape(-1) for p in self.params]),
                          *(b.reshape(-1) for b in self.buffers)])  # fmt: skip
        if self.world > 1:
            if wire is not None:
                wire.all_reduce(flat)
            else:
                dist.all_reduce(flat)
            flat /= self.world
        n = theta.numel()
        pseudo = flat[:n].to("cpu").split([t.numel() for t in self.outer_params])
        buffers = flat[n:].split([b.numel() for b in self.buffers])
        shaped = [d.view_as(t) for d, t in zip(pseudo, self.outer_params, strict=True)]
        return shaped, [b.view_as(t) for b, t in zip(buffers, self.buffers, strict=True)]

    def _nesterov(
        self, theta: list[torch.Tensor], velocity: list[torch.Tensor], pseudo: list[torch.Tensor]
    ) -> None:
        """torch.optim.SGD's Nesterov step with Δ as the gradient: v ← μ v + Δ; θ ← θ − lr (Δ + μ v)."""
        if self.momentum:
            torch._foreach_mul_(velocity, self.momentum)
            torch._foreach_add_(velocity, pseudo)
            pseudo = torch._foreach_add(pseudo, velocity, alpha=self.momentum)
        torch._foreach_add_(theta, pseudo, alpha=-self.lr)


def copy_all(targets: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    """`torch._foreach_copy_`, for lists that may be empty (a model without BatchNorm)."""
    if targets:
        torch._foreach_copy_(targets, sources)


@register_method("diloco")
class DiLoCo(Backprop):
    """bp's loop on each of `--devices N` processes, without DDP; every H steps the outer step."""

    summary = "DiLoCo: H local steps of the inner optimiser, then an all-reduced outer Nesterov step"
    Config = DilocoConfig
    max_devices = None

    @classmethod
    def train_defaults(cls, config: TrainConfig, devices: int) -> dict:
        """On AdamW, the inner optimiser of the paper (§3) and OpenDiLoCo: β2 0.95, weight decay 0.1,
        the gradient norm clipped at 1.0."""
        if config.optimizer != "adamw":
            return {}
        return {"beta2": 0.95, "weight_decay": 0.1, "grad_clip": 1.0}

    def make_optimizer(self, module: nn.Module, ctx: TrainContext) -> OuterStep:
        settings = ctx.method_config
        every = settings.inner_steps or inner_steps_for(ctx.steps_per_epoch * ctx.config.max_epochs)
        inner = super().make_optimizer(module, ctx)
        self.outer = OuterStep(inner, module, settings, ctx.world, every, self.wire)
        self.evaluated: nn.Module | None = None
        return self.outer

    def evaluated_model(self, ctx: TrainContext) -> nn.Module:
        """eval_on=outer: θ with the tail merged, in a copy of the model (a collective)."""
        if ctx.method_config.eval_on == "replica":
            return ctx.model
        if self.evaluated is None:
            self.evaluated = copy.deepcopy(ctx.model)
        self.outer.merged(self.evaluated)
        return self.evaluated

    def epoch_metrics(self, ctx: TrainContext) -> dict[str, float] | None:
        metrics = {"outer_steps": float(self.outer.rounds), "inner_steps": float(self.outer.every)}
        if ctx.world > 1:
            metrics["replica_drift"] = replica_drift(ctx.model)
        return metrics
