"""The evidence the claims read: the runs of one profile in one store, as the table reports read
them (failed and diverged runs kept), per table, loaded once and narrowed to a claim's plan."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import pandas as pd

from core.job import Row

from ..render import table_runs
from ..runs import load_runs
from ._per_run import measured_runs
from .stats import MIN_RUNS


class Planned(Protocol):
    """A claim as `Evidence.planned` reads it (reports.claims.Claim; not imported: it imports this)."""

    plan: object  # its Plan: runs, runs_at(look), last


TERMINAL = ("finished", "diverged", "failed")  # a run's end that counts (interrupted runs resume)


@dataclass
class Evidence:
    """The runs of one profile in one store, per table, loaded once; `planned` narrows it to the
    run indices one claim's plan fixed, and `as_of` to those a cell held at a look."""

    uri: str
    specs: dict  # table id -> TableSpec
    profile: str
    runs_per_cell: int | None = None  # None: every run index
    first_look: int = MIN_RUNS  # the runs of a cell's first look (its `planned` runs)
    as_of: int | None = None  # the store as it stood with this many runs a cell (None: as it is)
    _cache: dict = field(default_factory=dict)  # shared by the evidences `replace` makes of it

    def planned(self, claim: Planned) -> Evidence:
        """This evidence as `claim`'s plan fixes it: the run indices up to its design's last look (1
        at smoke, which decides nothing). Runs beyond it never count, however they were made."""
        plan = claim.plan
        if self.profile == "smoke":
            return replace(self, runs_per_cell=1, first_look=1)
        return replace(self, runs_per_cell=plan.runs_at(plan.last), first_look=plan.runs)

    def at_look(self, runs: int) -> Evidence:
        """This evidence as the store stood when each cell had its first `runs` run indices and each
        `perf` benchmark its first `runs` results: a sequential design's look, judged on a store
        that has since grown, as it was judged then (later runs never move a look's values)."""
        return replace(self, as_of=runs)

    @property
    def _cut(self) -> int | None:
        """The run indices that count: the plan's, the look's where fewer (None: all)."""
        cuts = [n for n in (self.runs_per_cell, self.as_of) if n is not None]
        return min(cuts) if cuts else None

    @staticmethod
    def _below(runs: pd.DataFrame, cut: int | None) -> pd.DataFrame:
        """The runs of run index below `cut` (all where None)."""
        if runs.empty or cut is None or "run_index" not in runs:
            return runs
        return runs[runs["run_index"].astype(int) < cut]

    def all_runs(self, table_id: str) -> pd.DataFrame:
        """The first run of each cell and run index of the table that ended (finished, diverged or
        failed, not stale), this profile: a rerun of an index (after a divergence) does not replace it."""
        key = ("runs", table_id)
        if key not in self._cache:
            runs = table_runs(self.uri, self.specs[table_id])
            if not runs.empty:
                ended = (runs["profile"] == self.profile) & runs["status"].isin(TERMINAL)
                if "stop_reason" in runs:
                    # A run whose process died (kill -9, an OOM kill, a power cut: `stale`) ended no
                    # job: `run` redoes it, and the redo is the index's run, as after an interruption.
                    ended &= ~((runs["status"] == "failed") & (runs["stop_reason"] == "stale"))
                runs = runs[ended]
                # table_runs lists the newest first: the last of each index is the one that ended first.
                runs = runs.drop_duplicates(subset=["profile", "model", "label", "run_index"], keep="last")
                runs = self._declared(runs, self.specs[table_id])
            self._cache[key] = runs
        return self._cache[key]

    def _declared(self, runs: pd.DataFrame, spec) -> pd.DataFrame:
        """A tuned table's runs of the rows it declares at this profile: each method's with its
        frozen choice (docs/methods.md, "Equal tuning"). Runs of a method before its choice was
        frozen, or of another trial's settings, are other rows, never compared beside the tuned."""
        if spec.tuning is None or runs.empty:
            return runs
        rows = zip(runs["model"], runs["row"], strict=True)
        keep = [row in spec.rows_at(self.profile, model) for model, row in rows]
        return runs[keep]

    @property
    def planned_runs(self) -> int:
        """The runs a cell of this evidence needs before its first look."""
        return self.first_look

    @property
    def most_runs(self) -> int:
        """The most runs (perf results) of a cell that count: its design's last look's."""
        return self._cut or MIN_RUNS

    def runs(self, table_id: str) -> pd.DataFrame:
        """The planned runs of the table (`all_runs` within the plan's run indices)."""
        return self._below(self.all_runs(table_id), self._cut)

    def rows(self, table_ids: tuple[str, ...], methods: tuple[str, ...]) -> list[Row]:
        """Each method's own row and, after it, each of its named rows with runs in the tables (the
        LAP-SGD baselines also as their authors' code runs them: `lapsgd[reading=authors_code]`)."""
        named: dict[str, set[Row]] = {}
        for table_id in table_ids:
            for row in self.runs(table_id).get("row", []):
                named.setdefault(row.method, set()).add(row)
        return [
            row
            for method in methods
            for row in [Row(method), *sorted(named.get(method, set()) - {Row(method)}, key=lambda r: r.label)]
        ]

    def per_run(self, table_id: str) -> pd.DataFrame:
        """Per planned run: best accuracy, times to accuracy (reports.render.training_per_run), status
        and hardware. Failed and diverged runs stay: a time to a target a run never reached is
        censored (`<column>_censored`): at its own last training time where it finished, at
        infinity where it diverged or failed (`_per_run.with_censored_times`)."""
        key = ("per_run", table_id, self.runs_per_cell)
        if key not in self._cache:  # of the plan's runs: a look's are theirs of its run indices
            runs = self._below(self.all_runs(table_id), self.runs_per_cell)
            spec = self.specs[table_id]
            self._cache[key] = measured_runs(self.uri, spec, self.profile, runs)
        if (key := (*key, self._cut)) not in self._cache:
            self._cache[key] = self._below(self._cache[key[:-1]], self._cut).reset_index(drop=True)
        return self._cache[key]

    def perf(self, name: str) -> pd.DataFrame:
        """`perf NAME` results logged to the experiment `perf` (newest first), any profile."""
        key = ("perf", name)
        if key not in self._cache:
            runs = load_runs(self.uri, "perf")
            self._cache[key] = (
                runs[runs["perf"] == name] if not runs.empty and "perf" in runs else pd.DataFrame()
            )
        return self._cache[key]
