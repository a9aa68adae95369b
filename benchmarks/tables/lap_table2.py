"""002 Table 2: LAP-SGD at (U, B) = (4, 128), (6, 128), (4, 256), ResNet-20 / CIFAR-10, Q = 2.

Its runs are shared with Table 3 (LPP-SGD, the same cells) and hold the MB-SGD (`ddp`, B = 128)
reference both are judged against: they are tagged `lap-table2`, so running either resumes both.
"""

from __future__ import annotations

from .common.lap002 import NOTE_QUICK, lap_cells, lap_row
from .common.spec import Cell, register_table
from .lap_table1 import values

SETTINGS = (dict(U=4, B=128), dict(U=6, B=128), dict(U=4, B=256))
CELLS = [
    *[("lapsgd", s) for s in SETTINGS],
    *[("lppsgd", s) for s in SETTINGS],
    ("ddp", dict(B=128)),  # 002's baseline (Table 1), at equal epochs
]
MB_SGD = {("resnet20", lap_row("ddp", dict(B=128))): values(0.016, 99.75, 0.234, 92.95, 1754, "Baseline")}


def cells(profile: str) -> list[Cell]:
    """LAP-SGD's and LPP-SGD's cells and the MB-SGD reference; quick: the U = 4, B = 128 cells and
    the reference only (U = 6 would put 12 workers on 2 cores)."""
    rows = [c for c in CELLS if profile != "quick" or c[1] in (dict(U=4, B=128), dict(B=128))]
    return lap_cells("cifar10", "resnet20", rows, profile)


SPEC = register_table(
    id="lap-table2",
    title="002 Table 2: LAP-SGD at (U, B) = (4, 128), (6, 128), (4, 256), ResNet-20 / CIFAR-10, 2 devices",
    cells=cells,
    rows=tuple(lap_row(m, s) for m, s in CELLS if m != "lppsgd"),
    paper={
        ("resnet20", lap_row("lapsgd", SETTINGS[0])): values(0.012, 99.83, 0.270, 92.92, 1304, "Excellent"),
        ("resnet20", lap_row("lapsgd", SETTINGS[1])): values(0.023, 99.51, 0.266, 92.91, 1281, "Excellent"),
        ("resnet20", lap_row("lapsgd", SETTINGS[2])): values(0.010, 99.90, 0.280, 92.93, 1219, "Excellent"),
        **MB_SGD,
    },
    kind="final",
    reading="U Hogwild! workers per device, 002's LR warm-up and scaling as PL-SGD, K = 1 for the first "
    "half then 16; `ddp[batch_size=128]` is 002's MB-SGD baseline (Table 1) at equal epochs. " + NOTE_QUICK,
    source="002 Table 2 (2 RTX 2080 Ti GPUs, 300 epochs), mean of 3 runs",
)
