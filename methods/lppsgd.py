"""`lppsgd`: LAP-SGD with partitioned updates after a start point (002 §1.2), a baseline of the paper.

As `lapsgd`; once `partition_start` of the budget is used, each worker alternates a partitioned
update (gradient and update only for its own block of the parameters: contiguous runs of the
parameter list with roughly equal element counts, disjoint, covering the model) with a full one,
starting with a partitioned one (last_iter is initialised FULL). With one worker per device (000
§4's setting) the single block is the whole model, as in the authors' code.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import UserError

from .common.base import register_method
from .lapsgd import LapConfig, LocallyAsynchronousSGD


@dataclass(frozen=True)
class LppConfig(LapConfig):
    """LAP-SGD's knobs plus the point (fraction of the budget) where partitioned updates begin."""

    partition_start: float = 0.5  # 002: "T_st = T/2 was almost always sufficient"

    def validate(self) -> None:
        """Reject values that cannot run, with one line naming the key."""
        super().validate()
        if not 0.0 <= self.partition_start <= 1.0:
            raise UserError(f"partition_start must be in [0, 1], got {self.partition_start}")


@register_method("lppsgd")
class LocallyPartitionedSGD(LocallyAsynchronousSGD):
    """LPP-SGD (002 §1.2): LAP-SGD whose workers alternate partitioned and full updates after T_st."""

    summary = "LPP-SGD: LAP-SGD alternating partitioned (own parameter block) and full updates after T_st"
    cost_vs_bp = 1.25  # run claims' prior: wall time / bp's
    Config = LppConfig
    partitioned = True
