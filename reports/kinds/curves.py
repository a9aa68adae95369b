"""Figures 2-4: learning curves as a PNG, best accuracy and time to it as a table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, _pyplot, register_kind, save_figure
from ..values import summarise


@register_kind("curves")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Figures 2-4: the learning curves as a PNG, best accuracy and time to it as a table."""
    section.figure = draw_curves(spec, section.profile, per_run, out_dir)
    return summarise(per_run, ["best_acc", "tta_best_s"])


def draw_curves(spec, profile: str, per_run: pd.DataFrame, out_dir: Path) -> Path:
    """Test accuracy vs epoch (mean line, band = ±1 std over runs) and vs training time (one line per run)."""
    from matplotlib.ticker import MaxNLocator

    plt, sns = _pyplot()

    long = pd.concat(
        [c.assign(model=m, method=me, run=r) for c, m, me, r in
         zip(per_run["_curve"], per_run["model"], per_run["method"], per_run["run_index"], strict=True)],
        ignore_index=True,
    )  # fmt: skip
    long["epochs"] = long["epoch"] + 1  # epochs completed when the point was evaluated
    models = sorted(dict.fromkeys(long["model"]))
    hue_order = [m for m in spec.methods if m in set(long["method"])]
    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 7.5), squeeze=False)
    for col, model in enumerate(models):
        data = long[long["model"] == model]
        top, bottom = axes[0][col], axes[1][col]
        style = dict(data=data, y="test_acc", hue="method", hue_order=hue_order)
        sns.lineplot(x="epochs", errorbar="sd", ax=top, **style)
        sns.lineplot(x="train_time_s", units="run", estimator=None, ax=bottom, **style)
        runs = data.groupby("method")["run"].nunique()
        spread = "mean, band ±1 std over runs" if runs.min() > 1 else "one run per method: no band"
        top.set_title(f"{model} ({profile}): {spread}", fontsize=10)
        bottom.set_title("each run against its training clock", fontsize=10)
        top.set_xlabel("epoch")
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
        bottom.set_xlabel("training time (s)")
        for ax in (top, bottom):
            ax.set_ylabel("test accuracy")
    synthetic = " (smoke: synthetic data in the dataset's shape)" if profile == "smoke" else ""
    return save_figure(fig, spec.title + synthetic, spec.id, profile, out_dir)
