"""pd-remedies-paper-models (an extension of the papers): the GPT's delay corrections on the paper's
own workloads, where they must not cost accuracy.

pd-transformer-remedies tries corrections for stale gradients on the GPT. A correction a user
turns on for a Transformer should not hurt the models 000 trains: this table runs Table 1's
CIFAR-10 ResNet-18 cell and Table 6's IMDb LSTM cell with `async_lu` under 000's settings (the
control) and under each correction, and Muon on the LSTM (its recurrent and hidden weights are
the matrices Muon takes; a ResNet has none but its classifier, so Muon would be AdamW there).
"""

from __future__ import annotations

from core.job import Row

from .common.spec import Cell, register_table
from .pd_transformer_remedies import DELAY_COMPENSATION

WORKLOADS = (("cifar10", "resnet18"), ("imdb", "lstm"))
# PipeMare's warm-up K in epochs: the first of quick's 5 (ResNet-18) and 8 (LSTM) epochs.
DELAY_LR_EPOCHS = {"smoke": 1.0, "quick": 1.0, "paper": 10.0}


def rows(dataset: str, model: str, profile: str) -> list[Row]:
    """The control and each correction on one workload, each row with the settings that tell it
    apart from the workload's own (a run is of the most specific row: core.job.run_row)."""
    k = DELAY_LR_EPOCHS[profile]

    def row(**changes) -> Row:
        return Row.of("async_lu", **changes)

    corrections = [
        row(),
        row(delay_momentum=True),
        row(delay_lr_epochs=k),
        row(predict_weights=True),
        row(delay_compensation=DELAY_COMPENSATION),
    ]
    return corrections + ([row(optimizer="muon", momentum=0.95)] if model == "lstm" else [])


def cells(profile: str) -> list[Cell]:
    """One run of every row on each workload."""
    return [Cell(d, m, row, 1) for d, m in WORKLOADS for row in rows(d, m, profile)]


SPEC = register_table(
    id="pd-remedies-paper-models",
    title="Beyond the papers: the GPT's delay corrections on 000's ResNet-18 (CIFAR-10) and LSTM (IMDb)",
    cells=cells,
    kind="best",
    source="the suite's extension (no paper reports it); cells of 000 Tables 1 and 6",
    reading=(
        "Ours, not the papers': async_lu at each workload's profile settings (SGD with momentum on "
        "ResNet-18, Adam on the LSTM) and with each correction of pd-transformer-remedies, one run "
        "each; Muon on the LSTM only. docs/fidelity.md says what each correction changes."
    ),
)
