"""pd-pipeline: throughput, peak memory, accuracy at equal epochs, the pipelines' idle fraction and
the async methods' staleness per method; a figure of throughput against memory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, _pyplot, register_kind, save_figure
from ..values import MEMORY, summarise

COLUMNS = ["best_acc", "final_test_acc", "epochs_best", "samples_per_s", "pipeline_idle_frac",
           "pipeline_bubble_theory", "staleness_mean"]  # fmt: skip


@register_kind("pipeline")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """The rows' means over runs, and the throughput-memory figure."""
    summary = summarise(per_run, [*COLUMNS, MEMORY])
    section.figure = draw(spec, section.profile, per_run, out_dir)
    section.notes.append(
        "An extension of the papers, not their result: no paper reports this table. Every row trains "
        "the profile's epochs (no time budget) on the same devices (bp: one). final_test_acc: after "
        "the last epoch; samples_per_s: mean over epochs; mem_peak_gib: the job's processes summed, "
        "its highest epoch; pipeline_idle_frac: the share of the stages' time in steps spent not "
        "computing (waiting for a neighbour), measured; pipeline_bubble_theory: (S - 1) / (M + S - 1) "
        "for S stages and M micro-batches; staleness_mean: the async methods' updates between a "
        "pass's read and its own update."
    )
    return summary


def draw(spec, profile: str, per_run: pd.DataFrame, out_dir: Path) -> Path:
    """Samples/s against peak memory, one point per run, one colour per method."""
    plt, sns = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = list(dict.fromkeys([*(m for m in spec.methods if m in set(per_run["label"])), *per_run["label"]]))
    sns.scatterplot(data=per_run, x=MEMORY, y="samples_per_s", hue="label", hue_order=order, s=80, ax=ax)
    ax.legend(title="method")
    ax.set_xlabel("peak memory of the job (GiB, processes summed)")
    ax.set_ylabel("samples/s")
    ax.set_title(f"throughput against memory ({profile})", fontsize=10)
    synthetic = " (smoke: synthetic data in the dataset's shape)" if profile == "smoke" else ""
    return save_figure(fig, spec.title + synthetic, spec.id, profile, out_dir)
