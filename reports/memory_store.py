"""A store of runs held in memory, written and read as an MLflow store is (docs/design.md, "Stores
in memory"): `calibrate-claims --path` simulates thousands of stores, and writing each to SQLite
would take minutes where the claims' own code takes milliseconds.

A `MemoryStore` takes runs through the calls the runner's `Tracker` makes (`start`, `log_metrics`,
`finish`) and registers itself under a `memory:` URI; `reports.runs.load_runs` and `curve` read
such a URI from it, so everything after them (selecting runs, rows, targets, censoring, pairing,
guards) is the code that reads real stores. tests/test_claims.py checks that a table written here
and to SQLite reads back the same.
"""

from __future__ import annotations

import collections
import itertools
import weakref
from dataclasses import dataclass, field

import pandas as pd

SCHEME = "memory:"
_STORES: weakref.WeakValueDictionary[str, MemoryStore] = weakref.WeakValueDictionary()
_NUMBERS = itertools.count()


@dataclass
class StoredRun:
    """One run as any store holds it: its id, clock, tags, params (strings, as logged) and the
    final value of each metric (the one at its latest step)."""

    run_id: str
    start_time: pd.Timestamp
    end_time: pd.Timestamp | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)


class MemoryStore:
    """Runs of experiments in memory: tags, params, metric histories; `uri` names it while it lives."""

    def __init__(self):
        self.uri = f"{SCHEME}{next(_NUMBERS)}"
        self._runs: dict[str, list[StoredRun]] = {}  # experiment -> its runs, in order of creation
        self._histories: dict[tuple[str, str], dict[int, float]] = {}  # (run id, metric) -> step -> value
        self._by_id: dict[str, StoredRun] = {}
        self._tables: dict[tuple[str, str], dict] = {}  # (run id, artifact file) -> its table
        self._latest: dict[tuple[str, str], int] = {}  # (run id, metric) -> its latest step
        _STORES[self.uri] = self

    def start(self, experiment: str, run_name: str, tags: dict, params: dict, reserve: bool = False) -> str:
        """Create a run with its tags and params (strings, as MLflow keeps them); returns its id."""
        run_id = f"{len(self._by_id):032x}"
        created = pd.Timestamp(len(self._by_id), unit="ms", tz="UTC")  # in order of creation
        run = StoredRun(
            run_id=run_id,
            start_time=created,
            end_time=None,
            tags={"mlflow.runName": run_name, **{k: str(v) for k, v in tags.items()}},
            params={k: str(v) for k, v in params.items()},
        )
        self._runs.setdefault(experiment, []).append(run)
        self._by_id[run_id] = run
        return run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """Log metrics at a step; a run's final value of a metric is the one at its latest step."""
        run = self._by_id[run_id]
        for name, value in metrics.items():
            history = self._histories.setdefault((run_id, name), {})
            if step >= self._latest.get((run_id, name), step):  # steps come in order: no max() each
                run.metrics[name] = float(value)
                self._latest[(run_id, name)] = step
            history[step] = float(value)

    def finish(self, run_id: str, status: str, tags: dict) -> None:
        """Set the final tags and end the run."""
        run = self._by_id[run_id]
        run.tags.update({k: str(v) for k, v in {"status": status, **tags}.items()})

    def log_table(self, run_id: str, columns: dict[str, list], artifact_file: str) -> None:
        """Append rows to a run's table artifact (as MLflow's log_table appends to an existing one)."""
        table = self._tables.setdefault((run_id, artifact_file), {"columns": list(columns), "data": []})
        table["data"].extend(map(list, zip(*columns.values(), strict=True)))

    def table(self, run_id: str, artifact_file: str) -> dict | None:
        """A run's table artifact as MLflow's JSON holds it (`columns`, `data`); None where it has none."""
        return self._tables.get((run_id, artifact_file))

    def runs(self, experiment: str) -> list[StoredRun]:
        """The experiment's runs, newest first (`reports.runs.load_runs` reads them)."""
        return self._runs.get(experiment, [])[::-1]

    def first_runs(self, runs: int) -> MemoryStore:
        """A store of this one's runs of index below `runs` and first `runs` results of each `perf`
        benchmark (which have no run index): the store before its later runs."""
        view = MemoryStore()
        for experiment, of_experiment in self._runs.items():
            results = collections.Counter()  # perf results so far per benchmark, in order of creation
            kept = []
            for run in of_experiment:
                if "run_index" in run.tags:
                    index = int(run.tags["run_index"])
                else:
                    index = results[run.tags.get("perf")]
                    results[run.tags.get("perf")] += 1
                if index < runs:
                    kept.append(run)
            view._runs[experiment] = kept
            view._by_id.update((r.run_id, r) for r in kept)
        view._histories = self._histories  # read only: metrics logged to a view would reach this store
        view._tables = self._tables
        return view

    def history(self, run_id: str, name: str) -> dict[int, float]:
        """A metric's values by step (empty where the run never logged it)."""
        return self._histories.get((run_id, name), {})


def memory_store(uri: str) -> MemoryStore | None:
    """The live MemoryStore a `memory:` URI names; None for any other URI."""
    if not uri.startswith(SCHEME):
        return None
    store = _STORES.get(uri)
    if store is None:
        raise KeyError(f"no store in memory is named {uri}")
    return store
