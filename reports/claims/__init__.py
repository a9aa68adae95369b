"""`report claims`: every claim of the papers (docs/references.md) with a verdict computed from the
runs in MLflow: reproduced, not reproduced, inconclusive, not comparable at this profile, not
decidable here (its design cannot decide it at this profile), not measurable here, or (after
`run claims --budget`) not run because the budget left its runs out.

A claim is one module of this package: `@register_claim` on its rule, with the parts it tests
(`stats.Part`: a band in the paper's terms and why) and its rule version. A rule measures cells
from the evidence (the planned runs of the tables it names, per-run values computed as the table
reports compute them, `perf` results); `stats.py` alone turns cells into verdicts. What rules
share is in `_common.py`; every other module is imported here, so a new claim is one new file.
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
from ._common import CLAIMS, Claim, Evidence, Verdict, register_claim
from .stats import (
    ALPHA,
    INCONCLUSIVE,
    MIN_RUNS,
    NOT_COMPARABLE,
    NOT_DECIDABLE,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
)

import_modules(sys.modules[__name__])

__all__ = [
    "CLAIMS",
    "INCONCLUSIVE",
    "NOT_COMPARABLE",
    "NOT_DECIDABLE",
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
    return replace(verdict, verdict=INCONCLUSIVE, reason=reason)


def evaluate(uri: str, specs: dict, profile: str | None = None) -> list[tuple[Claim, str, Verdict]]:
    """(claim, profile, verdict) for every claim: in `profile`, or in the first of paper, quick,
    smoke where the claim is measurable."""
    results = []
    evidence = {p: Evidence(uri, specs, p) for p in ([profile] if profile else PROFILE_ORDER)}
    # 000's claims before 004's; within a paper, in the order their modules register.
    for claim in sorted(CLAIMS.values(), key=lambda c: c.source.split()[0]):
        chosen = None
        for prof, ev in evidence.items():
            verdict = smoke_caveat(claim.judge(ev), prof)
            chosen = chosen or (prof, verdict)
            if verdict.verdict != NOT_MEASURABLE:
                chosen = (prof, verdict)
                break
        results.append((claim, *chosen))
    return results


def cell(text: str) -> str:
    """Text safe in a Markdown table cell."""
    return text.replace("|", "/").replace("\n", " ")


def cells_text(verdict: Verdict) -> str:
    """Each part's band and why, how its cells share the error rate, and each cell's effect with
    the interval that decided its support, and runs."""
    parts = []
    for result in verdict.results:
        band = result.part.band
        shown = "; ".join(c.text(band, result.level_of(c)) for c in result.cells) or "no cell has runs"
        family = f" [{result.family}]" if result.cells else ""
        parts.append(f"{result.part.name}, band {band.text()} ({band.why}){family}: {shown}")
    return " / ".join(parts) or "–"


def stage_text(claim: Claim, verdict: Verdict) -> str:
    """The claim's design and its stage: 'looks at 3, 5, 10 runs a cell (...); stage: look 2 of 3
    (5 runs a cell), 1 of 4 cells open'."""
    design = claim.plan.design
    looked = [c.look for c in verdict.cells]
    if not looked or not any(looked):
        return f"{design.text()}; stage: before the first look"
    stage = max(looked)
    undecided = sum(len(r.open) for r in verdict.results if r.verdict == INCONCLUSIVE)
    opened = f", {undecided} of {len(looked)} cells open" if verdict.verdict == INCONCLUSIVE else ""
    runs = design.looks[stage - 1]
    return f"{design.text()}; stage: look {stage} of {len(design.looks)} ({runs} runs a cell){opened}"


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


def verdict_rows(results: list[tuple[Claim, str, Verdict]]) -> pd.DataFrame:
    """claims.csv: one row per claim and cell (one row for a claim without cells): the verdict, the
    rule's version, the part's band, the cell's effect, the interval that decided its support (its
    two-sided `level`) and runs."""
    rows = []
    for claim, prof, verdict in results:
        common = dict(
            id=claim.id, source=claim.source, paper_version=claim.paper_version, verdict=verdict.verdict,
            version=verdict.version, design=stage_text(claim, verdict), profile=prof,
            reason=verdict.reason + where_measurable(claim, verdict), evidence=verdict.evidence,
        )  # fmt: skip
        cells = [(r, c) for r in verdict.results for c in r.cells]
        if not cells:
            rows.append(dict(common, part="", part_verdict="", cell="", band="", unit=""))
        for result, c in cells:
            mean, low, high = c.interval(result.level_of(c))
            band = result.part.band
            rows.append(
                dict(
                    common, part=result.part.name, part_verdict=result.verdict, band=band.text(),
                    unit=band.unit, band_low=band.low, band_high=band.high, cell=c.name, effect=mean,
                    effect_low=low, effect_high=high, level=result.level_of(c), runs=c.count,
                    planned=c.planned, look=c.look, looks=c.looks, failed=c.failed,
                    run_ids=" ".join(str(r)[:8] for r in c.runs),
                )
            )  # fmt: skip
    return pd.DataFrame(rows)


