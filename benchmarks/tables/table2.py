"""Table 2: best accuracy on CIFAR-10, the time and epochs to reach it (the runs of Table 1)."""

from __future__ import annotations

from . import TableSpec, register_table
from .table1 import METHODS, jobs

SPEC = register_table(
    TableSpec(
        id="table2",
        title="CIFAR-10: best accuracy, time and epochs to it, Async LU/BU vs LAP-SGD/LPP-SGD",
        jobs=jobs,  # Table 1's runs: running either resumes the other
        methods=METHODS,
        # (model, method) -> ((best acc %, ±), (TTA s, ±), (epochs, ±))
        paper={
            ("resnet18", "async_lu"): ((93.7, 0.28), (380.7, 33), (114, 9)),
            ("resnet18", "async_bu"): ((92.7, 0.16), (308.5, 14), (115, 2)),
            ("resnet18", "lapsgd"): ((88.2, 0.43), (799.5, 20), (118, 2)),
            ("resnet18", "lppsgd"): ((87.8, 0.09), (523.4, 15), (97, 1)),
            ("resnet50", "async_lu"): ((93.9, 0.10), (1038.8, 61), (121, 6)),
            ("resnet50", "async_bu"): ((93.2, 0.25), (953.7, 73), (116, 8)),
            ("resnet50", "lapsgd"): ((89.7, 0.27), (1098.9, 30), (117, 3)),
            ("resnet50", "lppsgd"): ((89.3, 0.43), (888.4, 37), (119, 1)),
        },
        kind="best",
        source="000 Table 2 (3 A100 GPUs), mean ± std over 3 runs",
    )
)
