"""002's tables: the state after the last epoch, with 002's numbers and verdict beside."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, add_paper, register_kind
from ..values import FINAL_METRICS, summarise


@register_kind("final")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """002's tables: train/test loss and accuracy after the last epoch, the training time, the
    spec's per-epoch metrics (means over epochs), and 002's numbers and verdict beside them."""
    summary = summarise(per_run, [f"final_{m}" for m in FINAL_METRICS] + list(spec.metrics))
    add_paper(
        summary, spec, ("train_loss", "train_acc_pct", "test_loss", "test_acc_pct", "time_s", "quality")
    )
    return summary
