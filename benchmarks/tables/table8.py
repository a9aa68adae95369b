"""Table 8: relative speed-up over single-device `bp` of Async LU and DDP on several devices, CIFAR-100."""

from __future__ import annotations

from .common.cifar import cifar_cells
from .common.spec import register_table
from .common.targets import CIFAR100
from .table7 import METHODS, READING

CELLS = cifar_cells("cifar100", METHODS, spread=True)


SPEC = register_table(
    id="table8",
    title="CIFAR-100: relative speed-up over single-device bp, Async LU vs DDP on several devices",
    cells=CELLS,
    # (model, method) -> {field: (mean, std)}
    paper={
        ("resnet18", "async_lu"): dict(speedup=(1.83, 0.06)),
        ("resnet18", "ddp"): dict(speedup=(1.86, 0.21)),
        ("resnet50", "async_lu"): dict(speedup=(2.02, 0.13)),
        ("resnet50", "ddp"): dict(speedup=(2.30, 0.13)),
    },
    targets=CIFAR100,  # Table 3's workload: its frozen targets (the claims' times)
    kind="speedup",
    source="000 Table 8 (3 GPUs; Async LU in libtorch, DDP in PyTorch), mean ± std over 3 runs",
    reading=READING,
)
