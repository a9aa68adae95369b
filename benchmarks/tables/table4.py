"""Table 4: best accuracy on CIFAR-100, the time and epochs to reach it (the runs of Table 3)."""

from __future__ import annotations

from . import TableSpec, register_table
from .table3 import METHODS, jobs

SPEC = register_table(
    TableSpec(
        id="table4",
        title="CIFAR-100: best accuracy, time and epochs to it, Async LU/BU vs LAP-SGD/LPP-SGD",
        jobs=jobs,  # Table 3's runs: running either resumes the other
        methods=METHODS,
        # (model, method) -> ((best acc %, ±), (TTA s, ±), (epochs, ±))
        paper={
            ("resnet18", "async_lu"): ((73.9, 0.38), (339.0, 10), (114, 9)),
            ("resnet18", "async_bu"): ((71.8, 0.08), (277.2, 17), (103, 5)),
            ("resnet18", "lapsgd"): ((61.3, 0.23), (762.5, 15), (114, 3)),
            ("resnet18", "lppsgd"): ((61.0, 0.17), (742.0, 19), (110, 2)),
            ("resnet50", "async_lu"): ((76.2, 0.57), (1071.0, 80), (122, 6)),
            ("resnet50", "async_bu"): ((73.7, 0.23), (956.2, 28), (123, 4)),
            ("resnet50", "lapsgd"): ((63.7, 0.33), (1110.1, 27), (118, 3)),
            ("resnet50", "lppsgd"): ((63.5, 0.10), (1122.1, 24), (119, 2)),
        },
        kind="best",
        source="000 Table 4 (3 A100 GPUs), mean ± std over 3 runs",
    )
)
