"""002 Table 9: SqueezeNet / CIFAR-10, Q = 2 (002's setting S1)."""

from __future__ import annotations

from .common.lap002 import NOTE_QUICK, lap_cells, lap_row
from .common.spec import Cell, register_table, single_values

CELLS = [("lapsgd", dict(U=4, B=128)), ("lppsgd", dict(U=3, B=256)), ("ddp", dict(B=1024)),
         ("ddp", dict(B=128)), ("plsgd", dict(B=1024)), ("plsgd", dict(B=128))]  # fmt: skip
# Per cell, in CELLS' order: 002's Tr.L., Te.L., Tr.A., Te.A., T.
PAPER = [
    (0.004, 0.385, 99.95, 92.48, 1251),
    (0.007, 0.355, 99.89, 92.55, 1027),
    (0.003, 0.325, 99.97, 91.50, 1580),
    (0.005, 0.294, 99.93, 92.41, 2243),
    (0.005, 0.329, 99.93, 91.99, 1202),
    (0.006, 0.283, 99.91, 92.51, 1843),
]


def cells(profile: str) -> list[Cell]:
    """The six cells on SqueezeNet / CIFAR-10."""
    return lap_cells("cifar10", "squeezenet", CELLS, profile)


SPEC = register_table(
    id="lap-table9",
    title="002 Table 9: SqueezeNet / CIFAR-10, LAP-SGD and LPP-SGD vs MB-SGD and PL-SGD, 2 devices",
    cells=cells,
    paper={
        ("squeezenet", lap_row(*cell)): single_values(
            train_loss=trl, test_loss=tel, train_acc_pct=tra, test_acc_pct=tea, time_s=t
        )
        for cell, (trl, tel, tra, tea, t) in zip(CELLS, PAPER, strict=True)
    },
    kind="final",
    reading="K = 16 after half the budget in LAP-SGD, LPP-SGD and PL-SGD (002 §3). " + NOTE_QUICK,
    source="002 Table 9 (2 RTX 2080 Ti GPUs, 300 epochs), mean of 3 runs",
)
