"""The workload's metric: what "better" means for a task, held out from training.

The paper's workloads are classifiers: test accuracy, higher is better. A language model is
judged by its held-out loss, lower is better. Early stopping (patience), the best-so-far, time to
a target and the reports read the direction from the workload's `Metric`, never assume it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A held-out metric: its name (the MLflow metric logged every epoch), whether higher (`max`)
    or lower (`min`) is better, what reports call it, and whether they show it as a percentage."""

    name: str
    direction: str
    label: str
    percent: bool = False

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):
            raise ValueError(f"a metric's direction is max or min, got {self.direction!r}")

    @property
    def worst(self) -> float:
        """A value every real value is better than (the best-so-far before the first epoch)."""
        return -math.inf if self.direction == "max" else math.inf

    def better(self, value: float, than: float) -> bool:
        """Whether `value` is strictly better than `than`."""
        return value > than if self.direction == "max" else value < than

    def reached(self, value: float, target: float) -> bool:
        """Whether `value` meets `target` (within float rounding); elementwise on an array."""
        return value >= target - 1e-12 if self.direction == "max" else value <= target + 1e-12

    def best_of(self, values: Iterable[float]) -> float:
        """The best of the defined values (NaN for none)."""
        defined = [v for v in values if not math.isnan(v)]
        if not defined:
            return math.nan
        return max(defined) if self.direction == "max" else min(defined)

    def worst_of(self, values: Iterable[float]) -> float:
        """The worst of the defined values (the paper's "best accuracy of the worst method")."""
        defined = [v for v in values if not math.isnan(v)]
        if not defined:
            return math.nan
        return min(defined) if self.direction == "max" else max(defined)


ACCURACY = Metric("test_acc", "max", "test accuracy", percent=True)
# How metrics are named in MLflow, whose UI groups charts by the part of a name before "/", sorts
# those sections by name and puts two last: the unprefixed names ("Model metrics") and `system/`
# ("System metrics"). So: the learning curves under BY_TIME, at step = whole seconds of the training
# clock (the first section: accuracy and loss against time); the workload's curves, throughput and
# time unprefixed; a method's per-epoch diagnostics (staleness, idle fractions, replica drift,
# averaging, memory detail) under ENGINE, the System metrics section, last (core/metrics_log.py logs
# them all). Readers find a per-epoch value plain or under ENGINE: `stored_names`.
ENGINE = "system/"
BY_TIME = "by_train_s/"


def stored_names(name: str) -> tuple[str, ...]:
    """The names a per-epoch metric may have in a store: as it is, and as a diagnostic."""
    return name, ENGINE + name


# A byte-level language model's held-out cross-entropy in bits (test_loss / ln 2): lower is better.
BITS_PER_BYTE = Metric("test_bpb", "min", "bits per byte")
