"""Beyond the papers (pd-pipeline): PD-ASGD against synchronous pipeline parallelism on the same
devices, in throughput; the peak memory of both is shown with the verdict."""

from __future__ import annotations

import math
from dataclasses import replace

from ._common import Evidence, Need, Plan, Verdict, comparisons, gather, log_ratio, register_claim

TABLES = ("pd-pipeline",)
PIPELINES = ("gpipe", "pipe_1f1b")


def memory_line(evidence: Evidence) -> str:
    """Each compared row's peak memory (GiB, the job's processes summed; mean over runs)."""
    per_run = gather(evidence, TABLES)
    if per_run.empty or "mem_peak_gib" not in per_run:
        return ""
    rows = per_run[per_run["label"].isin(("async_lu", *PIPELINES))]
    means = rows.groupby("label")["mem_peak_gib"].mean()
    shown = ", ".join(f"{label} {gib:.2f}" for label, gib in means.items() if not math.isnan(gib))
    return f"; peak memory (GiB): {shown}" if shown else ""


@register_claim(
    id="lu-faster-than-pipelines",
    source="beyond the papers: the suite's pd-pipeline (000's reviewers asked for pipeline parallelism)",
    statement=(
        "Beyond the papers: on the same devices, Async LU trains more samples per second than "
        "synchronous pipeline parallelism (GPipe and 1F1B)."
    ),
    paper="none: no paper compares PD-ASGD with pipeline parallelism",
    decided_by=(
        "pd-pipeline: log(async_lu / gpipe) and log(async_lu / pipe_1f1b) samples/s (mean over epochs), "
        "paired by run index; peak memory shown beside"
    ),
    settle="3 runs per cell: `run pd-pipeline --runs 3`",
    plan=Plan((Need("pd-pipeline", ("async_lu", *PIPELINES)),)),
)
def lu_faster_than_pipelines(evidence: Evidence) -> Verdict:
    pairs = [("async_lu", p, f"log(async_lu / {p} samples/s)") for p in PIPELINES]
    missing = ("pd-pipeline with async_lu, gpipe and pipe_1f1b", "run pd-pipeline")
    verdict = comparisons(evidence, TABLES, pairs, "samples_per_s", log_ratio, missing)
    if not verdict.evidence:
        return verdict
    return replace(verdict, evidence=verdict.evidence + memory_line(evidence))
