"""Tables of how methods run: best accuracy and the spec's per-epoch metrics (mean over epochs)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, register_kind
from ..values import summarise


@register_kind("throughput")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Tables of how methods run: best accuracy and the spec's per-epoch metrics (mean over epochs)."""
    return summarise(per_run, ["best_acc", *spec.metrics])
