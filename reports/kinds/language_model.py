"""pd-transformer: a language model's held-out bits per byte, time to target, tokens/s, MFU and
staleness per block; a figure of the loss against wall-clock time and of staleness against depth."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..render import Section, _pyplot, register_kind, save_figure
from ..values import summarise
from .staleness import staleness_per_tensor

BLOCK = re.compile(r"^blocks\.(\d+)\.")


def staleness_per_block(tensors: pd.DataFrame) -> pd.DataFrame:
    """Each run's mean staleness per Transformer block (the tensors named `blocks.<i>.`), with the
    block's distance from the output (0: the last block, which a backward pass reaches first)."""
    if tensors.empty:
        return tensors
    found = tensors["tensor"].str.extract(BLOCK, expand=False)
    of_blocks = tensors[found.notna()].assign(block=found.dropna().astype(int))
    keys = ["model", "method", "label", "run_index", "block"]
    per_block = of_blocks.groupby(keys, as_index=False)["staleness_mean"].mean()
    last = per_block.groupby(["model", "label", "run_index"])["block"].transform("max")
    return per_block.assign(from_output=last - per_block["block"])


def depth_slope(per_block: pd.DataFrame) -> pd.DataFrame:
    """Per run: the least-squares slope of block staleness against the distance from the output
    (updates per block: positive where staleness grows with depth)."""
    rows = []
    for (model, method, label, run_index), run in per_block.groupby(
        ["model", "method", "label", "run_index"]
    ):
        x, y = run["from_output"].astype(float), run["staleness_mean"]
        spread = ((x - x.mean()) ** 2).sum()
        slope = float(((x - x.mean()) * (y - y.mean())).sum() / spread) if spread > 0 else float("nan")
        rows.append(dict(model=model, method=method, label=label, run_index=run_index, depth_slope=slope))
    return pd.DataFrame(rows)


@register_kind("language_model")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """Bits per byte, time to target, tokens/s, MFU, staleness; the loss and staleness figure."""
    per_block = staleness_per_block(staleness_per_tensor(section.uri, per_run))
    slopes = depth_slope(per_block)
    values = per_run.assign(best_bpb=per_run["best"], tokens_per_s=per_run["samples_per_s"])
    if not slopes.empty:
        values = values.merge(
            slopes[["label", "run_index", "depth_slope"]], on=["label", "run_index"], how="left"
        )
    else:
        values["depth_slope"] = float("nan")
    columns = ["best_bpb", "tta_target_s", "epochs_target", "tta_best_s", "tokens_per_s", "mfu"]
    summary = summarise(values, [*columns, "staleness_mean", "depth_slope"])
    summary["target_bpb"] = [spec.target_values(section.profile).get(m) for m in summary["model"]]
    section.figure = draw(spec, section.profile, per_run, per_block, out_dir)
    section.notes.append(
        "An extension of the papers, not their result: no paper reports this table. best_bpb: the "
        "lowest held-out bits per byte of each run; tta_target_s: training seconds until it reached "
        "target_bpb (mean over the runs that did); tokens_per_s and mfu: means over epochs; "
        "staleness_mean: updates a tensor received between a pass's read and its own update; "
        "depth_slope: the least-squares slope of a block's staleness against its distance from the "
        "output (updates per block)."
    )
    return summary


def draw(spec, profile: str, per_run: pd.DataFrame, per_block: pd.DataFrame, out_dir: Path) -> Path:
    """Left: held-out bits per byte against training time, one line per run. Right: staleness per
    block against the block's distance from the output, for the async methods."""
    plt, sns = _pyplot()
    long = pd.concat(
        [
            c.assign(method=m, run=r)
            for c, m, r in zip(per_run["_curve"], per_run["label"], per_run["run_index"], strict=True)
        ],
        ignore_index=True,
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    hue_order = list(dict.fromkeys([*(m for m in spec.methods if m in set(long["method"])), *long["method"]]))
    # One colour a row: the default cycle repeats after 10, so a longer table takes tab20's 20.
    colours = sns.color_palette("tab20" if len(hue_order) > 10 else None, n_colors=len(hue_order))
    palette = dict(zip(hue_order, colours, strict=True))
    sns.lineplot(
        data=long, x="train_time_s", y="test_bpb", hue="method", hue_order=hue_order, palette=palette,
        units="run", estimator=None, marker="o", ax=left,
    )  # fmt: skip
    left.set_xlabel("training time (s)")
    left.set_ylabel("held-out bits per byte")
    left.set_title(f"gpt ({profile}): loss against the training clock", fontsize=10)
    if not per_block.empty:
        sns.lineplot(
            data=per_block, x="from_output", y="staleness_mean", hue="label", palette=palette, errorbar="sd",
            marker="o", ax=right,
        )  # fmt: skip
        right.set_xlabel("blocks from the output (0: the last block)")
        right.set_ylabel("staleness (updates)")
    right.set_title("staleness per block", fontsize=10)
    # One legend for both plots, beside them: inside, a table's 18 rows hide the curves.
    handles, labels = left.get_legend_handles_labels()
    for ax in (left, right):
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles, labels, title="row", loc="upper left", bbox_to_anchor=(1.0, 0.92), fontsize=8)
    synthetic = " (smoke: synthetic data in the dataset's shape)" if profile == "smoke" else ""
    return save_figure(fig, spec.title + synthetic, spec.id, profile, out_dir)
