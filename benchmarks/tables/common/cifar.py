"""The CIFAR training runs that Tables 1-4 and Figures 2-3 are views of, per profile.

Tables 1 and 2 (and Figure 3) read the same CIFAR-10 runs; Tables 3 and 4 (and Figure 2) the
same CIFAR-100 runs. Their jobs are therefore built here once, tagged with the first table's id
(`table1` / `table3`): the job keys coincide, so running any of the views resumes the others.
"""

from __future__ import annotations

from core.job import Job, Row
from methods import METHODS

from .spec import Cell, CellsFunction, cell_job

MODELS = ("resnet18", "resnet50")
# Runs per cell: the paper's 3; quick keeps 3 only where a table's quick run fits an hour.
RUNS = {"paper": 3, "quick": 1, "smoke": 1}
# Methods whose parallelism is processes (one per device), not threads within one process.
PROCESS_PARALLEL = ("lapsgd", "lppsgd", "ddp", "plsgd")


def devices_for(method: str, profile: str, spread: bool = False, requested: int | None = None) -> int:
    """Processes of a `method` job. The paper runs every multi-device method on 3 GPUs.

    On a 2-core CPU (quick) a method uses both cores its own way: the async methods through their
    threads in one process, the process-parallel baselines as 2 processes of one core each;
    `spread` puts the async methods on 2 processes too (Tables 7-8 compare multi-device runs).
    Smoke keeps one process: seconds per run. `requested` (`run --devices N`) replaces the
    profile's count for every multi-device method; single-device ones (`bp`) stay on one.
    """
    if METHODS[method].max_devices == 1:
        return 1
    if requested is not None:
        return requested
    if profile == "paper":
        return 3
    if profile == "quick" and (spread or method in PROCESS_PARALLEL):
        return 2
    return 1


def cifar_cells(dataset: str, methods: tuple[str, ...], models: tuple[str, ...] = MODELS) -> CellsFunction:
    """The cells of a table of plain method rows: models x methods, the profile's runs each.

    Also used for the ImageNet and IMDb tables, with their one model.
    """

    def cells(profile: str) -> list[Cell]:
        return [Cell(dataset, model, Row(method), RUNS[profile]) for model in models for method in methods]

    return cells


def cifar_jobs(
    table: str,
    cells: CellsFunction,
    profile: str,
    runs: int | None,
    spread: bool = False,
    devices: int | None = None,
) -> list[Job]:
    """The cells' training jobs x runs, in experiment `table`; methods not implemented yet are left out."""
    return [
        cell_job(table, cell, profile, run, devices=devices_for(cell.row.method, profile, spread, devices))
        for cell in cells(profile)
        if cell.row.method in METHODS
        for run in range(runs or cell.runs)
    ]
