"""Table 2: best accuracy on CIFAR-10, the time and epochs to reach it (the runs of Table 1)."""

from __future__ import annotations

from . import table1
from .common.spec import register_table

SPEC = register_table(
    id="table2",
    title="CIFAR-10: best accuracy, time and epochs to it, Async LU/BU vs LAP-SGD/LPP-SGD",
    cells=table1.CELLS,
    experiment="table1",
    # (model, method) -> {field: (mean, std)}
    paper={
        ("resnet18", "async_lu"): dict(best_acc_pct=(93.7, 0.28), tta_s=(380.7, 33), epochs=(114, 9)),
        ("resnet18", "async_bu"): dict(best_acc_pct=(92.7, 0.16), tta_s=(308.5, 14), epochs=(115, 2)),
        ("resnet18", "lapsgd"): dict(best_acc_pct=(88.2, 0.43), tta_s=(799.5, 20), epochs=(118, 2)),
        ("resnet18", "lppsgd"): dict(best_acc_pct=(87.8, 0.09), tta_s=(523.4, 15), epochs=(97, 1)),
        ("resnet50", "async_lu"): dict(best_acc_pct=(93.9, 0.10), tta_s=(1038.8, 61), epochs=(121, 6)),
        ("resnet50", "async_bu"): dict(best_acc_pct=(93.2, 0.25), tta_s=(953.7, 73), epochs=(116, 8)),
        ("resnet50", "lapsgd"): dict(best_acc_pct=(89.7, 0.27), tta_s=(1098.9, 30), epochs=(117, 3)),
        ("resnet50", "lppsgd"): dict(best_acc_pct=(89.3, 0.43), tta_s=(888.4, 37), epochs=(119, 1)),
    },
    kind="best",
    source="000 Table 2 (3 A100 GPUs), mean ± std over 3 runs",
)
