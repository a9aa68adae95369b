"""The verbs that run tables and write their reports: `run TABLE`, `run claims`, `report`."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from core.errors import StorageError, UserError, did_you_mean
from core.runtime.processes import is_alive

log = logging.getLogger("benchmarks")
MAX_RUNS = 100  # runs per cell: a paired test needs 3; beyond 100 a table's jobs take long to list


def close_stale(tracker) -> None:
    """Send the spools this host left for the store (`sync`), then close the runs left `running` by
    processes that died (see Tracker.close_stale_runs), saying so."""
    from .engine.spool import Spool, waiting_spools

    for path in waiting_spools():
        try:
            spool = Spool.load(path)
            # Its job is over, and on this host (another host's spool is its own to send).
            if spool.header.get("uri") == tracker.uri and not spool.foreign() and not is_alive(spool.header):
                sent = tracker.sync(spool)
                name = spool.header["run_name"]
                log.warning("run %s: %d records from the spool %s sent to the store", name, sent, path)
        except StorageError as err:
            log.warning("%s", err)
    for line in tracker.close_stale_runs():
        log.warning("%s", line)


def say_stale(tracker) -> None:
    """What a reader (`report`) finds left over, said and left as it is: spools this host keeps for
    the store, and runs left `running` by processes that died. Writing them is a writer's act."""
    from .engine.spool import Spool, waiting_spools

    for path in waiting_spools():
        try:
            spool = Spool.load(path)
        except StorageError as err:
            log.warning("%s", err)
            continue
        if spool.header.get("uri") == tracker.uri and not spool.foreign() and not is_alive(spool.header):
            name = spool.header["run_name"]
            log.warning("run %s: its records wait in %s: `python -m benchmarks sync` sends them", name, path)
    with tracker.storage_errors("read"):
        for run, error in tracker.stale_runs():
            log.warning(
                "run %s was left running: %s; the next `run`, `train` or `sync --close-stale` marks it "
                "failed (stale)", run.info.run_name, error,
            )  # fmt: skip


