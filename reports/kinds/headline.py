"""004's headline: time to the target per method, and how many times faster async_lu reached it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..render import Section, add_paper, register_kind
from ..values import summarise


@register_kind("headline")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """004's headline: time to the target per method, and how many times faster async_lu reached it."""
    lu = per_run[per_run["method"] == "async_lu"].set_index(["model", "run_index"])["tta_target_s"]
    per_run = per_run.assign(
        pd_asgd_speedup=[
            t / lu.get((m, i), math.nan)
            for m, i, t in zip(per_run["model"], per_run["run_index"], per_run["tta_target_s"], strict=True)
        ]
    )
    summary = summarise(per_run, ["best_acc", "tta_target_s", "epochs_target", "pd_asgd_speedup"])
    add_paper(summary, spec, ("speedup",))
    section.notes.append(
        "pd_asgd_speedup: this method's time to the target over async_lu's (same run index); "
        "004 reports 2.14 for LPP-SGD and 1.34 for DDP."
    )
    return summary
