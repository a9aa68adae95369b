"""The cells of the CIFAR tables (and of the ImageNet and IMDb ones): models x methods.

Tables 1 and 2 (and Figure 3) read the same CIFAR-10 runs; Tables 3 and 4 (and Figure 2) the
same CIFAR-100 runs: the views name the first table as their experiment, so their jobs are that
table's (the job keys coincide) and running any of them resumes the others.
"""

from __future__ import annotations

from core.job import Row

from .spec import Cell, CellsFunction

MODELS = ("resnet18", "resnet50")
# Runs per cell: the paper's 3; quick keeps 3 only where a table's quick run fits an hour.
RUNS = {"paper": 3, "quick": 1, "smoke": 1}


def cifar_cells(
    dataset: str, methods: tuple[str, ...], models: tuple[str, ...] = MODELS, spread: bool = False
) -> CellsFunction:
    """The cells of a table of plain method rows: models x methods, the profile's runs each;
    `spread`: the async methods on several processes too (Tables 5, 7, 8 compare multi-device runs).

    Also used for the ImageNet and IMDb tables, with their one model.
    """

    def cells(profile: str) -> list[Cell]:
        return [
            Cell(dataset, model, Row(method), RUNS[profile], spread=spread)
            for model in models
            for method in methods
        ]

    return cells
