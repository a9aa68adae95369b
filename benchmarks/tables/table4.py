"""Table 4: best accuracy on CIFAR-100, the time and epochs to reach it (the runs of Table 3)."""

from __future__ import annotations

from . import table3
from .common.spec import register_table

SPEC = register_table(
    id="table4",
    title="CIFAR-100: best accuracy, time and epochs to it, Async LU/BU vs LAP-SGD/LPP-SGD",
    cells=table3.CELLS,
    experiment="table3",
    # (model, method) -> {field: (mean, std)}
    paper={
        ("resnet18", "async_lu"): dict(best_acc_pct=(73.9, 0.38), tta_s=(339.0, 10), epochs=(114, 9)),
        ("resnet18", "async_bu"): dict(best_acc_pct=(71.8, 0.08), tta_s=(277.2, 17), epochs=(103, 5)),
        ("resnet18", "lapsgd"): dict(best_acc_pct=(61.3, 0.23), tta_s=(762.5, 15), epochs=(114, 3)),
        ("resnet18", "lppsgd"): dict(best_acc_pct=(61.0, 0.17), tta_s=(742.0, 19), epochs=(110, 2)),
        ("resnet50", "async_lu"): dict(best_acc_pct=(76.2, 0.57), tta_s=(1071.0, 80), epochs=(122, 6)),
        ("resnet50", "async_bu"): dict(best_acc_pct=(73.7, 0.23), tta_s=(956.2, 28), epochs=(123, 4)),
        ("resnet50", "lapsgd"): dict(best_acc_pct=(63.7, 0.33), tta_s=(1110.1, 27), epochs=(118, 3)),
        ("resnet50", "lppsgd"): dict(best_acc_pct=(63.5, 0.10), tta_s=(1122.1, 24), epochs=(119, 2)),
    },
    kind="best",
    source="000 Table 4 (3 A100 GPUs), mean ± std over 3 runs",
)
