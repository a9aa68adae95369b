"""002 Table 5: LAP-SGD over the averaging period K x the switch epoch P, ResNet-20 / CIFAR-10.

B = 128, U = 6, Q = 2; K = 1 until epoch P (of 300), then K. Our switch is the same fraction of the
budget, P / 300 (in `quick`, of its few epochs). Mean of 5 runs in 002.
"""

from __future__ import annotations

from .common.lap002 import NOTE_QUICK, lap_cells, lap_row
from .common.spec import Cell, register_table, single_values

# (K, P) -> 002's Tr.A., Te.A., T.
PAPER = {(1, 150): (99.76, 93.01, 1266), (4, 150): (99.85, 92.78, 1263), (8, 150): (99.62, 93.08, 1262),
         (8, 0): (99.78, 92.83, 1263), (16, 150): (99.90, 93.16, 1261)}  # fmt: skip


def cells(profile: str) -> list[Cell]:
    """The five (K, P) cells at U = 6, B = 128 (002: 5 runs each)."""
    rows = [("lapsgd", dict(U=6, B=128, K=k, P=p)) for k, p in PAPER]
    return lap_cells("cifar10", "resnet20", rows, profile, paper_runs=5)


SPEC = register_table(
    id="lap-table5",
    title="002 Table 5: LAP-SGD over averaging period K x switch epoch P, ResNet-20 / CIFAR-10, 2 devices",
    cells=cells,
    paper={
        ("resnet20", lap_row("lapsgd", dict(U=6, B=128, K=k, P=p))): single_values(
            train_acc_pct=tr, test_acc_pct=te, time_s=t
        )
        for (k, p), (tr, te, t) in PAPER.items()
    },
    kind="final",
    reading="Whether LAP-SGD is robust to small changes of K (002 §3: the increments of S are "
    "'grouped' in time, so K < Q need not add rounds). P is in 002's epochs; the switch happens at "
    "P / 300 of the budget. " + NOTE_QUICK,
    source="002 Table 5 (2 RTX 2080 Ti GPUs, 300 epochs), mean of 5 runs",
)
