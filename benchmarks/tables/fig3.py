"""Figure 3: learning curves of Async LU vs Async BU on CIFAR-10, ResNet-18 and ResNet-50."""

from __future__ import annotations

from .common.cifar import cifar_cells
from .common.spec import register_table

METHODS = ("async_lu", "async_bu")
CELLS = cifar_cells("cifar10", METHODS)


SPEC = register_table(
    id="fig3",
    title="CIFAR-10 learning curves, Async LU vs Async BU (ResNet-18, ResNet-50)",
    cells=CELLS,
    experiment="table1",
    kind="curves",
    source="000 Figure 3 (curves only; no numbers to set beside)",
)
