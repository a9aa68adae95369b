"""004's thread-ratio claim: forward:backward threads F:B in {1:1, 1:2, 1:3, 2:2, 2:4}, Async LU and BU.

004 runs one forward and two backward threads "to match the 2x longer backward pass" and says
this raises hardware utilisation; it does not report other ratios. This table measures them: per
cell samples/s, MFU, staleness (mean and maximum) and the accuracy reached, on ResNet-18 /
CIFAR-10 and the LSTM / IMDb. On a CPU the process's cores are split among the F + B threads as
in every async run (one intra-op thread each on 2 cores, so 2:4 runs 6 threads on 2 cores); on a
GPU each thread launches onto one device and the ratios differ in how much of it they keep busy.
"""

from __future__ import annotations

from core.job import Row

from .common.cifar import RUNS
from .common.pd004 import epochs_settings
from .common.spec import Cell, register_table
from .common.targets import CIFAR10, IMDB, TWO_EPOCHS

METHODS = ("async_lu", "async_bu")
RATIOS = ((1, 1), (1, 2), (1, 3), (2, 2), (2, 4))  # (forward threads, backward threads)
WORKLOADS = (("cifar10", "resnet18"), ("imdb", "lstm"))
# quick: 2 epochs per cell (the rates settle within the first; the accuracies are early ones), so
# that 20 runs fit about an hour on 2 cores; paper and smoke keep the profile's epochs.
EPOCHS = {"quick": 2}


def ratio_row(method: str, forward: int, backward: int) -> Row:
    """The row of F forward and B backward threads (1:2, the method's default, is its plain row)."""
    return Row.of(method, forward_threads=forward, backward_threads=backward)


ROWS = tuple(ratio_row(method, f, b) for method in METHODS for f, b in RATIOS)


def cells(profile: str) -> list[Cell]:
    """Both workloads x both methods x the ratios, in one process each, at the table's epochs (the
    cosine compressed to them)."""
    cells = []
    for dataset, model in WORKLOADS:
        epochs, schedule = epochs_settings(dataset, model, profile, EPOCHS)
        cells += [
            Cell(
                dataset, model, row, RUNS[profile], epochs=epochs, settings=tuple(schedule.items()), devices=1
            )
            for row in ROWS
        ]
    return cells


SPEC = register_table(
    id="pd-threads",
    title="004: forward:backward thread ratio (F:B) of Async LU/BU: samples/s, MFU, staleness, accuracy",
    cells=cells,
    reference=dict(forward_threads=1, backward_threads=1),
    kind="threads",
    metrics=("samples_per_s", "mfu", "staleness_mean", "staleness_max"),
    # 004 reports only its 1:2 setting: the paper column marks that row (the keys give the row order).
    paper={
        (model, ratio_row(method, f, b)): {
            "setting": ("004's setting" if (f, b) == (1, 2) else "not reported", None)
        }
        for _, model in WORKLOADS
        for method in METHODS
        for f, b in RATIOS
    },
    targets={
        "paper": {"resnet18": CIFAR10["paper"]["resnet18"], "lstm": IMDB["paper"]},
        "quick": {"resnet18": TWO_EPOCHS, "lstm": IMDB["two_epochs"]},
        "smoke": {"resnet18": CIFAR10["smoke"]["resnet18"], "lstm": IMDB["smoke"]},
    },
    reading=(
        "Each cell is one process with F forward and B backward threads (`forward_threads`, "
        "`backward_threads`) and the default in-flight limit; per-epoch metrics are means over the "
        "epochs (staleness_max: the mean of each epoch's maximum). `quick`: 2 epochs per cell."
    ),
    source="004 (the later version of 000): 1 forward : 2 backward threads; no other ratio reported",
)