def write_claims(
    uri: str,
    specs: dict,
    out_dir: Path,
    profile: str | None = None,
    left_out: Mapping[str, float] | None = None,
) -> list[tuple[Claim, str, Verdict]]:
    """reports/out/claims.md, claims.csv and claims.png: per claim its verdict, the rule's version,
    each part's band and each cell's effect with its interval and runs; returns the results.
    `left_out`: the claims `run claims --budget` did not run, with the seconds they would take."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [(c, p, budget_note(c, v, p, left_out or {})) for c, p, v in evaluate(uri, specs, profile)]
    counts = pd.Series([v.verdict for _, _, v in results]).value_counts()
    lines = [
        "# Claims: computed verdicts",
        "",
        f"Each claim's verdict is computed from the runs in {uri} (`reports/claims/`, docs/claims.md). "
        "A claim states parts in its paper's terms, each a band its effect must lie in (a direction with a "
        "smallest effect of interest, an equivalence margin, or a stated size). Each part is measured per "
        "cell (table, model, setting): one margin per planned run, paired by seed, with its t interval. A "
        "cell supports a part when its interval lies inside the band and contradicts it when the interval "
        "lies wholly outside. Each side of a band is a one-sided test, and each claim's error is held at "
        f"{ALPHA:g} per direction over all its cells: a part is reproduced when every cell supports it at "
        f'{ALPHA:g} (intersection-union; "up to": some cell at {ALPHA:g}/k, Bonferroni over its k cells), '
        "and the claim is not reproduced when a cell contradicts it at the claim's level shared over every "
        'cell that could (Bonferroni; "up to": every cell). Intervals are shown at the level that decided '
        "support at its look. Runs come by each claim's sequential design: a cell is judged at each look it "
        f"has the runs of (at least {MIN_RUNS}), on its first runs, at the look's share of the error "
        "(Pocock-type spending, the shares summing to one), and keeps its first decision; failed, diverged "
        "and "
        "target-missing runs stay in it (a time to a target never reached is censored at the run's own last "
        "time, and two rows' times are compared by log-rank tests, never inside a t interval). `not "
        "comparable` names a guard that could have made the claim look true.",
        "",
        "Totals: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".",
        "",
        "| claim | paper's evidence | verdict (rule version) "
        "| parts, bands, families and cells: effect [CI], runs "
        "| our evidence | what would settle it |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for claim, prof, verdict in results:
        runs = f" Runs: {', '.join(verdict.runs)}." if verdict.runs else ""
        ours = (verdict.evidence or f"– (profile {prof})") + runs
        rule = f"**{verdict.verdict}** (rule {verdict.version})"
        design = f"Design: {stage_text(claim, verdict)}"
        decided = f"{rule}: {verdict.reason}{where_measurable(claim, verdict)}. {design}"
        lines.append(
            f"| {cell(f'**{claim.id}** ({claim.source}; from {claim.paper_version}): {claim.statement}')} "
            f"| {cell(claim.paper)} "
            f"| {cell(decided)} | {cell(cells_text(verdict))} | {cell(ours)} | {cell(claim.settle)} |"
        )
    rows = verdict_rows(results)
    figure = draw_effects(rows, out_dir)
    if figure is not None:
        lines += ["", f"![claims' effects]({figure.name})"]
    (out_dir / "claims.md").write_text("\n".join(lines) + "\n")
    rows.to_csv(out_dir / "claims.csv", index=False)
    return results


def draw_effects(rows: pd.DataFrame, out_dir: Path) -> Path | None:
    """claims.png: per claim and cell, its effect and the interval that decided its support, and the
    band it must lie in (shaded)."""
    if rows.empty or "effect" not in rows:
        return None
    shown = rows[rows["effect"].notna()]
    if shown.empty:
        return None
    from ..render import _pyplot

    plt, _ = _pyplot()
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 0.6 * len(shown) + 0.8), squeeze=False)
    for ax, row in zip(axes[:, 0], shown.itertuples(), strict=True):
        low, high = row.band_low, row.band_high
        span = [v for v in (row.effect, row.effect_low, row.effect_high, low, high) if math.isfinite(v)]
        left, right = min(span), max(span)
        pad = 0.1 * (right - left or 1.0)
        ax.axvspan(max(low, left - pad), min(high, right + pad), color="tab:green", alpha=0.15)
        if math.isfinite(row.effect_low):
            ax.plot([row.effect_low, row.effect_high], [0, 0], color="tab:blue", linewidth=3)
        ax.plot([row.effect], [0], "o", color="tab:blue")
        ax.set_xlim(left - pad, right + pad)
        ax.set_yticks([0], [f"{row.id} {row.cell}: {row.verdict}"], fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
    fig.suptitle(
        "each cell's effect and the interval that decided it; shaded: the band the claim needs", fontsize=9
    )
    fig.tight_layout()
    path = out_dir / "claims.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
