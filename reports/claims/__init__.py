"""`report claims`: every claim of the papers (docs/references.md) with a verdict computed from the
runs in MLflow: reproduced, not reproduced, inconclusive, or not measurable here.

A claim is one module of this package: `@register_claim` on its rule. A rule reads the evidence (the
finished runs of the tables it names, per-run values computed as the table reports compute them,
`perf` results) and returns a Verdict with the numbers, the runs' ids, the profile and hardware.
What rules share (the evidence, the paired statistics) is in `_common.py`; every other module is
imported here, so a new claim is one new file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from core.registry import import_modules

from ..render import PROFILE_ORDER
from ._common import (
    ALPHA,
    CLAIMS,
    INCONCLUSIVE,
    MIN_PAIRS,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    Claim,
    Evidence,
    Verdict,
    register_claim,
)

import_modules(sys.modules[__name__])

__all__ = [
    "CLAIMS",
    "INCONCLUSIVE",
    "NOT_MEASURABLE",
    "NOT_REPRODUCED",
    "REPRODUCED",
    "Claim",
    "Evidence",
    "Verdict",
    "evaluate",
    "register_claim",
    "write_claims",
]


def smoke_caveat(verdict: Verdict, profile: str) -> Verdict:
    """Smoke runs (synthetic data, 2 epochs) decide nothing: their verdicts read inconclusive."""
    if profile != "smoke" or verdict.verdict not in (REPRODUCED, NOT_REPRODUCED):
        return verdict
    reason = (
        "smoke runs (synthetic data, 2 epochs) cannot decide it; "
        f"the rule alone says {verdict.verdict}: {verdict.reason}"
    )
    return Verdict(INCONCLUSIVE, reason, verdict.evidence, verdict.runs)


def evaluate(uri: str, specs: dict, profile: str | None = None) -> list[tuple[Claim, str, Verdict]]:
    """(claim, profile, verdict) for every claim: in `profile`, or in the first of paper, quick,
    smoke where the claim is measurable."""
    results = []
    evidence = {p: Evidence(uri, specs, p) for p in ([profile] if profile else PROFILE_ORDER)}
    # 000's claims before 004's; within a paper, in the order their modules register.
    for claim in sorted(CLAIMS.values(), key=lambda c: c.source.split()[0]):
        chosen = None
        for prof, ev in evidence.items():
            verdict = smoke_caveat(claim.rule(ev), prof)
            chosen = chosen or (prof, verdict)
            if verdict.verdict != NOT_MEASURABLE:
                chosen = (prof, verdict)
                break
        results.append((claim, *chosen))
    return results


def cell(text: str) -> str:
    """Text safe in a Markdown table cell."""
    return text.replace("|", "/").replace("\n", " ")


def write_claims(uri: str, specs: dict, out_dir: Path, profile: str | None = None) -> list[Path]:
    """reports/out/claims.md and claims.csv: one row per claim with its verdict; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = evaluate(uri, specs, profile)
    rows = []
    for claim, prof, verdict in results:
        runs = f" Runs: {', '.join(verdict.runs)}." if verdict.runs else ""
        rows.append(
            dict(
                claim=f"**{claim.id}** ({claim.source}): {claim.statement}",
                paper=claim.paper,
                ours=(verdict.evidence or f"– (profile {prof})") + runs,
                verdict=f"**{verdict.verdict}**: {verdict.reason}",
                settle=claim.settle,
                profile=prof,
            )
        )
    counts = pd.Series([v.verdict for _, _, v in results]).value_counts()
    lines = [
        "# Claims: computed verdicts",
        "",
        f"Each claim's verdict is computed from the runs in {uri} (`reports/claims/`): methods are "
        f"paired by run index; from {MIN_PAIRS} pairs a one-sided paired t-test at {ALPHA} decides, "
        "with fewer the verdict is inconclusive.",
        "",
        "Totals: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".",
        "",
        "| claim | paper's evidence | our evidence | verdict | what would settle it |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {cell(row['claim'])} | {cell(row['paper'])} | {cell(row['ours'])} "
            f"| {cell(row['verdict'])} | {cell(row['settle'])} |"
        )
    md_path, csv_path = out_dir / "claims.md", out_dir / "claims.csv"
    md_path.write_text("\n".join(lines) + "\n")
    pd.DataFrame(
        [
            dict(
                id=c.id,
                source=c.source,
                verdict=v.verdict,
                reason=v.reason,
                evidence=v.evidence,
                runs=" ".join(v.runs),
                profile=p,
            )
            for c, p, v in results
        ]
    ).to_csv(csv_path, index=False)
    return [md_path, csv_path]
