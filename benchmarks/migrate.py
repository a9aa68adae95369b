"""`migrate-store URI`: upgrade a store of an earlier schema in place, after backing it up.

What each schema changed (docs/design.md, "Store schemas"):
- 1 (no `schema` tag; before 2026-11-25): diagnostics possibly under `engine/` (now `system/`); the
  machine only as the tag `hardware`, now also the params `hardware_*`; settings added since
  (straggler delays, cuDNN and TF32 flags, ...) missing from the params; rows named by the tags
  `cell` and `variant`; job keys hashed without later settings and with the cell.
- 3 (2026-11-25): a row's name declared by its table (`U=4,B=128`, `authors_code`) in the tag
  `row_name` and in the job key.
- 4 (now): a row derived from its typed settings (core.job.Row), its name in the tag `row_name`
  and the job key.

Each run gets the params and tags a run of today's suite has, derived from what it logged: its
row from its params (`TableSpec.run_row`), its job key from a Job rebuilt from its params, the
hardware params from its `hardware` tag, missing settings at the default they ran with (named in
the tag `migrated_defaults`). Values it logged are never changed, so the same per-run numbers come
out of the reports. Running it twice is harmless.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import sqlite3
from pathlib import Path

from core.config import TrainConfig, flatten
from core.errors import UserError
from core.job import Job, Row, typed_like
from core.result import SCHEMA_VERSION, Hardware
from reports.runs import Run, read_runs

from .engine.store import Store, store_schemas

EARLIER_PREFIX = "engine/"  # where schema-1 stores before 2026-11-24 logged the diagnostics
HARDWARE_TAG = (
    (re.compile(r"^(?P<name>.+) x (?P<count>\d+)$"), "cuda"),  # 'NVIDIA H100 x 1'
    (re.compile(r"^(?P<name>.+) \((?P<cores>\d+) cores\)$"), "cpu"),  # 'AMD EPYC (2 cores)'
)


def backup(store: Store, no_backup: bool) -> Path | None:
    """Copy an SQLite store beside itself (SQLite's online backup: a consistent copy) and return
    the copy's path; another store is the user's to back up (`--no-backup` says it is done)."""
    if store.sqlite_path is None:
        if not no_backup:
            raise UserError(
                f"{store.uri} is not an SQLite file, so migrate-store cannot back it up: back up its "
                "database (pg_dump, mysqldump, the server's own) and run again with --no-backup"
            )
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    copy = store.sqlite_path.with_name(f"{store.sqlite_path.name}.before-migrate-{stamp}")
    source, target = sqlite3.connect(store.sqlite_path), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return copy


def hardware_from_tag(text: str) -> Hardware | None:
    """The machine a schema-1 run's `hardware` tag names (cores of a GPU host were not logged: 0)."""
    for pattern, kind in HARDWARE_TAG:
        match = pattern.match(text or "")
        if match:
            found = match.groupdict()
            return Hardware(kind, found["name"], int(found.get("count") or 1), int(found.get("cores") or 0))
    return None


def config_from_params(cls: type, params: dict[str, str]) -> object:
    """A config dataclass with each field the run logged (typed as the field's default) and the
    default for each it did not."""
    values = {
        f.name: typed_like(f.default, params[f.name]) for f in dataclasses.fields(cls) if f.name in params
    }
    return cls(**values)


def job_of_run(tags: dict[str, str], params: dict[str, str], row: Row) -> Job:
    """The Job a training run ran, rebuilt from its tags and params (for its job key)."""
    from methods import METHODS

    return Job(
        table=tags["table"],
        dataset=tags["dataset"],
        model=tags["model"],
        method=tags["method"],
        profile=tags["profile"],
        config=config_from_params(TrainConfig, params),
        method_config=config_from_params(METHODS[tags["method"]].Config, params),
        seed=int(tags.get("seed", tags.get("run_index", 0))),
        run_index=int(tags.get("run_index", 0)),
        devices=int(float(params.get("devices", tags.get("devices", 1)))),
        row_settings=row.settings,
    )


def run_row(tags: dict[str, str], params: dict[str, str]) -> Row:
    """A run's row: among its table's rows where it is of one, else its method's own settings."""
    from .tables import TABLES

    spec = TABLES.get(tags.get("table", ""))
    row = spec.run_row(tags["method"], params, tags.get("profile"), tags.get("model")) if spec else None
    return row if row is not None else Row(tags["method"]).extended(params)


def copy_earlier_metrics(store: Store, run: Run) -> int:
    """Each metric logged under `engine/` again under `system/` (its steps and times kept)."""
    from mlflow.entities import Metric

    copied = 0
    for key in [k for k in run.metrics if k.startswith(EARLIER_PREFIX)]:
        name = "system/" + key.removeprefix(EARLIER_PREFIX)
        if name in run.metrics:
            continue
        history = store.client.get_metric_history(run.run_id, key)
        metrics = [Metric(name, m.value, m.timestamp, m.step) for m in history]
        for i in range(0, len(metrics), 1000):
            store.client.log_batch(run.run_id, metrics=metrics[i : i + 1000], synchronous=True)
        copied += 1
    return copied


def migrate_run(store: Store, run: Run) -> str:
    """Give one run the params and tags of today's schema (module docstring); returns why its job
    key was kept ("" when it was recomputed or the run has none)."""
    from mlflow.entities import Param, RunTag

    from methods import METHODS

    tags, params = dict(run.tags), dict(run.params)
    new_params: dict[str, object] = {}
    new_tags: dict[str, str] = {"schema": SCHEMA_VERSION}
    machine = Hardware.from_params(params) or hardware_from_tag(tags.get("hardware", ""))
    if machine is not None and "hardware_kind" not in params:
        new_params |= machine.params()
    copy_earlier_metrics(store, run)
    if tags.get("method") in METHODS and "job_key" in tags and "table" in tags:
        defaults = flatten(TrainConfig(), METHODS[tags["method"]].Config())
        missing = {k: v for k, v in defaults.items() if k not in params}
        if missing:  # settings added since the run: it ran at their defaults
            new_params |= missing
            new_tags["migrated_defaults"] = ",".join(sorted(missing))
        params |= {k: str(v) for k, v in missing.items()}
        try:
            row = run_row(tags, params)
            new_tags["job_key"] = job_of_run(tags, params, row).key
        except (ValueError, TypeError, KeyError) as err:  # a param today's config cannot read
            kept = f"{type(err).__name__}: {err}"
            new_tags["migrated_key"] = f"kept, its params build no job today ({kept})"[:500]
        else:
            if row.settings or "row_name" in tags:
                new_tags["row_name"] = row.name
    run_id = run.run_id
    items = [Param(k, str(v)) for k, v in new_params.items()]
    for i in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
        store.client.log_batch(run_id, params=items[i : i + 100], synchronous=True)
    store.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in new_tags.items()], synchronous=True)
    return new_tags.get("migrated_key", "")


