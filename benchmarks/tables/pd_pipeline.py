"""pd-pipeline (an extension of the papers): PD-ASGD against synchronous pipeline parallelism.

000's reviewers asked how PD-ASGD compares with pipeline parallelism (GPipe, 1F1B), which also
overlaps forwards and backwards, and what each method costs in memory. No paper reports it, so
this table has no paper values: on equal devices (2 processes on a CPU or 2 GPUs at smoke and
quick, 3 at paper, `run --devices N` for another count; bp on one), samples/s, the job's peak
memory (its processes summed), accuracy after the same epochs (no time budget: every row trains
the profile's epochs), the pipelines' idle fraction (measured, and the schedule's in theory) and
the async methods' staleness.
"""

from __future__ import annotations

from core.job import Row

from .common.cifar import RUNS
from .common.spec import Cell, register_table
from .common.targets import PIPELINE

METHODS = ("bp", "async_lu", "async_bu", "gpipe", "pipe_1f1b", "ddp")
# Every row trains all of the profile's epochs: accuracy is compared at equal epochs.
EQUAL_EPOCHS = {"time_budget_s": 0.0}


def cells(profile: str) -> list[Cell]:
    """ResNet-18 on CIFAR-10, every method on the table's equal devices, each training all its epochs."""
    return [
        Cell("cifar10", "resnet18", Row(method), RUNS[profile], settings=tuple(EQUAL_EPOCHS.items()),
             spread=True, min_devices=2)
        for method in METHODS
    ]  # fmt: skip


SPEC = register_table(
    id="pd-pipeline",
    title="Beyond the papers: PD-ASGD against pipeline parallelism (GPipe, 1F1B) and DDP on equal devices",
    cells=cells,
    kind="pipeline",
    metrics=("samples_per_s", "pipeline_idle_frac", "pipeline_bubble_theory", "staleness_mean"),
    targets={profile: {"resnet18": target} for profile, target in PIPELINE.items()},
    source="the suite's extension (000's reviewers asked for a pipeline-parallel comparison and memory)",
    reading=(
        "Ours, not the papers': GPipe and 1F1B from torch.distributed.pipelining with the stages balanced "
        "by measured time and 4 micro-batches per batch (methods/gpipe.py); every row trains the profile's "
        "epochs without a time budget; docs/methods.md, 'gpipe / pipe_1f1b'."
    ),
)
