"""`bp`: single-device backpropagation, the reference every other method is measured against.

With `--set grad_delay=d` each step applies the gradient computed on the weights of d updates ago
(the initial weights for the first d steps): the staleness of the asynchronous methods without
their threads, deterministic and on one thread (docs/methods.md).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.config import added_setting
from core.context import TrainContext
from core.errors import UserError
from core.runtime.straggler import straggler_for
from core.runtime.wire import Wire
from core.schedule import lr_at

from .common.base import Method, register_method
from .common.delay import DelayCorrections, compensate, tune
from .common.optim import hidden_matrices, make_optimizer, set_lr


@dataclass(frozen=True)
class BpConfig(DelayCorrections):
    """bp's own settings: a fixed gradient delay, 0 for backprop itself, and the delay corrections
    (which read τ = the delay and N = delay + 1 passes)."""

    grad_delay: int = 0  # each step applies the gradient taken on the weights of this many updates ago
    # > grad_delay: each step's delay is drawn uniformly from grad_delay..grad_delay_max (seeded by
    # the run's seed), a spread of delays like the async methods' measured staleness (1.5 on average
    # on the GPT, up to 3) rather than one fixed delay; 0 = the fixed delay.
    grad_delay_max: int = added_setting("grad_delay_max", 0, "2026-11-26")
    # The backward reads the current weights w_t, the forward's saved activations are w_(t-d)'s: a
    # stale and inconsistent gradient, the async methods' own (their backward may read weights newer
    # than its forward) without their threads. False: PipeDream's weight stashing (Narayanan et al.
    # 2019), the exact gradient of the stale weights.
    backward_on_current: bool = added_setting("backward_on_current", False, "2026-11-26")

    def validate(self) -> None:
        """Reject a negative delay, or a correction without one, with one line."""
        if self.grad_delay < 0:
            raise UserError(f"grad_delay must be >= 0, got {self.grad_delay}")
        self.validate_corrections()
        if self.corrects and not self.grad_delay:
            raise UserError("a delay correction needs grad_delay > 0: bp's gradients are not stale otherwise")
        if self.grad_delay_max and not 0 < self.grad_delay < self.grad_delay_max:
            limits = f"grad_delay={self.grad_delay}, grad_delay_max={self.grad_delay_max}"
            raise UserError(f"grad_delay_max needs 0 < grad_delay < grad_delay_max, got {limits}")
        if self.backward_on_current and not self.grad_delay:
            raise UserError("backward_on_current needs grad_delay > 0: without a delay both weights are one")
        if self.backward_on_current and self.delay_compensation:
            # DC-ASGD's drift is w_t - the weights the gradient was taken on, which are mixed here.
            raise UserError("delay_compensation and backward_on_current exclude each other: set one")


class DelayedWeights:
    """The weights of `delay` updates ago, swapped into the parameters for a step's forward and
    backward (`stale`), then the current ones put back for the optimiser (`current`). With
    `predict`, the stale weights extrapolated by `delay` × the update they had just received:
    w_(t-d) + d (w_(t-d) - w_(t-d-1)) (weight prediction, as the forward of a pass d updates old
    could have computed it). With `compensation` (λ0), the stale gradients are corrected towards
    w_t by DC-ASGD (methods/common/delay.py, `compensate`) when w_t is put back. Without
    `stashing`, w_t is put back before the backward (`unstash`): the backward's formulas read w_t,
    the saved activations are w_(t-d)'s. With `most`, `delay` may be set anew before each step, up
    to `most` (the history keeps that many updates)."""

    def __init__(self, params: list[torch.Tensor], delay: int, predict: bool = False,
                 compensation: float = 0.0, stashing: bool = True, most: int = 0):  # fmt: skip
        self.params, self.delay, self.predict, self.compensation = params, delay, predict, compensation
        self.stashing, self.most = stashing, max(most, delay)  # `delay` may change per step up to `most`
        self.mean_squares = [torch.zeros_like(p) for p in params] if compensation else []
        with torch.no_grad():  # before any update, every earlier step's weights are the initial ones
            kept = self.most + (1 if predict else 0)
            self.history = deque([p.detach().clone() for p in params] for _ in range(kept))
        self.saved = [p.detach().clone() for p in params]  # this step's own weights while stale ones are in

    @torch.no_grad()
    def stale(self) -> None:
        """Keep the current weights w_t aside and put w_(t - delay) (predicted, where asked) in
        their place."""
        torch._foreach_copy_(self.saved, self.params)
        at = self.most - self.delay  # history[-1] is w_(t-1)
        if not self.predict:
            torch._foreach_copy_(self.params, self.history[at])
            return
        older, stale = self.history[at], self.history[at + 1]
        torch._foreach_copy_(self.params, stale)
        torch._foreach_add_(self.params, torch._foreach_sub(stale, older), alpha=float(self.delay))

    @torch.no_grad()
    def unstash(self) -> None:
        """Without stashing, put w_t back between the forward and the backward: through `.data`,
        which autograd's version check does not see (as the async methods' updates)."""
        if not self.stashing:
            torch._foreach_copy_([p.data for p in self.params], self.saved)

    @torch.no_grad()
    def current(self) -> None:
        """Put w_t back (the gradients of the stale weights stay in .grad, compensated where asked);
        w_t joins the history."""
        if self.compensation:  # drift = w_t - the stale weights (a parameter without a gradient: none)
            live = [i for i, p in enumerate(self.params) if p.grad is not None]
            drift = torch._foreach_sub([self.saved[i] for i in live], [self.params[i] for i in live])
            grads, mean_squares = [self.params[i].grad for i in live], [self.mean_squares[i] for i in live]
            compensate(grads, drift, mean_squares, self.compensation)
        if self.stashing:  # else w_t is in place since `unstash`
            torch._foreach_copy_(self.params, self.saved)
        oldest = self.history.popleft()
        self.history.append(self.saved)
        self.saved = oldest  # reused as the next step's buffer


@register_method("bp")
class Backprop(Method):
    """Sequential forward, backward, step on one device (000 Table 5, A.2)."""

    summary = "single-device backprop: forward, backward, SGD step (the reference)"
    Config = BpConfig
    clips_gradients = True
    wire_delays = True  # on several processes (ddp, plsgd, diloco): their collectives go on `self.wire`

    def trained_module(self, ctx: TrainContext) -> nn.Module:
        """What the loop calls forward on (a subclass may wrap `ctx.model`)."""
        return ctx.model

    def make_optimizer(self, module: nn.Module, ctx: TrainContext) -> torch.optim.Optimizer:
        """The optimiser of the loop (a subclass may wrap it)."""
        return make_optimizer(module.parameters(), ctx.config, hidden_matrices(ctx.model))

    def epoch_metrics(self, ctx: TrainContext) -> dict[str, float] | None:
        """Extra metrics logged at each epoch end (none for single-device backprop)."""
        return None

    def evaluated_model(self, ctx: TrainContext) -> nn.Module:
        """The model evaluated at an epoch end (every rank calls it: a subclass may need a collective)."""
        return ctx.model

    def train(self, ctx: TrainContext) -> None:
        cfg = ctx.config
        straggler = straggler_for(cfg, ctx.rank, ctx.world)  # the last rank, where delays are asked for
        # Several processes: every collective goes on the wire (a wire straggler's latency, ages, bytes).
        self.wire = Wire.of(cfg, ctx.rank, ctx.world, ctx.device, straggler) if ctx.world > 1 else None
        model = self.trained_module(ctx)
        optimizer = self.make_optimizer(model, ctx)
        steps = ctx.steps_per_epoch
        settings = ctx.method_config
        delay = getattr(settings, "grad_delay", 0)
        predict = getattr(settings, "predict_weights", False)
        strength = getattr(settings, "delay_compensation", 0.0)
        stashing = not getattr(settings, "backward_on_current", False)
        most = getattr(settings, "grad_delay_max", 0)
        draws = random.Random(ctx.job.seed)  # the spread's delays, the same for every run of this seed
        params = list(model.parameters())
        delayed = DelayedWeights(params, delay, predict, strength, stashing, most) if delay else None
        corrections = settings if isinstance(settings, DelayCorrections) and settings.corrects else None
        for epoch in ctx.epochs():
            meter = ctx.meter()
            if straggler is not None:
                straggler.restart()
            batches = 0
            # lockstep: DDP's ranks (and PL-SGD's averaging) all-reduce in their steps.
            for step, (inputs, targets) in enumerate(ctx.train_batches(epoch, lockstep=True)):
                batches += 1
                epochs_done = epoch + step / steps
                if delayed is not None and most:
                    delayed.delay = draws.randint(delay, most)
                if corrections is None:
                    set_lr(optimizer, lr_at(epochs_done, cfg))
                else:  # τ: this step's delay; N: the passes the longest delay keeps in flight
                    lr, step_delay = lr_at(epochs_done, cfg), (delayed.delay if delayed else delay)
                    tune(optimizer, corrections, cfg, lr, step_delay, max(delay, most) + 1, epochs_done)
                if delayed is not None:
                    delayed.stale()
                logits = model(inputs)
                loss = F.cross_entropy(logits, targets)
                optimizer.zero_grad(set_to_none=True)
                if delayed is not None:
                    delayed.unstash()
                loss.backward()
                if delayed is not None:
                    delayed.current()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                meter.add(loss, logits, targets)
                if straggler is not None:  # this loop waits for its collectives, a delayed one too
                    straggler.tick(ctx.device, waits_for_wire=True)
            extra = self.epoch_metrics(ctx)
            if self.wire is not None:
                extra = {**(extra or {}), **self.wire.epoch_metrics(batches)}
            ctx.end_epoch(meter, self.evaluated_model(ctx), extra=extra)