def migrate(uri: str | None, no_backup: bool = False) -> int:
    """`migrate-store`: back the store up, then migrate every run and experiment of an earlier
    schema; prints what it did. A store already at today's schema is left as it is."""
    store = Store(uri, create=False, check_schema=False)
    earlier = sorted(store_schemas(store.client) - {SCHEMA_VERSION})
    if not earlier:
        print(f"{store.uri} is at store schema {SCHEMA_VERSION} already: nothing to migrate")
        return 0
    if any(int(schema) > int(SCHEMA_VERSION) for schema in earlier):
        raise UserError(
            f"{store.uri} holds store schema {', '.join(earlier)}, newer than this suite's "
            f"{SCHEMA_VERSION}: upgrade the suite instead"
        )
    copy = backup(store, no_backup)
    if copy is not None:
        print(f"backed up {store.sqlite_path} to {copy}")
    runs, kept = 0, []
    with store.storage_errors("migrated"):
        for experiment in store.client.search_experiments():
            if experiment.name == "Default" or experiment.tags.get("schema") == SCHEMA_VERSION:
                continue
            for run in read_runs(store.uri, experiment.name, every=True):
                if run.tags.get("schema") != SCHEMA_VERSION:
                    if why := migrate_run(store, run):
                        kept.append(f"{run.tags.get('mlflow.runName', run.run_id)}: {why}")
                    runs += 1
            store.client.set_experiment_tag(experiment.experiment_id, "schema", SCHEMA_VERSION)
    print(
        f"migrated {runs} runs of store schema {', '.join(earlier)} to schema {SCHEMA_VERSION} in {store.uri}"
    )
    if kept:  # reported, not resumed: `run` trains those jobs again (tag `migrated_key`)
        print(f"{len(kept)} runs kept their job key, e.g. {kept[0]}")
    return 0
