"""000 §3.4: staleness per parameter tensor against its depth, LU against BU, with the formula."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..render import Section, _pyplot, register_kind, save_figure
from ..runs import table_artifact
from ..values import summarise


def staleness_per_tensor(uri: str, per_run: pd.DataFrame) -> pd.DataFrame:
    """The last epoch's per-tensor staleness of each run that logged it (the `staleness.json` table
    artifact of the async methods), with the tensor's relative depth (0 input, 1 output)."""
    frames = []
    for _, run in per_run.iterrows():
        table = table_artifact(uri, run["run_id"], "staleness.json")
        if table is None:  # a run of a method without the table
            continue
        frame = pd.DataFrame(table["data"], columns=table["columns"])
        frame = frame[frame["epoch"] == frame["epoch"].max()].copy()
        frame["relative_depth"] = frame["depth"] / max(frame["depth"].max(), 1)
        frames.append(
            frame.assign(
                model=run["model"],
                method=run["method"],
                label=run["label"],
                row_order=run["row_order"],
                run_index=run["run_index"],
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@register_kind("staleness")
def render(section: Section, spec, per_run: pd.DataFrame, out_dir: Path) -> pd.DataFrame:
    """000 §3.4: staleness per parameter tensor against its depth, LU against BU, with the formula."""
    tensors = staleness_per_tensor(section.uri, per_run)
    if tensors.empty:
        section.notes.append("No run has the per-tensor staleness table (`staleness.json`).")
        return pd.DataFrame()
    section.figure = draw_staleness(spec, section.profile, tensors, out_dir)
    ends = tensors.groupby(["model", "label", "run_index"], sort=False)
    rows = []
    for (model, label, run_index), group in ends:
        group = group.sort_values("depth")
        rows.append(
            dict(
                model=model,
                label=label,
                row_order=group["row_order"].iloc[0],
                run_index=run_index,
                tensors=len(group),
                staleness_input=float(group["staleness_mean"].iloc[0]),
                staleness_output=float(group["staleness_mean"].iloc[-1]),
                staleness_mean=float(group["staleness_mean"].mean()),
            )
        )
    columns = ["tensors", "staleness_input", "staleness_output", "staleness_mean"]
    names = sorted({row.name for row in spec.rows if row.name})
    of_rows = f" (the rows {', '.join(names)})" if names else ""
    summary = summarise(pd.DataFrame(rows), columns)
    section.notes.append(
        f"The last epoch of each run{of_rows}, staleness in "
        "updates of that tensor between the forward pass's read and the pass's own update. 000 §3.4: a "
        "block update waits βT·m/M longer than a layer-wise one at layer m of M (from the input), "
        "τ = βT(M-1)/2 summed over layers; with one pass finishing per forward time T that is β·m/M "
        "updates, drawn for β = 2 in the right panel against the measured BU - LU."
    )
    return summary


# Table kinds whose numbers come from the runs' learning curves.


def draw_staleness(spec, profile: str, tensors: pd.DataFrame, out_dir: Path, beta: float = 2.0) -> Path:
    """Left: staleness per tensor against relative depth, LU and BU. Right: BU - LU with β·m/M."""
    plt, sns = _pyplot()
    data = tensors
    models = list(dict.fromkeys(data["model"]))
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        of_model = data[data["model"] == model]
        left, right = axes[row]
        style = dict(x="relative_depth", y="staleness_mean", hue="method", errorbar="sd")
        sns.lineplot(data=of_model, ax=left, **style)
        left.set_title(f"{model} ({profile}): staleness per parameter tensor", fontsize=10)
        mean = of_model.groupby(["method", "depth"])["staleness_mean"].mean().unstack(0)
        if {"async_lu", "async_bu"} <= set(mean.columns):
            depth = mean.index / max(mean.index.max(), 1)
            right.plot(depth, mean["async_bu"] - mean["async_lu"], label="measured BU - LU")
            right.plot([0, 1], [0, beta], "--", label=f"000 §3.4: β·m/M, β = {beta:g}")
            right.legend()
        right.set_title("relative staleness of block updates", fontsize=10)
        for ax in (left, right):
            ax.set_xlabel("relative depth (0 input, 1 output)")
            ax.set_ylabel("updates")
    return save_figure(fig, spec.title, spec.id, profile, out_dir)
