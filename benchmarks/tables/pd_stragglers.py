"""004's straggler claim: "accuracy within 2.5 % even under significant straggler delays", because
the faster devices (threads, workers) do not wait for the slow one.

One unit of each job is slowed after every step by 0, 25, 50 or 100 % of its own step time
(core/runtime/straggler.py: backward thread 0 of the last rank for async_lu; the last rank for ddp, which
every rank then waits for; worker 0 of the last rank for lapsgd). Columns: the accuracy reached and
its drop from the same method without delay, and the time to a fixed accuracy against the run
without delay. 004 gives neither its delays nor where they fall: this is the suite's reading.
"""

from __future__ import annotations

from core.job import Row

from .common.cifar import RUNS
from .common.pd004 import epochs_settings
from .common.spec import Cell, register_table
from .common.targets import CIFAR10, ONE_EPOCH

METHODS = ("async_lu", "ddp", "lapsgd")
DELAYS = (0.0, 0.25, 0.5, 1.0)  # fractions of the slowed unit's own step time
# quick: 1 epoch per run (12 runs, 2 of them twice as slow by design, fit about 40 minutes here).
EPOCHS = {"quick": 1}


def delay_row(method: str, fraction: float) -> Row:
    """The row of a delay of `fraction` of a step (none: the method's plain row)."""
    return Row.of(method, straggler_delay_frac=fraction) if fraction else Row(method)


def cells(profile: str) -> list[Cell]:
    """The methods x delay levels on ResNet-18 / CIFAR-10."""
    epochs, schedule = epochs_settings("cifar10", "resnet18", profile, EPOCHS)
    return [
        Cell("cifar10", "resnet18", delay_row(method, fraction), RUNS[profile], epochs=epochs,
             settings=tuple(schedule.items()))
        for method in METHODS
        for fraction in DELAYS
    ]  # fmt: skip


SPEC = register_table(
    id="pd-stragglers",
    title="004: straggler delays (0-100 % of a step on one unit): accuracy drop and time to accuracy",
    cells=cells,
    reference=dict(straggler_delay_frac=0.0),
    kind="stragglers",
    metrics=("samples_per_s", "mfu"),
    paper={("resnet18", "async_lu"): {"max_drop_pts": (2.5, None)}},
    targets={
        "paper": {"resnet18": CIFAR10["paper"]["resnet18"]},
        "quick": {"resnet18": ONE_EPOCH},
        "smoke": {"resnet18": CIFAR10["smoke"]["resnet18"]},
    },
    reading=(
        "Every step of one unit sleeps the given fraction of its own recent step time (probability 1, "
        "`straggler_delay_frac`): backward thread 0 of the last rank (async_lu), the last rank (ddp), "
        "worker 0 of the last rank (lapsgd). Drop and time ratio are against the same method's run "
        "without delay of the same run index. `quick`: 1 epoch per run, 2 processes for ddp and lapsgd."
    ),
    source="004: accuracy within 2.5 points under straggler delays (delays and placement not given)",
)
