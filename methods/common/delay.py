"""Corrections for stale gradients, as settings of the methods whose gradients are stale (`bp` with
`grad_delay`, `async_lu`, `async_bu`); docs/methods.md says what each changes and docs/fidelity.md
where each comes from.

Each correction reads a staleness τ: for a delayed `bp` its delay d; for the async methods the
expected staleness of each module, a running mean of the staleness measured at its updates. The
horizon N (the passes that can be in flight: d + 1, or `max_in_flight`) plays the role of
Ajanthan et al.'s number of pipeline stages.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.config import added_setting
from core.errors import UserError

MOMENTUM_CAP = 0.99  # Ajanthan et al.'s code raises the momentum towards this value
EXPECTED_DECAY = 0.99  # the running mean of a module's staleness forgets at this rate per update
# DC-ASGD-a's moving average of g ⊙ g, m (Zheng et al. 2017, §6: 0.95), and a floor under its root
# (a coordinate whose gradients were all zero so far gets no compensation, not a division by 0).
COMPENSATION_DECAY = 0.95
COMPENSATION_EPS = 1e-12


@dataclass(frozen=True)
class DelayCorrections:
    """The corrections a method with stale gradients can apply (all off by default)."""

    # β1 (Adam family) or momentum (SGD, Muon) raised with the staleness: β + τ/N (0.99 − β)
    # (Ajanthan et al. 2025, their code's `adaptive_momentum`).
    delay_momentum: bool = False
    # PipeMare's learning-rate rescheduling (Yang et al. 2021, T1): lr / τ^(1 − min(t / K, 1)) over
    # the first K epochs t, per module; 0 = off.
    delay_lr_epochs: float = 0.0
    # Weight prediction (SpecTrain, Chen et al. 2018; PipeOptim, Guan et al. 2023): the forward runs
    # on each module's weights extrapolated by τ × its last update, w + τ Δw.
    predict_weights: bool = False
    # DC-ASGD-a's delay compensation (Zheng et al. 2017, eq. 8 with the adaptive λ of §6): each
    # gradient g, taken on weights w_read, is corrected towards the weights it updates, w_now, by
    # g + λ0 / sqrt(MS) ⊙ g ⊙ g ⊙ (w_now − w_read), MS the moving mean square of g; λ0, 0 = off.
    delay_compensation: float = added_setting("delay_compensation", 0.0, "2026-11-25")

    def validate_corrections(self) -> None:
        """Reject a negative warm-up or compensation, or compensation with prediction, with one line."""
        if self.delay_lr_epochs < 0:
            raise UserError(f"delay_lr_epochs must be >= 0, got {self.delay_lr_epochs}")
        if self.delay_compensation < 0:
            raise UserError(f"delay_compensation must be >= 0, got {self.delay_compensation}")
        if self.delay_compensation and self.predict_weights:
            # The gradient would be taken on predicted weights, which DC-ASGD's drift does not know.
            raise UserError("delay_compensation and predict_weights exclude each other: set one")

    @property
    def corrects(self) -> bool:
        """Whether any correction is switched on."""
        return bool(
            self.delay_momentum or self.delay_lr_epochs or self.predict_weights or self.delay_compensation
        )


def raised_momentum(base: float, staleness: float, horizon: float) -> float:
    """Ajanthan et al.'s delay-aware momentum: base + min(τ, N) / N × (0.99 − base); a base already
    at or above 0.99 is kept."""
    if base >= MOMENTUM_CAP or horizon <= 0:
        return base
    return base + min(staleness, horizon) / horizon * (MOMENTUM_CAP - base)


def pipemare_lr(lr: float, staleness: float, epochs_done: float, over_epochs: float) -> float:
    """PipeMare's rescheduled learning rate: lr / τ^(1 − min(t / K, 1)); unchanged for τ ≤ 1 (their
    code corrects only a delayed stage) or K = 0."""
    if over_epochs <= 0 or staleness <= 1:
        return lr
    return lr / staleness ** (1 - min(epochs_done / over_epochs, 1.0))


def tune(optimizer, corrections: DelayCorrections, cfg, lr: float, staleness: float, horizon: float,
         epochs_done: float) -> None:  # fmt: skip
    """Set `optimizer`'s learning rate (and momentum, where delay_momentum asks) for an update of
    this staleness: each parameter group's own momentum (β1 or SGD/Muon's) from the config's."""
    lr = pipemare_lr(lr, staleness, epochs_done, corrections.delay_lr_epochs)
    for group in optimizer.param_groups:
        group["lr"] = lr
        if corrections.delay_momentum:
            if "betas" in group:
                group["betas"] = (raised_momentum(cfg.beta1, staleness, horizon), group["betas"][1])
            elif "momentum" in group:
                group["momentum"] = raised_momentum(cfg.momentum, staleness, horizon)


@torch.no_grad()
def compensate(grads: list[torch.Tensor], drifts: list[torch.Tensor], mean_squares: list[torch.Tensor],
               strength: float) -> None:  # fmt: skip
    """DC-ASGD-a's compensation, in place on `grads`: MS ← m MS + (1 − m) g ⊙ g, then
    g ← g + λ0 g ⊙ g ⊙ drift / sqrt(MS), with drift = w_now − w_read and λ0 = `strength`."""
    torch._foreach_mul_(mean_squares, COMPENSATION_DECAY)
    torch._foreach_addcmul_(mean_squares, grads, grads, value=1 - COMPENSATION_DECAY)
    roots = torch._foreach_sqrt(mean_squares)
    torch._foreach_clamp_min_(roots, COMPENSATION_EPS)
    terms = torch._foreach_mul(grads, grads)
    torch._foreach_mul_(terms, drifts)
    torch._foreach_div_(terms, roots)
    torch._foreach_add_(grads, terms, alpha=strength)


def stashing_weights(params: list[torch.Tensor]) -> torch.autograd.graph.saved_tensors_hooks:
    """PipeDream's weight stashing around a forward: autograd saves a copy of every parameter (or
    view of one) its backward formulas read, not the parameter, which later updates change in
    place; activations are saved as they are. The backward then reads the forward's weights."""
    storages = {p.untyped_storage().data_ptr() for p in params}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().clone() if tensor.untyped_storage().data_ptr() in storages else tensor

    return torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor)


class ExpectedStaleness:
    """Per module, the running mean of the staleness measured at its updates (the first measurement
    starts it)."""

    def __init__(self, modules: int):
        self.values: list[float | None] = [None] * modules

    def observe(self, module: int, staleness: float) -> float:
        """Add a measurement; the expected staleness after it."""
        old = self.values[module]
        new = staleness if old is None else EXPECTED_DECAY * old + (1 - EXPECTED_DECAY) * staleness
        self.values[module] = new
        return new
