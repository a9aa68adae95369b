"""Figure 2: learning curves of Async LU vs Async BU on CIFAR-100, ResNet-18 and ResNet-50."""

from __future__ import annotations

from .common.cifar import cifar_cells
from .common.spec import register_table

METHODS = ("async_lu", "async_bu")
CELLS = cifar_cells("cifar100", METHODS)


SPEC = register_table(
    id="fig2",
    title="CIFAR-100 learning curves, Async LU vs Async BU (ResNet-18, ResNet-50)",
    cells=CELLS,
    experiment="table3",
    kind="curves",
    source="000 Figure 2 (curves of 3 runs each; no numbers to set beside)",
)