def sync_spools(paths: list[str], uri: str | None, close: bool = False) -> int:
    """`sync`: send spools to their store (or `uri`), each as one line; 1 if any stays. `close`:
    then mark the stale runs of each store failed (the admin's `sync --close-stale`)."""
    from .engine.spool import Spool, spool_dir, waiting_spools
    from .engine.store import default_tracking_uri
    from .engine.tracking import Tracker

    files = [Path(p) for p in paths] or waiting_spools()
    trackers, failed = {}, 0
    if not files:
        print(f"no spools in {spool_dir()}: nothing to send")
    for path in files:
        try:
            spool = Spool.load(path)
            store = uri or spool.header["uri"]
            if store not in trackers:
                trackers[store] = Tracker(store, create=False)
            sent = trackers[store].sync(spool)
            print(f"run {spool.header['run_name']} ({spool.run_id[:8]}): {sent} records sent to {store}")
        except StorageError as err:
            print(f"error: {err}; the spool stays at {path}", file=sys.stderr)
            failed += 1
    if close:
        if not trackers:
            trackers[uri or default_tracking_uri()] = Tracker(uri or default_tracking_uri(), create=False)
        for tracker in trackers.values():
            try:
                for line in tracker.close_stale_runs():
                    print(line)
            except StorageError as err:
                print(f"error: {err}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def cmd_run(args) -> int:
    from core.config import parse_settings
    from datasets import resolve_data_dir

    from .engine.build import check_device_count, method_settings_hint, with_method_settings
    from .engine.executor import Executor
    from .engine.tracking import Tracker
    from .profiles import resolve_profile
    from .tables import TABLES, get_table

    for flag, value in (("--runs", args.runs), ("--devices", args.devices)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
    if args.runs is not None and args.runs > MAX_RUNS:
        raise UserError(f"--runs must be <= {MAX_RUNS} (runs per cell, seeds 0..N-1), got {args.runs}")
    if args.table == "claims":
        return cmd_run_claims(args)
    refuse_claims_flags(args)
    wanted = args.methods.split(",") if args.methods else None
    if args.table == "all":
        specs = [s for s in TABLES.values() if not s.missing_methods]
    else:
        specs = [get_table(args.table, wanted)]
    profile = resolve_profile(args.profile)
    jobs = []
    for spec in specs:
        table = spec if args.table == "all" else with_guests(spec, wanted)  # guests join one table
        table_jobs = table.jobs(profile, args.runs, args.devices)
        if wanted:
            known = {j.method for j in table_jobs}
            for name in wanted:
                if name not in known:
                    raise did_you_mean("method", name, known, plural=f"methods of {spec.id} at {profile}")
            table_jobs = [j for j in table_jobs if j.method in wanted]
        jobs += table_jobs
    config_types = list(dict.fromkeys(type(j.method_config) for j in jobs))
    jobs = with_method_settings(jobs, parse_settings(args.set, config_types, method_settings_hint(jobs)))
    jobs = list({(j.table, j.key): j for j in jobs}.values())  # views of the same runs share jobs
    for job in jobs:  # before anything runs: a table asking for more devices than here stops now
        check_device_count(job)
    data_dir, tracker = resolve_data_dir(args.data_dir), Tracker(args.tracking_uri)
    close_stale(tracker)
    pending = [j for j in jobs if tracker.finished_run(j.table, j.key) is None]
    budgets = [j.config.time_budget_s for j in pending]
    estimate = f"; at most ~{sum(budgets) / 60:.0f} min of training (the budgets)" if all(budgets) else ""
    log.info("%d jobs to run, %d finished before%s", len(pending), len(jobs) - len(pending), estimate)
    # The bar counts the jobs still to run, so its ETA (tqdm's, from the jobs done) is not skewed.
    # `pending` was read from the store just now: not asked again per job. A job another process
    # finishes meanwhile is refused by the reservation (TAKEN).
    executor = Executor(tracker, data_dir, finished=lambda job: False)
    outcomes = executor.execute_all(pending, f"{args.table} ({profile})")
    print_outcomes(outcomes, len(jobs) - len(pending), tracker.uri)
    return report_not_run(outcomes)


def with_guests(spec, wanted: list[str] | None):
    """The table with each asked method it does not have as a guest row (`TableSpec.with_methods`:
    any registered method runs in an existing table's workloads; an unknown name exits 2)."""
    return spec.with_methods(wanted) if wanted else spec


def refuse_claims_flags(args) -> None:
    """Exit 2 with one line where `run TABLE` is given a flag of `run claims`."""
    claims_only = (
        ("--only", args.only),
        ("--budget", args.budget),
        ("--dry-run", args.dry_run),
        ("--until-decided", args.until_decided),
        ("--out", args.out),
    )
    for flag, value in claims_only:
        if value:
            raise UserError(f"{flag} is for `run claims`, not for a table")


def run_missing(jobs: list, tracker, data_dir, title: str) -> int:
    """Run the jobs without a finished run (a verb's own experiment: `targets`, `tune`), print
    what ran, and return 1 where one could not run (one line per cause), else 0."""
    from datasets import resolve_data_dir

    from .engine.executor import Executor

    pending = [j for j in jobs if tracker.finished_run(j.table, j.key) is None]
    if not pending:
        return 0
    executor = Executor(tracker, resolve_data_dir(data_dir), finished=lambda job: False)
    outcomes = executor.execute_all(pending, title)
    print_outcomes(outcomes, len(jobs) - len(pending), tracker.uri)
    return report_not_run(outcomes)


def report_not_run(outcomes: list) -> int:
    """Print one line per cause of the jobs that could not run, on stderr; 1 if any, else 0. The
    finished runs stay in the store (`run` resumes them)."""
    from .engine.executor import not_run

    lines = not_run(outcomes)
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return 1 if lines else 0


def print_outcomes(outcomes: list, finished_before: int, uri: str) -> None:
    """Each job run's result in one line, the tally, then the diverged jobs by name (the jobs not
    run, failed ones among them, are `report_not_run`'s)."""
    from .engine.executor import RAN, tally

    for o in outcomes:
        if o.state == RAN:
            numbers = " ".join(f"{k}={v:.4g}" for k, v in o.result.numbers().items())
            print(f"{o.job.table} {o.job.name}: {o.result.status} {numbers}")
    print(f"{tally(outcomes, finished_before)}; results in {uri}")
    for o in outcomes:
        if o.result is not None and o.result.status == "diverged":  # a finding, kept and shown by reports
            print(f"diverged: {o.job.name} (NaN loss; kept as `diverged`, run again by the next `run`)")


class Staged:
    """`with Staged(out_dir) as folder:` a folder beside `out_dir` to write a report into. On
    success its files replace those of `out_dir` one by one (`os.replace`: each is the old file or
    the new, never half of one; `written` lists them); on failure or Ctrl-C it is removed and
    `out_dir` is as it was."""

    def __init__(self, out_dir: Path):
        self.out_dir, self.written = out_dir, []

    def __enter__(self) -> Path:
        self.folder = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}-", dir=self.out_dir.parent))
        return self.folder

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                for path in sorted(self.folder.iterdir()):
                    os.replace(path, self.out_dir / path.name)
                    self.written.append(self.out_dir / path.name)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def check_writable(out_dir: Path) -> None:
    """Exit 1 with one line, before anything runs, if the reports cannot be written to `out_dir`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / ".writable").touch()
        (out_dir / ".writable").unlink()
    except OSError as err:
        raise StorageError(f"cannot write the reports to {out_dir}: {err.strerror}") from None


def cmd_run_claims(args) -> int:
    """`run claims`: the claims' plans within the budget, then the claims report (docs/design.md)."""
    from datasets import resolve_data_dir
    from reports.claims import CLAIMS

    from .engine.executor import Executor, tally
    from .engine.planner import Estimates, parse_duration, run_claims, select_claims
    from .engine.sequential import print_designs, run_until_decided
    from .engine.speed import Speed
    from .engine.store import PROJECT_ROOT
    from .engine.tracking import Tracker
    from .perf import PERF, PerfOptions
    from .profiles import resolve_profile
    from .tables import TABLES

    if args.methods or args.set:
        raise UserError("--methods and --set are for `run TABLE`; `run claims` runs what each claim needs")
    budget = parse_duration(args.budget) if args.budget else None
    claims = select_claims(dict(CLAIMS), args.only)
    profile = resolve_profile(args.profile)
    tracker = Tracker(args.tracking_uri)
    close_stale(tracker)
    data_dir = resolve_data_dir(args.data_dir)
    out_dir = Path(args.out) if args.out else PROJECT_ROOT / "reports" / "out"
    plans, lost = runnable_plans(claims, profile, args, data_dir, out_dir, tracker.uri)
    missing = set(lost)
    estimates = Estimates(tracker, profile, Speed(data_dir))

    def run_perf(name: str) -> None:
        tracker.log_perf(name, PERF[name](PerfOptions.planned(name, profile, data_dir)))

    executor = Executor(tracker, data_dir, budget_s=budget)
    left_out = run_claims(plans, executor, estimates, run_perf, args.dry_run)
    if args.dry_run:
        print_designs(plans, dict(TABLES), profile, args.devices, estimates, missing)
        return 0
    if args.until_decided and profile == "smoke":
        log.warning("--until-decided: smoke runs decide nothing, so no look follows the first")
    elif args.until_decided:
        later = run_until_decided(
            claims, dict(TABLES), profile, args.devices, executor, estimates, run_perf, missing
        )
        left_out = list({**dict(left_out), **dict(later)}.items())
    print(f"jobs: {tally(executor.outcomes)}; results in {tracker.uri}")
    write_verdicts(tracker.uri, out_dir, profile, left_out)
    code = report_not_run(executor.outcomes)
    for dataset, (why, claim_ids) in lost.items():  # planned, never run: as a table's jobs would say
        print(f"error: not run, the {dataset} jobs of {', '.join(claim_ids)}: {why}", file=sys.stderr)
    return 1 if lost else code


def runnable_plans(
    claims: list, profile: str, args, data_dir: Path, out_dir: Path, uri: str
) -> tuple[list, dict[str, tuple[str, list[str]]]]:
    """The claims' plans, less what this machine cannot run (too few GPUs, data not on disk), and
    each dataset not on disk with why and the claims whose jobs need it (a dry run warns of them
    here; a run ends on them, exit 1); for a real run, also checks that the report can be written
    and every job's devices exist."""
    import torch

    from datasets.registry import looking_only

    from .engine.build import check_device_count
    from .engine.planner import drop_missing_data, drop_undecidable, plan_claims
    from .tables import TABLES

    plans = plan_claims(claims, dict(TABLES), profile, args.runs, args.devices, uri)
    drop_undecidable(plans, torch.cuda.device_count(), profile)
    needs: dict[str, set[str]] = {}
    for plan in plans:
        for job in plan.every_job:
            needs.setdefault(job.dataset, set()).add(plan.claim.id)
    with looking_only() if args.dry_run else contextlib.nullcontext():  # a dry run looks, never fetches
        missing = drop_missing_data(plans, data_dir)
    for dataset, why in missing.items() if args.dry_run else ():
        log.warning("%s: %s", dataset, why)
    if not args.dry_run:
        check_writable(out_dir)
        for job in {(j.table, j.key): j for p in plans for j in p.every_job}.values():
            check_device_count(job)  # before anything runs
    return plans, {dataset: (why, sorted(needs[dataset])) for dataset, why in missing.items()}


def write_verdicts(uri: str, out_dir: Path, profile: str, left_out: list[tuple[str, float]]) -> None:
    """The claims report into `out_dir`, then each verdict and what the budget left out, printed."""
    from reports.claims import write_claims
    from reports.render import write_index

    from .engine.planner import minutes
    from .tables import TABLES

    with Staged(out_dir) as folder:
        results = write_claims(uri, dict(TABLES), folder, profile, dict(left_out))
    write_index(out_dir, TABLES.values())
    print(f"verdicts ({profile}), the whole table with each cell's effect and band: {out_dir / 'claims.md'}")
    for claim, _, verdict in results:
        print(f"  {claim.id}: {verdict.verdict} (rule {verdict.version})")
    for claim_id, cost in left_out:
        print(f"left out by the budget: {claim_id} (~{minutes(cost)} more)")


def cmd_report(args) -> int:
    from reports.claims import write_claims
    from reports.render import write_index, write_report

    from .engine.store import PROJECT_ROOT, default_tracking_uri
    from .engine.tracking import Tracker
    from .profiles import PROFILES
    from .tables import TABLES

    if args.table not in (*TABLES, "claims", "all"):
        raise did_you_mean("table", args.table, [*TABLES, "claims", "all"])
    if args.profile and args.profile not in PROFILES:
        raise did_you_mean("profile", args.profile, PROFILES)
    out_dir = Path(args.out) if args.out else PROJECT_ROOT / "reports" / "out"
    uri = args.tracking_uri or default_tracking_uri()
    tracker = Tracker(uri, create=False)
    say_stale(tracker)  # a reader: it says what is left over and writes nothing
    check_writable(out_dir)
    if args.table == "claims":
        specs = []
    elif args.table == "all":
        specs = list(TABLES.values())
    else:
        specs = [TABLES[args.table]]
    stage = Staged(out_dir)
    with stage as folder:  # a report that fails half-way leaves the previous one whole
        if args.table in ("claims", "all"):
            write_claims(uri, dict(TABLES), folder, args.profile)
        for spec in specs:
            write_report(spec, uri, folder, args.profile)
    for path in stage.written:
        print(path)
    print(write_index(out_dir, TABLES.values()))
    if args.to_store:
        run_id = tracker.log_report(args.table, args.profile, stage.written)
        print(f"the report's files are in {uri}: run {run_id} of experiment reports")
    return 0
