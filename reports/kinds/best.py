"""Tables 2, 4, 6: best accuracy, time and epochs to it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, add_paper, register_kind
from ..values import summarise


@register_kind("best")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Tables 2, 4, 6: best accuracy, time and epochs to it."""
    summary = summarise(per_run, ["best_acc", "tta_best_s", "epochs_best", "mfu"])
    add_paper(summary, spec, ("best_acc_pct", "tta_s", "epochs"))
    return summary
