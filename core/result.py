"""The typed records a job leaves: the machine it ran on (`Hardware`) and what it ended with
(`RunResult`, the object `train --json` prints). One definition each; every job, finished or not,
produces the same fields."""

from __future__ import annotations

import functools
import math
import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .job import Job

# The store's schema: every run and experiment the suite writes carries it (tag `schema`). A store
# of another schema is refused with one line (benchmarks/engine/tracking.py, Tracker) rather than
# read through shims.
SCHEMA_VERSION = "4"


@dataclass(frozen=True)
class Hardware:
    """The machine a run used: its device kind, the device's name, how many, and the CPU cores."""

    kind: str  # "cuda" or "cpu"
    name: str  # the GPU's name, or the CPU's model
    count: int  # GPUs visible to the job; 1 on a CPU
    cores: int  # logical CPU cores of the host

    @property
    def gpus(self) -> int:
        """GPUs the run had: 0 on a CPU."""
        return self.count if self.kind == "cuda" else 0

    def __str__(self) -> str:
        """'NVIDIA H100 x 1', or 'Intel Xeon (2 cores)': for humans, never parsed."""
        return f"{self.name} x {self.count}" if self.kind == "cuda" else f"{self.name} ({self.cores} cores)"

    def params(self) -> dict[str, object]:
        """The MLflow params a run logs (`hardware_kind`, `hardware_name`, ...)."""
        return {f"hardware_{k}": v for k, v in asdict(self).items()}

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> Hardware | None:
        """The record from a run's logged params; None where absent."""

        def get(name: str) -> object:
            value = params.get(f"hardware_{name}")
            return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

        kind, name, count, cores = (get(k) for k in ("kind", "name", "count", "cores"))
        if kind is None or count is None or cores is None:
            return None
        return cls(str(kind), str(name), int(float(count)), int(float(cores)))


def counts_as_finished(tags) -> bool:
    """Whether a run's tags make it its job's finished run: status `finished`, and not closed by
    another process before (`closed_by`, set with the stale close): an end that landed after that
    close, through the moment between its owner's read of the status and its write (MLflow has no
    compare-and-set), never counts; the job's run that ran again does (docs/design.md)."""
    return tags.get("status") == "finished" and not tags.get("closed_by")


@functools.cache
def this_machine() -> Hardware:
    """This process's hardware: the GPUs where CUDA is used, else the CPU's model."""
    import torch

    cores = os.cpu_count() or 1
    if torch.cuda.is_available():
        return Hardware("cuda", torch.cuda.get_device_name(0), torch.cuda.device_count(), cores)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return Hardware("cpu", model, 1, cores)


@dataclass(frozen=True)
class RunResult:
    """How a job ended: what `train --json` prints and `run` collects, with the same fields for a
    finished, diverged, failed or interrupted job (values it never reached are None)."""

    run_id: str
    table: str
    method: str
    dataset: str
    model: str
    profile: str
    run_index: int
    status: str  # finished | diverged | failed | interrupted (the run's tag `status`)
    stop_reason: str | None  # max_epochs | patience | time_budget | diverged | measured | failed | ...
    metric: str | None = None  # the workload's metric (test_acc, test_bpb)
    best_metric: float | None = None
    final_metric: float | None = None
    best_test_acc: float = 0.0
    final_test_acc: float | None = None
    final_test_loss: float | None = None
    final_train_loss: float | None = None
    epochs: int | None = None
    train_time_s: float | None = None
    time_to_best_s: float | None = None
    samples_per_s: float | None = None
    mfu: float | None = None
    mem_peak_gib: float | None = None
    others_cpu_max: float | None = None
    contended: bool = False
    error: str | None = None  # a failed job's exception, one line
    measured: dict[str, float] = field(default_factory=dict)  # a measurement's values (Table 9's β)

    @classmethod
    def of(cls, job: Job, run_id: str, status: str, stop_reason: str | None, **values: object) -> RunResult:
        """The result of `job`'s run `run_id`, with the values it reached."""
        return cls(
            run_id=run_id, table=job.table, method=job.method, dataset=job.dataset, model=job.model,
            profile=job.profile, run_index=job.run_index, status=status, stop_reason=stop_reason,
            **values,
        )  # fmt: skip

    def to_json(self) -> dict[str, object]:
        """The result as `train --json` prints it."""
        return asdict(self)

    def numbers(self) -> dict[str, float]:
        """Its float values by name (the measured ones too), for a one-line summary."""
        values = {k: v for k, v in asdict(self).items() if isinstance(v, float)}
        return {**values, **self.measured}
