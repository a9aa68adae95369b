"""The learning-rate schedule every method shares (Table 10: warm-up, then cosine)."""

from __future__ import annotations

import math

from .config import TrainConfig

STEP_DECAY_AT = (0.5, 0.75)  # fractions of max_epochs (Lin et al. 2020, §4: "50% and 75%")
STEP_DECAY = 0.1


def lr_at(epoch: float, cfg: TrainConfig) -> float:
    """LR at fractional epoch `epoch`: linear warm-up, then torch's CosineAnnealingLR closed form
    (or, with `lr_schedule=step`, lr x 0.1 at each of STEP_DECAY_AT x max_epochs).

    The paper steps its schedule per epoch (Table 10 is in epochs); we evaluate the same curve at
    fractional epochs on every step, as the LAP-SGD code does, so that short profiles anneal
    smoothly. The cosine starts when warm-up ends (the paper does not say; this keeps lr at its
    peak when warm-up ends) and, like CosineAnnealingLR, keeps its period past t_max.
    """
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr + (cfg.lr - cfg.warmup_lr) * epoch / cfg.warmup_epochs
    if cfg.lr_schedule == "step":
        return cfg.lr * STEP_DECAY ** sum(epoch >= at * cfg.max_epochs for at in STEP_DECAY_AT)
    progress = (epoch - cfg.warmup_epochs) / cfg.t_max
    return cfg.eta_min + (cfg.lr - cfg.eta_min) * (1 + math.cos(math.pi * progress)) / 2
