"""Figure 3: learning curves of Async LU vs Async BU on CIFAR-10, ResNet-18 and ResNet-50."""

from __future__ import annotations

from . import TableSpec, register_table
from .cifar import cifar_jobs

METHODS = ("async_lu", "async_bu")


def jobs(profile: str, runs: int | None = None) -> list:
    """The async runs of Table 1 (tagged table1: the same jobs, resumed from either)."""
    return cifar_jobs("table1", "cifar10", METHODS, profile, runs)


SPEC = register_table(
    TableSpec(
        id="fig3",
        title="CIFAR-10 learning curves, Async LU vs Async BU (ResNet-18, ResNet-50)",
        jobs=jobs,
        methods=METHODS,
        kind="curves",
        source="000 Figure 3 (curves only; no numbers to set beside)",
    )
)
