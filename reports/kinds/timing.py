"""Table 9: forward, backward and β per model, beside the paper's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, paper_fmt, register_kind
from ..values import summarise


def paper_beta(cell: dict) -> float:
    """β = backward / forward of a Table 9 cell of the paper."""
    return cell["backward_s"][0] / cell["forward_s"][0]


@register_kind("timing", curves=False)
def render(section: Section, spec, finished: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Table 9: forward, backward and β per model, beside the paper's."""
    per_run = finished[["model", "run_index", "forward_s", "backward_s", "beta"]]
    section.per_run = per_run
    summary = summarise(per_run, ["forward_s", "backward_s", "beta"], keys=("model",))
    paper = [spec.paper.get(m, {}) for m in summary["model"]]
    for column in ("forward_s", "backward_s"):
        summary[f"paper_{column}"] = [paper_fmt(cell.get(column)) for cell in paper]
    summary["paper_beta"] = [f"{paper_beta(cell):.2f}" if cell else "–" for cell in paper]
    return summary
