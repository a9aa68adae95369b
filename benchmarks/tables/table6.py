"""Table 6: IMDb sentiment, 2-layer LSTM, Async LU vs Async BU: best accuracy, time and epochs to it."""

from __future__ import annotations

from . import TableSpec, register_table
from .cifar import cifar_jobs

METHODS = ("async_lu", "async_bu")


def jobs(profile: str, runs: int | None = None) -> list:
    """The IMDb runs, shared with Figure 4 (tagged table6)."""
    return cifar_jobs("table6", "imdb", METHODS, profile, runs, models=("lstm",))


SPEC = register_table(
    TableSpec(
        id="table6",
        title="IMDb (2-layer LSTM): best accuracy, time and epochs to it, Async LU vs Async BU",
        jobs=jobs,
        methods=METHODS,
        # (model, method) -> ((best acc %, ±), (TTA s, ±), (epochs, ±))
        paper={
            ("lstm", "async_lu"): ((85.15, 0.15), (49.3, 9.46), (6, 1)),
            ("lstm", "async_bu"): ((85.06, 0.59), (83.41, 12.56), (12, 2)),
        },
        kind="best",
        source="000 Table 6 (A100 GPUs), mean ± std over 3 runs",
        reading=(
            "Adam with Table 10's lr 1e-3 (the text of §4.3 says 1e-2; see the README's notes on "
            "fidelity); TTA is the time to each run's best accuracy, as the table's columns say."
        ),
    )
)
