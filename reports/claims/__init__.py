"""`report claims`: every claim of the papers (docs/references.md) with a verdict computed from the
runs in MLflow: reproduced, not reproduced, inconclusive, not comparable at this profile, not
measurable here, or (after `run claims --budget`) not run because the budget left its runs out.

A claim is one module of this package: `@register_claim` on its rule. A rule reads the evidence (the
finished runs of the tables it names, per-run values computed as the table reports compute them,
`perf` results) and returns a Verdict with the numbers, the runs' ids, the profile and hardware.
What rules share (the evidence, the paired statistics) is in `_common.py`; every other module is
imported here, so a new claim is one new file.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pandas as pd

from core.registry import import_modules

from ..render import PROFILE_ORDER
from ._common import (
    ALPHA,
    CLAIMS,
    INCONCLUSIVE,
    MIN_PAIRS,
    NOT_COMPARABLE,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    NOT_RUN,
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
    "NOT_COMPARABLE",
    "NOT_MEASURABLE",
    "NOT_REPRODUCED",
    "NOT_RUN",
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


def effect_text(verdict: Verdict) -> str:
    """'mean [low, high]' of the verdict's values ('–' without values)."""
    mean, low, high = verdict.effect
    if math.isnan(mean):
        return "–"
    return f"{mean:+.3g}" if math.isnan(low) else f"{mean:+.3g} [{low:+.3g}, {high:+.3g}]"


def where_measurable(claim: Claim, verdict: Verdict) -> str:
    """For a claim not measurable here: the hardware that measures it and the command to run there."""
    if verdict.verdict != NOT_MEASURABLE:
        return ""
    needs = f"needs {claim.needs_hardware}; " if claim.needs_hardware else ""
    return f" ({needs}there: `python -m benchmarks run claims --profile paper --only {claim.id}`)"


def budget_note(claim: Claim, verdict: Verdict, prof: str, left_out: Mapping[str, float]) -> Verdict:
    """A claim `run claims --budget` left out (its id -> the seconds its runs would take): without
    runs it reads "not run (budget)", not "not measurable here" (it is measurable here); with some
    runs its verdict stands and its reason says what the rest would cost."""
    if claim.id not in left_out:
        return verdict
    minutes = max(1, math.ceil(left_out[claim.id] / 60))
    command = f"`python -m benchmarks run claims --profile {prof} --only {claim.id}`"
    if verdict.verdict == NOT_MEASURABLE:
        reason = (
            f"left out by `run claims --budget`: its runs would take ~{minutes} min more here ({command})"
        )
        return replace(verdict, verdict=NOT_RUN, reason=reason)
    rest = f"its other runs were left out by the budget (~{minutes} min more: {command})"
    return replace(verdict, reason=f"{verdict.reason}; {rest}")


def write_claims(
    uri: str,
    specs: dict,
    out_dir: Path,
    profile: str | None = None,
    left_out: Mapping[str, float] | None = None,
) -> list[Path]:
    """reports/out/claims.md, claims.csv and claims.png: one row per claim with its verdict, its
    effect and 95 % interval, the test, profile and hardware; returns the files. `left_out`: the
    claims `run claims --budget` did not run, with the seconds they would have taken."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [(c, p, budget_note(c, v, p, left_out or {})) for c, p, v in evaluate(uri, specs, profile)]
    counts = pd.Series([v.verdict for _, _, v in results]).value_counts()
    lines = [
        "# Claims: computed verdicts",
        "",
        f"Each claim's verdict is computed from the runs in {uri} (`reports/claims/`): methods are "
        f"paired by run index; from {MIN_PAIRS} pairs a one-sided paired t-test at {ALPHA} decides, "
        "with fewer the verdict is inconclusive. The effect is the mean margin (positive: the claim "
        "holds in that pair) with its 95 % t interval; `not comparable` names the guard that failed.",
        "",
        "Totals: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".",
        "",
        "| claim | paper's evidence | our evidence | verdict | effect [95 % CI] | test "
        "| what would settle it |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for claim, prof, verdict in results:
        runs = f" Runs: {', '.join(verdict.runs)}." if verdict.runs else ""
        ours = (verdict.evidence or f"– (profile {prof})") + runs
        decided = f"**{verdict.verdict}**: {verdict.reason}{where_measurable(claim, verdict)}"
        lines.append(
            f"| {cell(f'**{claim.id}** ({claim.source}): {claim.statement}')} | {cell(claim.paper)} "
            f"| {cell(ours)} | {cell(decided)} | {effect_text(verdict)} | {cell(verdict.test or '–')} "
            f"| {cell(claim.settle)} |"
        )
    figure = draw_effects(results, out_dir)
    if figure is not None:
        lines += ["", f"![claims' effects]({figure.name})"]
    md_path, csv_path = out_dir / "claims.md", out_dir / "claims.csv"
    md_path.write_text("\n".join(lines) + "\n")
    pd.DataFrame(
        [
            dict(
                id=c.id,
                source=c.source,
                verdict=v.verdict,
                reason=v.reason + where_measurable(c, v),
                evidence=v.evidence,
                runs=" ".join(v.runs),
                profile=p,
                effect=v.effect[0],
                effect_low=v.effect[1],
                effect_high=v.effect[2],
                test=v.test,
            )
            for c, p, v in results
        ]
    ).to_csv(csv_path, index=False)
    return [md_path, csv_path] + ([figure] if figure is not None else [])


def draw_effects(results: list[tuple[Claim, str, Verdict]], out_dir: Path) -> Path | None:
    """claims.png: per claim with values, its effect and 95 % interval (the claim holds to the right
    of 0, the dashed line) and, where the claim states one, the paper's effect on the same scale."""
    shown = [(c, p, v) for c, p, v in results if not math.isnan(v.effect[0])]
    if not shown:
        return None
    from ..render import _pyplot

    plt, _ = _pyplot()
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 0.9 * len(shown) + 0.8), squeeze=False)
    for ax, (claim, prof, verdict) in zip(axes[:, 0], shown, strict=True):
        mean, low, high = verdict.effect
        if not math.isnan(low):
            ax.plot([low, high], [0, 0], color="tab:blue", linewidth=3)
        ax.plot([mean], [0], "o", color="tab:blue")
        if claim.paper_effect is not None:
            ax.plot([claim.paper_effect], [0], "D", color="tab:orange", label="paper")
        ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks([0], [f"{claim.id} ({prof}): {verdict.verdict}"], fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(
        "each claim's effect and 95 % interval (right of 0: the claim holds); ◆ the paper's", fontsize=9
    )
    fig.tight_layout()
    path = out_dir / "claims.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
