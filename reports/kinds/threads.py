"""004's thread ratios: samples/s (and against the method's 1:1 row), MFU, staleness, accuracy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, _pyplot, add_paper, register_kind, save_figure
from ..values import natural_key, relative_to, summarise


@register_kind("threads")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """004's thread ratios: samples/s (and against the method's reference row, 1:1), MFU, staleness,
    accuracy."""
    speedup = {"speedup_vs_1to1": ("samples_per_s", lambda a, b: a / b)}
    per_run = relative_to(per_run, spec.reference, speedup)
    reference = ", ".join(f"{k}={v}" for k, v in spec.reference.items())
    section.figure = draw_threads(spec, section.profile, per_run, out_dir)
    summary = summarise(per_run, [*spec.metrics, "speedup_vs_1to1", "best_acc", "tta_target_s"])
    add_paper(summary, spec, ("setting",))
    wanted = [f"{m} {v:.0%}" for m, v in spec.target_values(section.profile).items()]
    section.notes.append(
        f"speedup_vs_1to1: samples/s over the same method's run with {reference} (000's bound for 1 "
        f"forward and B >= β backward threads is 1 + β). tta_target_s: time to {', '.join(wanted)}."
    )
    return summary


def draw_threads(spec, profile: str, per_run: pd.DataFrame, out_dir: Path) -> Path:
    """Samples/s and mean staleness per F:B cell, LU against BU, one column per model."""
    plt, sns = _pyplot()
    ratios = zip(per_run["forward_threads"], per_run["backward_threads"], strict=True)
    data = per_run.assign(cell=[f"{forward}:{backward}" for forward, backward in ratios])
    models = list(dict.fromkeys(data["model"]))
    order = sorted(set(data["cell"]), key=natural_key)
    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 7), squeeze=False)
    for col, model in enumerate(models):
        of_model = data[data["model"] == model]
        panels = (("samples_per_s", "samples/s"), ("staleness_mean", "mean staleness"))
        for row, (metric, label) in enumerate(panels):
            ax = axes[row][col]
            sns.barplot(data=of_model, x="cell", y=metric, hue="method", order=order, errorbar="sd", ax=ax)
            ax.set_xlabel("forward:backward threads")
            ax.set_ylabel(label)
            ax.set_title(f"{model} ({profile})", fontsize=10)
    return save_figure(fig, spec.title, spec.id, profile, out_dir)
