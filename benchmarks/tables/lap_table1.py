"""002 Table 1: MB-SGD (`ddp`) and PL-SGD at B_loc = 128 and 1024, ResNet-20 / CIFAR-10, Q = 2."""

from __future__ import annotations

from .common.lap002 import NOTE_QUICK, lap_cells, lap_row
from .common.spec import Cell, register_table, single_values

CELLS = [("ddp", dict(B=128)), ("ddp", dict(B=1024)), ("plsgd", dict(B=128)), ("plsgd", dict(B=1024))]


def values(train_loss, train_acc, test_loss, test_acc, time_s, quality) -> dict:
    """002's columns: Train Loss, Train Acc., Test Loss, Test Acc, Time (Sec), Quality/Perf."""
    return single_values(
        train_loss=train_loss,
        train_acc_pct=train_acc,
        test_loss=test_loss,
        test_acc_pct=test_acc,
        time_s=time_s,
        quality=quality,
    )


def cells(profile: str) -> list[Cell]:
    """The four cells on ResNet-20 / CIFAR-10."""
    return lap_cells("cifar10", "resnet20", CELLS, profile)


SPEC = register_table(
    id="lap-table1",
    title="002 Table 1: MB-SGD and PL-SGD at B_loc 128 and 1024, ResNet-20 / CIFAR-10, 2 devices",
    cells=cells,
    paper={
        ("resnet20", lap_row("ddp", dict(B=128))): values(0.016, 99.75, 0.234, 92.95, 1754, "Baseline"),
        ("resnet20", lap_row("ddp", dict(B=1024))): values(0.023, 99.51, 0.293, 91.38, 1201, "OK"),
        ("resnet20", lap_row("plsgd", dict(B=128))): values(0.018, 99.69, 0.245, 92.98, 1603, "Good"),
        ("resnet20", lap_row("plsgd", dict(B=1024))): values(0.154, 94.69, 0.381, 87.81, 1159, "Poor"),
    },
    kind="final",
    reading="002's LR warm-up and scaling (α0 = 0.1 to α0 x B/128 x Q over 5 epochs), then x0.1 at 50 % "
    "and 75 %; PL-SGD averages every step for the first half, then every K = 16. " + NOTE_QUICK,
    source="002 Table 1 (2 RTX 2080 Ti GPUs, 300 epochs), mean of 3 runs",
)
