"""Beyond the papers (pd-pipeline): PD-ASGD against synchronous pipeline parallelism on the same
devices, in throughput; the peak memory of both is shown with the verdict."""

from __future__ import annotations

import math

from core.job import Row

from ._common import (
    EXTENSION,
    Evidence,
    Measured,
    Need,
    Plan,
    described,
    gather,
    log_ratio,
    no_runs,
    paired_cells,
    register_claim,
)
from .stats import Part, above

TABLES = ("pd-pipeline",)
PIPELINES = ("gpipe", "pipe_1f1b")
FASTER = Part(
    "samples/s LU / pipeline",
    above(math.log(1.05), "'more samples per second': at least 5 %, below which throughput differs by "
          "machine noise", "x"),
    paper=math.log(1.3),  # no paper: the calibration's 'true' store assumes 1.3x
    noise=0.05,
    cells=2,
)  # fmt: skip


def memory_line(per_run) -> str:
    """Each compared row's peak memory (GiB, the job's processes summed; mean over runs)."""
    if per_run.empty or "mem_peak_gib" not in per_run:
        return ""
    rows = per_run[per_run["label"].isin(("async_lu", *PIPELINES))]
    means = rows.groupby("label")["mem_peak_gib"].mean()
    shown = ", ".join(f"{label} {gib:.2f}" for label, gib in means.items() if not math.isnan(gib))
    return f"peak memory (GiB): {shown}" if shown else ""


@register_claim(
    id="lu-faster-than-pipelines",
    source="beyond the papers: the suite's pd-pipeline (000's reviewers asked for pipeline parallelism)",
    paper_version=EXTENSION,
    statement=(
        "Beyond the papers: on the same devices, Async LU trains more samples per second than "
        "synchronous pipeline parallelism (GPipe and 1F1B)."
    ),
    paper="none: no paper compares PD-ASGD with pipeline parallelism",
    decided_by=(
        "pd-pipeline: async_lu / gpipe and async_lu / pipe_1f1b samples/s (mean over epochs), paired by "
        "run index; peak memory shown beside"
    ),
    settle="3 runs per cell: `run pd-pipeline --runs 3`",
    parts=(FASTER,),
    version="4 (2026-11-26)",
    plan=Plan((Need("pd-pipeline", ("async_lu", *PIPELINES)),)),
)
def lu_faster_than_pipelines(evidence: Evidence) -> Measured:
    cells = [
        cell
        for pipe in PIPELINES
        for cell in paired_cells(
            evidence, FASTER, TABLES, Row("async_lu"), Row(pipe), "samples_per_s", log_ratio, pipe
        )
    ]
    if not cells:
        return no_runs("pd-pipeline with async_lu, gpipe and pipe_1f1b", "run pd-pipeline")
    per_run = gather(evidence, TABLES)
    return Measured(tuple(cells), described(evidence, per_run, memory_line(per_run)))
