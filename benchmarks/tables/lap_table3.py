"""002 Table 3: LPP-SGD at (U, B) = (4, 128), (6, 128), (4, 256), ResNet-20 / CIFAR-10, Q = 2.

A view of Table 2's runs (tagged `lap-table2`). With U > 1, after T_st = half the updates, each
LPP-SGD worker alternates an update of its own block of the parameters with a full one: this is
where `lppsgd` differs from `lapsgd` (its runs log `partitioned` = 1 from then on).
"""

from __future__ import annotations

from . import lap_table2
from .common.lap002 import NOTE_QUICK, lap_row
from .common.spec import register_table
from .lap_table1 import values

U4_B128, U6_B128, U4_B256 = lap_table2.SETTINGS


SPEC = register_table(
    id="lap-table3",
    title="002 Table 3: LPP-SGD at (U, B) = (4, 128), (6, 128), (4, 256), ResNet-20 / CIFAR-10, 2 devices",
    cells=lap_table2.cells,
    experiment="lap-table2",
    rows=tuple(lap_row(m, s) for m, s in lap_table2.CELLS if m != "lapsgd"),
    paper={
        ("resnet20", lap_row("lppsgd", U4_B128)): values(0.019, 99.62, 0.270, 92.98, 1153, "Excellent"),
        ("resnet20", lap_row("lppsgd", U6_B128)): values(0.021, 99.58, 0.262, 92.84, 1085, "Excellent"),
        ("resnet20", lap_row("lppsgd", U4_B256)): values(0.019, 99.65, 0.267, 92.95, 1047, "Excellent"),
        **lap_table2.MB_SGD,
    },
    kind="final",
    metrics=("partitioned",),  # the fraction of epochs that ended in the partitioned phase
    reading="As Table 2, with LPP-SGD's partitioned updates after T_st = T / 2 (002 §1.2). " + NOTE_QUICK,
    source="002 Table 3 (2 RTX 2080 Ti GPUs, 300 epochs), mean of 3 runs",
)
