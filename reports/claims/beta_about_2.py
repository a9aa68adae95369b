"""000 Table 9: the backward pass takes about twice the forward pass."""

from __future__ import annotations

from ._common import (
    NOT_REPRODUCED,
    REPRODUCED,
    Evidence,
    Need,
    Plan,
    Verdict,
    hardware_of,
    no_runs,
    register_claim,
    short,
)


def paper_beta(cell: dict) -> float:
    """β = backward / forward of a Table 9 cell of the paper."""
    return cell["backward_s"][0] / cell["forward_s"][0]


@register_claim(
    id="beta-about-2",
    source="000 Table 9",
    statement="The backward pass takes about twice as long as the forward pass (β ≈ 2).",
    paper="A100: ResNet-18 β = 0.0102 / 0.0049 = 2.08; ResNet-50 β = 0.0299 / 0.0166 = 1.80",
    decided_by="β = backward / forward of the table9 runs, per model, within 25 % of the paper's",
    settle="`run table9` (3 runs per model) on the hardware to compare",
    plan=Plan((Need("table9"),)),
)
def beta_about_2(evidence: Evidence) -> Verdict:
    runs = evidence.runs("table9")
    if runs.empty or "metrics.beta" not in runs:
        return no_runs("table9", "run table9")
    spec = evidence.specs["table9"]
    lines, ok = [], []
    for model, group in runs.groupby("model"):
        ours = float(group["metrics.beta"].mean())
        cell = spec.paper.get(model)
        if cell is None:
            continue
        paper = paper_beta(cell)
        ok.append(abs(ours / paper - 1) <= 0.25)
        lines.append(
            f"{model} β {ours:.2f} over {len(group)} run(s) vs {paper:.2f} ({ours / paper - 1:+.0%})"
        )
    verdict = REPRODUCED if ok and all(ok) else NOT_REPRODUCED
    reason = (
        "every model within 25 % of the paper's β"
        if verdict == REPRODUCED
        else "a model's β is off by more than 25 %"
    )
    return Verdict(
        verdict,
        reason,
        f"{'; '.join(lines)}; profile {evidence.profile}; {hardware_of(runs)}",
        short(runs["run_id"]),
    )
