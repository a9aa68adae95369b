"""Table 10: each workload's hyperparameters under a profile, the paper's beside (no runs)."""

from __future__ import annotations

import pandas as pd

from ..render import Section, register_kind


@register_kind("hyperparameters", runs=False)
def render(spec, profile: str | None) -> list[Section]:
    """Table 10: each workload's hyperparameters under a profile (`spec.computed`), the paper's beside."""
    sections = []
    for prof in [profile] if profile else ["paper", "quick"]:
        ours = spec.computed(prof)
        names = list(next(iter(spec.paper.values())))
        rows = []
        for name in names:
            row = {"hyperparameter": name}
            for (dataset, model), values in ours.items():
                paper = spec.paper[(dataset, model)][name]
                row[f"{dataset}/{model}"] = f"{values[name]:g} (paper {paper if paper is not None else '–'})"
            rows.append(row)
        sections.append(Section(prof, pd.DataFrame(rows), pd.DataFrame()))
    return sections
