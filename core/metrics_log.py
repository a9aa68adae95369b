"""The one place that names a run's MLflow metrics (the names and prefixes are core/metric.py's)."""

from __future__ import annotations

from collections.abc import Callable

from .metric import BY_TIME, ENGINE


class MetricsLogger:
    """Logs a run's metrics under their MLflow names: the workload's per-epoch values plain, a
    method's diagnostics under ENGINE, the learning curves against the training clock under BY_TIME
    (rank 0 only: the other ranks' loggers record nothing)."""

    def __init__(self, log: Callable[[dict[str, float], int], None], curves: tuple[str, ...]):
        self._log, self.curves = log, curves

    def epoch(
        self, epoch: int, values: dict[str, float], diagnostics: dict[str, float], clock_s: float
    ) -> None:
        """An epoch's values and diagnostics at step `epoch`, and the curves at whole seconds of the clock."""
        self._log(named(values, diagnostics), epoch)
        self._log({BY_TIME + k: values[k] for k in self.curves if k in values}, round(clock_s))

    def measurement(self, values: dict[str, float], diagnostics: dict[str, float]) -> None:
        """A measurement's results (Table 9's timings) and its diagnostics, at step 0."""
        self._log(named(values, diagnostics), 0)


def named(values: dict[str, float], diagnostics: dict[str, float]) -> dict[str, float]:
    """Values under their own names, diagnostics under ENGINE."""
    return {**values, **{ENGINE + k: v for k, v in diagnostics.items()}}
