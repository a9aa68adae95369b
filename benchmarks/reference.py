"""`targets TABLE`: reference runs of a table's workloads and the targets they derive.

A workload's target is frozen in benchmarks/tables/common/targets.py before any run it scores. This
verb makes the evidence for one: the reference method (`bp`) on each workload of the table, on
seeds of its own (1000, 1001, ...), in the experiment `reference-targets`, resuming like `run`; it
then prints each workload's reference bests, the target `targets.derived` makes of them, the
frozen one, and the line to freeze. It never writes a target: a person freezes it, with its
provenance, and a claim reads only what is frozen (docs/claims.md, "Targets set apart").
"""

from __future__ import annotations

import dataclasses
import datetime
import sys

from core.config import TrainConfig
from core.errors import UserError
from core.job import Job

from .tables.common.spec import Cell, TableSpec
from .tables.common.targets import (
    REFERENCE_EXPERIMENT,
    REFERENCE_METHOD,
    REFERENCE_SEED,
    derived,
)

TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def reference_jobs(spec: TableSpec, profile: str, runs: int) -> dict[str, list[Job]]:
    """model -> the reference runs of its workload in this table at `profile`: the reference method
    on one process with the cells' dataset, epochs, base config and shared training settings (a
    time budget, a compressed cosine), seeds REFERENCE_SEED + i."""
    from methods import METHODS

    from .engine.build import build_job

    jobs: dict[str, list[Job]] = {}
    trained = [
        c for c in spec.cells(profile) if c.row.method in METHODS and not METHODS[c.row.method].measures
    ]
    for model in dict.fromkeys(c.model for c in trained):
        if spec.workload(profile, model) is None:
            raise UserError(f"{spec.id}'s {model} cells differ in dataset, epochs or budget: no one workload")
        cell: Cell = next(c for c in trained if c.model == model)
        shared = {k: v for k, v in cell.settings if k in TRAIN_FIELDS}
        jobs[model] = [
            build_job(
                REFERENCE_EXPERIMENT,
                cell.dataset,
                model,
                REFERENCE_METHOD,
                profile,
                seed=REFERENCE_SEED + i,
                run_index=i,
                settings=shared,
                epochs=cell.epochs,
                config=cell.config,
                synthetic=cell.synthetic,
            )  # fmt: skip
            for i in range(runs)
        ]
    return jobs


def cmd_targets(args) -> int:
    """Run the missing reference runs of a table's workloads, then print each one's derived target."""
    from .engine.build import check_device_count
    from .engine.tracking import Tracker
    from .profiles import resolve_profile
    from .run_verbs import run_missing
    from .tables import get_table

    if args.runs < 1:
        raise UserError(f"--runs must be >= 1, got {args.runs}")
    spec, profile = get_table(args.table), resolve_profile(args.profile)
    by_model = reference_jobs(spec, profile, args.runs)
    jobs = [job for model_jobs in by_model.values() for job in model_jobs]
    if not jobs:
        raise UserError(f"{spec.id} trains no model at {profile}: it has no workload to derive a target for")
    for job in jobs:
        check_device_count(job)
    tracker = Tracker(args.tracking_uri)
    failed = run_missing(jobs, tracker, args.data_dir, f"{spec.id} reference runs ({profile})")
    return print_targets(spec, profile, by_model, tracker) or failed


def print_targets(spec: TableSpec, profile: str, by_model: dict[str, list[Job]], tracker) -> int:
    """Each workload's reference bests, its frozen target and the one the rule derives, with the
    line to freeze; 1 where a workload's reference runs have not all finished, else 0."""
    from reports.runs import curve

    failed = 0
    today = datetime.date.today().isoformat()
    for model, model_jobs in by_model.items():
        metric = spec.metric_of(model)
        finished = [tracker.finished_run(j.table, j.key) for j in model_jobs]
        bests = [
            metric.best_of(curve(tracker.uri, run.info.run_id, (metric.name,)).get(metric.name, []))
            for run in finished
            if run is not None
        ]
        frozen = spec.targets.get(profile, {}).get(model)
        dataset, _, _, epochs, budget = spec.workload(profile, model)
        epochs_text = f"{epochs} epochs" if epochs else "the profile's epochs"
        budget_text = f"a {budget:g} s budget" if budget is not None else "the profile's budget"
        print(
            f"{spec.id} {model} at {profile} ({dataset}, {epochs_text}, {budget_text}): {len(bests)} of "
            f"{len(model_jobs)} reference runs of {REFERENCE_METHOD}, best "
            f"{' '.join(f'{b:.4g}' for b in bests) or '-'}"
        )
        print(f"  frozen: {f'{frozen.value:g} ({frozen.source})' if frozen else 'none'}")
        if len(bests) < len(model_jobs):
            print("  derived: not until every reference run has finished", file=sys.stderr)
            failed = 1
            continue
        value = derived(bests, metric)
        seeds = f"{REFERENCE_SEED}-{REFERENCE_SEED + len(bests) - 1}"
        print(
            f'  derived: {value:g}; to freeze: Target({value:g}, "{today}, targets version 3: {len(bests)} '
            f"{REFERENCE_METHOD} reference runs (seeds {seeds}, experiment {REFERENCE_EXPERIMENT}), best "
            f'{"/".join(f"{b:.3f}" for b in bests)}")'
        )
    return failed
