"""Per-parameter optimiser updates for methods that apply updates themselves (async, Hogwild!).

Each parameter tensor is updated on its own, with torch.optim.SGD's or Adam's arithmetic (their
functional single-tensor code paths, so results are bit-identical to the optimisers), through
`param.data` (which does not bump the version counter that in-flight backward passes check),
under a per-tensor lock held only for the in-place update unless `lock_free`.
"""

from __future__ import annotations

import threading

import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from core.config import TrainConfig


class ParameterUpdater:
    """Applies one parameter tensor's update at a time and counts the updates each tensor received."""

    def __init__(self, params: list[torch.nn.Parameter], cfg: TrainConfig, lock_free: bool = False):
        self.params, self.cfg, self.lock_free = list(params), cfg, lock_free
        self.locks = [threading.Lock() for _ in self.params]
        self.momentum: list[torch.Tensor | None] = [None] * len(self.params)  # SGD state
        self.exp_avg = [torch.zeros_like(p) for p in self.params] if cfg.optimizer == "adam" else []
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params] if cfg.optimizer == "adam" else []
        self.steps = (
            [torch.zeros((), dtype=torch.float32) for _ in self.params] if cfg.optimizer == "adam" else []
        )
        self.versions = [0] * len(self.params)  # updates applied to each tensor so far
        self.exchange = None  # an UpdateExchange on several processes: every applied update is also sent

    def apply(self, index: int, grad: torch.Tensor, lr: float) -> int:
        """Update parameter `index` with `grad`; returns how many updates it had received before."""
        if self.lock_free:
            return self._apply(index, grad, lr)
        with self.locks[index]:
            return self._apply(index, grad, lr)

    def _apply(self, i: int, grad: torch.Tensor, lr: float) -> int:
        cfg, param = self.cfg, self.params[i].data
        previous = param.clone() if self.exchange is not None else None
        if cfg.optimizer == "adam":
            adam(
                [param],
                [grad],
                [self.exp_avg[i]],
                [self.exp_avg_sq[i]],
                [],
                [self.steps[i]],
                foreach=False,
                amsgrad=False,
                beta1=0.9,
                beta2=0.999,
                lr=lr,
                weight_decay=cfg.weight_decay,
                eps=1e-8,
                maximize=False,
            )
        else:
            buffers = [self.momentum[i]]
            sgd(
                [param],
                [grad],
                buffers,
                foreach=False,
                weight_decay=cfg.weight_decay,
                momentum=cfg.momentum,
                lr=lr,
                dampening=0.0,
                nesterov=cfg.nesterov,
                maximize=False,
            )
            self.momentum[i] = buffers[0]  # the first step creates the buffer, as SGD does
        if previous is not None:
            self.exchange.record(i, param - previous)
        before = self.versions[i]
        self.versions[i] = before + 1
        return before
