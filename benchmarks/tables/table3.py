"""Table 3: time to a fixed accuracy (60 % ResNet-18, 63 % ResNet-50) on CIFAR-100, and epochs to it."""

from __future__ import annotations

from .common.cifar import cifar_cells
from .common.spec import register_table
from .common.targets import CIFAR100

METHODS = ("async_lu", "async_bu", "lapsgd", "lppsgd")
CELLS = cifar_cells("cifar100", METHODS)


SPEC = register_table(
    id="table3",
    title="CIFAR-100: time and epochs to a fixed accuracy, Async LU/BU vs LAP-SGD/LPP-SGD",
    cells=CELLS,
    # (model, method) -> {field: (mean, std)}
    paper={
        ("resnet18", "async_lu"): dict(tta_s=(226.4, 10), epochs=(69, 7)),
        ("resnet18", "async_bu"): dict(tta_s=(155.4, 10), epochs=(57, 4)),
        ("resnet18", "lapsgd"): dict(tta_s=(667.1, 8), epochs=(99, 2)),
        ("resnet18", "lppsgd"): dict(tta_s=(672.9, 11), epochs=(100, 2)),
        ("resnet50", "async_lu"): dict(tta_s=(622.7, 32), epochs=(70, 5)),
        ("resnet50", "async_bu"): dict(tta_s=(641.8, 16), epochs=(81, 3)),
        ("resnet50", "lapsgd"): dict(tta_s=(1006.6, 13), epochs=(107, 1)),
        ("resnet50", "lppsgd"): dict(tta_s=(1016.0, 6), epochs=(107, 1)),
    },
    targets=CIFAR100,  # the paper's; quick's are guesses (no CIFAR-100 on the development machines)
    source="000 Table 3 (3 A100 GPUs), mean ± std over 3 runs",
)
