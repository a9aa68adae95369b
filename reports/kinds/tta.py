"""Tables 1, 3: time and epochs to a fixed target and to the worst method's best."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..render import Section, add_paper, register_kind
from ..values import summarise


@register_kind("tta")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Tables 1, 3: time and epochs to the fixed target and to the worst method's best."""
    targets = spec.target_values(section.profile)
    summary = summarise(per_run, ["tta_target_s", "epochs_target", "tta_worst_s", "epochs_worst", "mfu"])
    reached = per_run.groupby(["model", "label"], sort=False)["tta_target_s"]
    counts = {key: (int(group.notna().sum()), len(group)) for key, group in reached}
    summary["target_reached"] = [
        "{} of {}".format(*counts[key]) for key in zip(summary["model"], summary["method"], strict=True)
    ]  # the means above are over the runs that reached the target
    summary["target"] = [targets.get(m, math.nan) for m in summary["model"]]
    summary["worst_best"] = [per_run[per_run["model"] == m]["worst_best"].iloc[0] for m in summary["model"]]
    add_paper(summary, spec, ("tta_s", "epochs"))
    section.notes.append(
        "Targets: the workload's frozen one (the claims read only it) and the paper's rule, the best "
        "accuracy reached by the worst method (the lowest best accuracy of any run of the model shown)."
    )
    return summary
