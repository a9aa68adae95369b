"""Equal tuning: each compared method's declared search space, and the settings a sweep chose
(docs/methods.md, "Equal tuning").

AlgoPerf's external-tuning rule: every method a table compares gets the same number of trials
(`TRIALS`), each over a search space declared here before any trial runs. `python -m benchmarks
tune TABLE --profile P` runs the trials (one run each, on seed `TUNING_SEED`, in the experiment
`tuning-TABLE`) and prints each method's choice with the line to freeze; a person freezes it in
the table's `Tuning.chosen` with its provenance, as targets are frozen. A table's rows take only
frozen choices; where none is frozen every method runs its defaults (zero trials each, equal too),
and the report says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.job import Row, Setting

TRIALS = 4  # trials per method: the budget every compared method gets
TUNING_SEED = 2000  # every trial's seed: trials differ in their settings, not in their luck


def experiment_of(table: str) -> str:
    """The MLflow experiment of a table's tuning trials."""
    return f"tuning-{table}"


@dataclass(frozen=True)
class SearchSpace:
    """A method's declared trials: each trial a set of settings, TRIALS of them, and why this space."""

    method: str
    trials: tuple[tuple[tuple[str, Setting], ...], ...]
    why: str

    @classmethod
    def grid(cls, method: str, why: str, **values: tuple[Setting, ...]) -> SearchSpace:
        """The product of each setting's values, in the order given."""
        keys = list(values)
        trials = tuple(tuple(zip(keys, combo, strict=True)) for combo in itertools.product(*values.values()))
        return cls(method, trials, why)

    def text(self) -> str:
        """'outer_lr x outer_momentum in {0.7, 1} x {0, 0.9}'-like: the space in one line."""
        keys = [k for k, _ in self.trials[0]]
        values = [list(dict.fromkeys(dict(t)[k] for t in self.trials)) for k in keys]
        sets = [
            "{" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vs) + "}" for vs in values
        ]
        return f"{' x '.join(keys)} in {' x '.join(sets)}"


@dataclass(frozen=True)
class Tuned:
    """A method's frozen choice on one workload: its settings and where they came from."""

    settings: tuple[tuple[str, Setting], ...]
    source: str


@dataclass(frozen=True)
class Tuning:
    """A table's declared spaces (`spaces(profile, model)`: method -> space; a space may depend on
    the workload, as a learning rate's does) and its frozen choices (profile -> model -> method ->
    Tuned)."""

    spaces: Callable[[str, str], Mapping[str, SearchSpace]]
    chosen: Mapping[str, Mapping[str, Mapping[str, Tuned]]] = field(default_factory=dict)

    def settings(self, profile: str, model: str, method: str) -> dict[str, Setting]:
        """The frozen choice's settings for a method's rows on a workload ({} where none is frozen)."""
        tuned = self.chosen.get(profile, {}).get(model, {}).get(method)
        return dict(tuned.settings) if tuned else {}


def equal_trials(spaces: Mapping[str, SearchSpace]) -> Mapping[str, SearchSpace]:
    """The spaces, checked to give every method TRIALS trials (AlgoPerf's rule)."""
    counts = {method: len(space.trials) for method, space in spaces.items()}
    if set(counts.values()) != {TRIALS}:
        raise ValueError(f"every compared method gets {TRIALS} trials (AlgoPerf's rule): {counts}")
    return spaces


def trial_rows(row: Row, space: SearchSpace) -> list[Row]:
    """A row's trials: the row with each trial's settings."""
    return [Row.of(row.method, **{**dict(row.settings), **dict(trial)}) for trial in space.trials]
