"""Tables 7, 8: bp's time to a* over each method's (a*: the model's lowest best accuracy)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, add_paper, register_kind
from ..values import speedups, summarise


@register_kind("speedup")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Tables 7, 8: bp's time to a* over each method's."""
    ratios = speedups(per_run)
    if ratios.empty:
        return pd.DataFrame()
    summary = summarise(ratios, ["speedup"])
    add_paper(summary, spec, ("speedup",))
    return summary
