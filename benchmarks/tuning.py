"""`tune TABLE`: the trials of each compared method's declared search space, and what they choose.

Each method a table tunes (`TableSpec.tuning`, benchmarks/tables/common/tuning.py) gets the same
number of trials on each workload: its row at the table's reference (no delay) with each trial's
settings, one run each on seed TUNING_SEED, in the experiment `tuning-TABLE`, resuming like `run`.
A trial scores its time to the workload's frozen target (never: after every trial that reached
it), then its best value; the best score is the method's choice. The verb prints every trial and
each choice with the line to freeze; it never writes a choice: a person freezes it in the table's
`Tuning.chosen` with its provenance, before the table's scored runs (docs/claims.md, "Equal
tuning").
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, replace

from core.errors import UserError
from core.job import Job

from .tables.common.spec import TableSpec, cell_job
from .tables.common.tuning import TUNING_SEED, SearchSpace, experiment_of, trial_rows


@dataclass(frozen=True)
class Trial:
    """One trial of a method's space on a workload: its settings and its job."""

    model: str
    method: str
    index: int  # 1-based, in the space's order
    settings: tuple
    job: Job


def trials_of(spec: TableSpec, profile: str, methods: list[str] | None = None) -> list[Trial]:
    """Every trial of every tuned method (or of `methods`) on every workload of the table at
    `profile`: each method's first cell at the table's reference settings (no delay), its row with
    each trial's settings."""
    if spec.tuning is None:
        raise UserError(f"{spec.id} tunes no method: it has no declared search space (only layup has)")
    trials, seen = [], set()
    for cell in spec.cells(profile):
        settings = dict(cell.row.settings)
        at_reference = all(settings.get(k, v) == v for k, v in spec.reference.items())
        spaces = spec.tuning.spaces(profile, cell.model)
        if unknown := sorted(set(methods or ()) - set(spaces)):
            raise UserError(f"--methods {','.join(unknown)}: {spec.id} tunes {', '.join(spaces)}")
        if methods and cell.row.method not in methods:
            continue
        if not at_reference or cell.row.method not in spaces or (cell.model, cell.row.method) in seen:
            continue
        seen.add((cell.model, cell.row.method))
        space: SearchSpace = spaces[cell.row.method]
        for index, (trial, row) in enumerate(zip(space.trials, trial_rows(cell.row, space), strict=True), 1):
            job = cell_job(experiment_of(spec.id), replace(cell, row=row, runs=1), profile, TUNING_SEED)
            trials.append(Trial(cell.model, cell.row.method, index, trial, job))
    return trials


def cmd_tune(args) -> int:
    """Run the missing trials of a table's tuned methods, then print each trial and each choice."""
    from .engine.build import check_device_count
    from .engine.tracking import Tracker
    from .profiles import resolve_profile
    from .run_verbs import run_missing
    from .tables import get_table

    spec, profile = get_table(args.table), resolve_profile(args.profile)
    trials = trials_of(spec, profile, args.methods.split(",") if args.methods else None)
    for trial in trials:
        check_device_count(trial.job)
    tracker = Tracker(args.tracking_uri)
    jobs = [t.job for t in trials]
    failed = run_missing(jobs, tracker, args.data_dir, f"{spec.id} tuning trials ({profile})")
    return print_choices(spec, profile, trials, tracker) or failed


def chosen(scores: list[tuple[float, float]], direction: str) -> int:
    """The index of the best score: the shortest time to target, then the best value."""
    sign = -1.0 if direction == "max" else 1.0
    return min(range(len(scores)), key=lambda i: (scores[i][0], sign * scores[i][1]))


def print_choices(spec: TableSpec, profile: str, trials: list[Trial], tracker) -> int:
    """Each method's trials on each workload and its choice, with the line to freeze; 1 where a
    method's trials have not all finished."""
    failed = 0
    today = datetime.date.today().isoformat()
    by_method: dict[tuple[str, str], list[Trial]] = {}
    for trial in trials:
        by_method.setdefault((trial.model, trial.method), []).append(trial)
    for (model, method), its_trials in by_method.items():
        target = spec.target_values(profile).get(model)
        aim = f"{target:g}" if target is not None else "none"
        print(f"{spec.id} {model} at {profile}, {method}: {len(its_trials)} trials, seed {TUNING_SEED}, "
              f"experiment {experiment_of(spec.id)} (target {aim})")  # fmt: skip
        runs = [tracker.finished_run(t.job.table, t.job.key) for t in its_trials]
        scores = []
        for trial, run in zip(its_trials, runs, strict=True):
            text = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.settings)
            if run is None:
                print(f"  trial {trial.index} {text}: not finished")
                continue
            seconds, best = score_run(spec, profile, model, tracker.uri, run)
            scores.append((seconds, best))
            reached = "never" if math.isinf(seconds) else f"{seconds:.0f} s"
            print(f"  trial {trial.index} {text}: best {best:.4g}, time to target {reached}")
        if len(scores) < len(its_trials):
            print(f"  chosen: not until all {len(its_trials)} trials have finished")
            failed = 1
            continue
        pick = its_trials[chosen(scores, spec.metric_of(model).direction)]
        seconds, best = scores[pick.index - 1]
        reached = (
            "never reached the target" if math.isinf(seconds) else f"reached the target at {seconds:.0f} s"
        )
        print(
            f"  chosen: trial {pick.index}; to freeze: {model!r}: {{{method!r}: Tuned({pick.settings!r}, "
            f'"{today}, tune {spec.id} --profile {profile}: trial {pick.index} of {len(its_trials)} '
            f'(seed {TUNING_SEED}), {reached}, best {best:.4g}")}}'
        )
    return failed


def score_run(spec: TableSpec, profile: str, model: str, uri: str, run) -> tuple[float, float]:
    """A finished trial's (time to the frozen target, or inf; best value)."""
    from reports.runs import curve, time_to_best, time_to_target

    metric = spec.metric_of(model)
    run_curve = curve(uri, run.info.run_id, (metric.name,))
    target = spec.target_values(profile).get(model, math.nan)
    seconds, _ = time_to_target(run_curve, target, metric)
    best, _, _ = time_to_best(run_curve, metric)
    return (math.inf if math.isnan(seconds) else seconds), best
