"""004's straggler delays: accuracy and its drop, time to the target and samples/s against no delay."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, add_paper, register_kind
from ..values import relative_to, summarise


@register_kind("stragglers")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """004's straggler delays: accuracy and its drop, time to the target and samples/s against no delay."""
    per_run = relative_to(
        per_run,
        spec.reference,
        {
            "acc_drop_pts": ("best_acc", lambda a, ref: (ref - a) * 100),
            "tta_vs_no_delay": ("tta_target_s", lambda a, ref: a / ref),
            "rate_vs_no_delay": ("samples_per_s", lambda a, ref: a / ref),
        },
    )
    summary = summarise(
        per_run,
        ["best_acc", "acc_drop_pts", "tta_target_s", "tta_vs_no_delay", "samples_per_s", "rate_vs_no_delay"],
    )
    add_paper(summary, spec, ("max_drop_pts",))
    section.notes.append(
        "acc_drop_pts: the run without delay's best accuracy minus this run's, in points; "
        "tta_vs_no_delay and rate_vs_no_delay: this run's time to the target and samples/s over the "
        "run without delay's (same method, same run index)."
    )
    return summary
