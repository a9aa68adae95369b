"""002 Table 4: LAP-SGD over U x B, ResNet-20 / CIFAR-10, Q = 2 (mean of 5 runs in 002)."""

from __future__ import annotations

from .common.lap002 import NOTE_QUICK, lap_cells, lap_row
from .common.spec import Cell, register_table, single_values

SETTINGS = (dict(U=4, B=128), dict(U=6, B=128), dict(U=8, B=128), dict(U=4, B=256), dict(U=6, B=256))
# 002's columns here: Tr.A., Te.A., T.
PAPER = {(4, 128): (99.62, 92.81, 1304), (6, 128): (99.85, 92.92, 1266), (8, 128): (99.62, 92.64, 1259),
         (4, 256): (99.72, 92.83, 1219), (6, 256): (99.90, 92.24, 1166)}  # fmt: skip


def cells(profile: str) -> list[Cell]:
    """The five (U, B) cells (002: 5 runs each)."""
    return lap_cells("cifar10", "resnet20", [("lapsgd", s) for s in SETTINGS], profile, paper_runs=5)


SPEC = register_table(
    id="lap-table4",
    title="002 Table 4: LAP-SGD over workers per device U x local batch B, ResNet-20 / CIFAR-10, 2 devices",
    cells=cells,
    paper={
        ("resnet20", lap_row("lapsgd", dict(U=u, B=b))): single_values(
            train_acc_pct=tr, test_acc_pct=te, time_s=t
        )
        for (u, b), (tr, te, t) in PAPER.items()
    },
    kind="final",
    reading="How many concurrent workers a device takes before they slow each other down (002 §3). "
    + NOTE_QUICK,
    source="002 Table 4 (2 RTX 2080 Ti GPUs, 300 epochs), mean of 5 runs",
)
