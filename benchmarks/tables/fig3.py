"""Figure 3: learning curves of Async LU vs Async BU on CIFAR-10, ResNet-18 and ResNet-50."""

from __future__ import annotations

from core.job import Job

from .common.cifar import cifar_cells, cifar_jobs
from .common.spec import register_table

METHODS = ("async_lu", "async_bu")
CELLS = cifar_cells("cifar10", METHODS)


@register_table(
    id="fig3",
    title="CIFAR-10 learning curves, Async LU vs Async BU (ResNet-18, ResNet-50)",
    cells=CELLS,
    experiment="table1",
    kind="curves",
    source="000 Figure 3 (curves only; no numbers to set beside)",
)
def jobs(profile: str, runs: int | None = None, devices: int | None = None) -> list[Job]:
    """The async runs of Table 1 (tagged table1: the same jobs, resumed from either)."""
    return cifar_jobs("table1", CELLS, profile, runs, devices=devices)
