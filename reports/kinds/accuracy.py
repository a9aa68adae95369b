"""Table 5: test and train accuracy at the best epoch, time to it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, add_paper, register_kind
from ..values import summarise


@register_kind("accuracy")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Table 5: test and train accuracy at the best epoch, time to it."""
    summary = summarise(per_run, ["best_acc", "train_acc_best", "tta_best_s"])
    add_paper(summary, spec, ("test_acc_pct", "train_acc_pct", "tta_s"))
    return summary
