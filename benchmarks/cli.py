"""The command line: list, train, run, report, perf (the contract is in docs/design.md)."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from core.errors import DataMissingError, StorageError, Terminated, UserError, did_you_mean
from core.runtime.allocator import tune_glibc_malloc

log = logging.getLogger("benchmarks")
MAX_SEED = 2**63 - 1  # torch.manual_seed takes a 64-bit seed
MAX_RUNS = 100  # runs per cell: a paired test needs 3; beyond 100 a table's jobs take long to list


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> Parser:
    parser = Parser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)

    sub.add_parser("list", help="tables, methods, datasets, models, profiles and perf benchmarks")

    train = sub.add_parser("train", help="run one training job")
    train.add_argument("--dataset", default="cifar10")
    train.add_argument("--model", default="resnet18")
    train.add_argument("--method", required=True)
    train.add_argument("--profile", default="auto")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter"
    )
    train.add_argument("--epochs", type=int, help="max epochs (same as --set max_epochs=N)")
    train.add_argument("--devices", type=int, default=1, help="processes (one per GPU, or CPU processes)")
    train.add_argument("--data-dir", help="default: $BENCH_DATA_DIR, else datasets/cache/")
    train.add_argument(
        "--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db"
    )
    train.add_argument("--json", action="store_true", help="print the result as one JSON line last")

    run = sub.add_parser("run", help="run every job of a table (or all, or the claims' plans), resuming")
    run.add_argument("table", help="a table or figure id, all, or claims (the runs that decide the claims)")
    run.add_argument("--profile", default="auto")
    run.add_argument("--methods", help="comma-separated subset of the table's methods")
    run.add_argument("--runs", type=int, help="runs per cell (default: the profile's)")
    run.add_argument("--devices", type=int, help="processes for multi-device methods")
    run.add_argument("--data-dir")
    run.add_argument("--tracking-uri")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a method setting, for the jobs whose method has it (e.g. reading=authors_code)",
    )
    run.add_argument("--only", help="run claims: comma-separated claim ids (default: every claim)")
    run.add_argument("--out", help="run claims: where the claims report goes (default: reports/out/)")
    run.add_argument("--budget", help="run claims: run what fits in this time (e.g. 2h, 90m), cheapest first")
    run.add_argument(
        "--dry-run", action="store_true", help="run claims: print each claim's plan and estimate"
    )

    report = sub.add_parser("report", help="write reports/out/TABLE.md and .csv from the MLflow runs")
    report.add_argument("table", help="a table or figure id, claims (the claims' verdicts), or all")
    report.add_argument("--profile", help="only this profile's runs (default: every profile with runs)")
    report.add_argument("--out", default=None, help="output folder (default: reports/out/)")
    report.add_argument("--tracking-uri")

    calibrate = sub.add_parser(
        "calibrate-claims", help="each claim's rule on simulated stores of known truth: its error rates"
    )
    calibrate.add_argument(
        "--sims", type=int, default=1000, help="simulated stores per claim, scenario and runs"
    )
    calibrate.add_argument("--json", action="store_true", help="print every rate as JSON")
    calibrate.add_argument(
        "--pins",
        action="store_true",
        help="print each rule's verdicts on fixed evidence (tests/claim_rules.json)",
    )

    doctor = sub.add_parser("doctor", help="check this machine: devices, data, store, a short async run")
    doctor.add_argument("--gpu", action="store_true", help="the GPU acceptance in one command (CUDA only)")
    doctor.add_argument("--data-dir")
    doctor.add_argument("--tracking-uri")
    doctor.add_argument("--out", help="doctor --gpu: where its table goes (default: reports/out/)")

    ui = sub.add_parser("ui", help="the MLflow UI over the store, with a link to each table's runs")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--tracking-uri")

    perf = sub.add_parser("perf", help="micro-benchmarks, both sides measured in one process")
    perf.add_argument("name")
    perf.add_argument(
        "--reps", type=int, help="interleaved repetitions per side (default: the benchmark's own)"
    )
    perf.add_argument("--steps", type=int, help="batches per repetition (default: the benchmark's own)")
    perf.add_argument("--data-dir")
    perf.add_argument(
        "--model", choices=("resnet18", "lstm"), help="perf async: the quick ResNet-18 (default) or IMDb LSTM"
    )
    perf.add_argument("--json", action="store_true")
    perf.add_argument(
        "--tracking-uri", help="where the result is logged (experiment `perf`); default as for train"
    )
    return parser


def close_stale(tracker) -> None:
    """Close the runs left `running` by processes that died (see Tracker.close_stale_runs), saying so."""
    for name in tracker.close_stale_runs():
        log.warning("run %s was left running by a process that died: marked failed (stale)", name)


def cmd_list(args) -> int:
    from datasets import DATASETS
    from methods import METHODS
    from models import MODELS

    from .perf import PERF
    from .profiles import PROFILES
    from .tables import TABLES

    width = max(len(name) for name in [*TABLES, *METHODS])
    print("tables:")
    for spec in TABLES.values():
        waiting = f"  [waits for: {', '.join(spec.missing_methods)}]" if spec.missing_methods else ""
        print(f"  {spec.id:<{width}} {spec.title}{waiting}")
    print("methods:")
    for name, cls in METHODS.items():
        if not cls.measures:
            print(f"  {name:<{width}} {cls.summary}")
    print("measurements:")
    for name, cls in METHODS.items():
        if cls.measures:
            print(f"  {name:<{width}} {cls.summary}")
    print(f"datasets:  {', '.join(sorted(DATASETS))}")
    print(f"models:    {', '.join(sorted(MODELS))}")
    print(f"profiles:  {', '.join(PROFILES)}")
    print(f"perf:      {', '.join(sorted(PERF))}")
    from reports.claims import CLAIMS

    print(f"claims:    {', '.join(CLAIMS)}  (`run claims --only ID,...`)")
    return 0


def cmd_train(args) -> int:
    from core.config import TrainConfig, parse_settings
    from datasets import resolve_data_dir
    from methods import get_method

    from .engine.build import build_job, check_device_count
    from .engine.distributed import launched_by_torchrun, torchrun_rank
    from .engine.runner import JobFailed, run_job
    from .engine.tracking import Tracker
    from .profiles import resolve_profile

    if not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed must be in 0..{MAX_SEED} (torch's seed range), got {args.seed}")
    rank, devices = 0, args.devices
    # `--set` is parsed here, at the edge, against the fields of TrainConfig and the method's config.
    settings = parse_settings(args.set, [TrainConfig, get_method(args.method).Config])
    if launched_by_torchrun():  # torchrun decides the processes: one rank per process it started
        rank, devices, _ = torchrun_rank()
    job = build_job(
        "adhoc",
        args.dataset,
        args.model,
        args.method,
        resolve_profile(args.profile),
        seed=args.seed,
        devices=devices,
        settings=settings,
        epochs=args.epochs,
    )
    check_device_count(job)
    tracker = Tracker(args.tracking_uri)
    close_stale(tracker)
    try:
        summary = run_job(job, resolve_data_dir(args.data_dir), tracker)
        code = 0 if summary["status"] == "finished" else 3
    except JobFailed as err:
        log.error("job failed: %s", err)
        summary, code = err.summary, 1
    if code != 1 and rank == 0:
        log.info(
            "%s: %s (%s), best %s %s after %s epochs, %s s of training; run %s in %s",
            job.name,
            summary["status"],
            summary["stop_reason"],
            summary["metric"],
            "none" if summary["best_metric"] is None else f"{summary['best_metric']:.4f}",
            summary["epochs"],
            summary["train_time_s"],
            summary["run_id"],
            tracker.uri,
        )
    if args.json and rank == 0:
        print(json.dumps(summary))
    return code


def cmd_run(args) -> int:
    from tqdm import tqdm

    from core.config import parse_settings
    from datasets import resolve_data_dir

    from .engine.build import check_device_count, method_settings_hint, with_method_settings
    from .engine.runner import JobFailed, run_job
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
    claims_only = (
        ("--only", args.only),
        ("--budget", args.budget),
        ("--dry-run", args.dry_run),
        ("--out", args.out),
    )
    for flag, value in claims_only:
        if value:
            raise UserError(f"{flag} is for `run claims`, not for a table")
    wanted = args.methods.split(",") if args.methods else None
    if args.table == "all":
        specs = [s for s in TABLES.values() if not s.missing_methods]
    else:
        specs = [get_table(args.table, wanted)]
    profile = resolve_profile(args.profile)
    jobs = []
    for spec in specs:
        table_jobs = spec.jobs(profile, args.runs, args.devices)
        if wanted:
            known = {j.method for j in table_jobs}
            for name in wanted:
                if name not in known:
                    raise did_you_mean("method", name, known, plural=f"methods of {spec.id}")
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
    results, failed, taken = [], [], []
    # The bar counts the jobs still to run, so its ETA (tqdm's, from the jobs done) is not skewed
    # by skipped ones.
    # On a terminal a progress bar; into a file (a cluster's log) one line per job instead.
    on_terminal = sys.stderr.isatty()
    with tqdm(
        total=len(pending), desc=f"{args.table} ({profile})", unit="job", disable=not on_terminal
    ) as bar:
        for index, job in enumerate(pending, 1):
            bar.set_postfix_str(job.name)
            if not on_terminal:
                log.info("job %d of %d: %s", index, len(pending), job.name)
            try:
                summary = run_job(job, data_dir, tracker, claim=True)  # another `run` may have it
                if summary is None:
                    taken.append(job.name)
                else:
                    results.append((job, summary))
            except JobFailed as err:
                log.error("%s failed: %s", job.name, err)
                failed.append(job.name)
            bar.update(1)
    for job, summary in results:
        numbers = {k: v for k, v in summary.items() if isinstance(v, float)}
        print(
            f"{job.table} {job.name}: {summary['status']} "
            + " ".join(f"{k}={v:.4g}" for k, v in numbers.items())
        )
    skipped = len(jobs) - len(results) - len(failed) - len(taken)
    diverged = [job.name for job, summary in results if summary["status"] == "diverged"]
    others = f", {len(taken)} run by another process" if taken else ""
    print(
        f"{len(results)} run, {skipped} already finished{others}, {len(failed)} failed, "
        f"{len(diverged)} diverged; results in {tracker.uri}"
    )
    for name in diverged:  # a finding, kept in MLflow as `diverged` and shown by the reports
        print(f"diverged: {name} (NaN loss; kept as `diverged` in MLflow, run again by the next `run`)")
    for name in failed:
        print(f"failed: {name}")
    return 1 if failed else 0


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
    from reports.claims import CLAIMS, write_claims
    from reports.render import write_index

    from .engine.build import check_device_count
    from .engine.planner import (
        Calibration,
        Estimates,
        drop_missing_data,
        drop_undecidable,
        minutes,
        parse_duration,
        perf_args,
        plan_claims,
        run_claims,
        select_claims,
    )
    from .engine.tracking import PROJECT_ROOT, Tracker
    from .perf import PERF
    from .profiles import resolve_profile
    from .tables import TABLES

    if args.methods or args.set:
        raise UserError("--methods and --set are for `run TABLE`; `run claims` runs what each claim needs")
    budget = parse_duration(args.budget) if args.budget else None
    claims = select_claims(dict(CLAIMS), args.only)
    profile = resolve_profile(args.profile)
    plans = plan_claims(claims, dict(TABLES), profile, args.runs, args.devices)
    import torch

    drop_undecidable(plans, torch.cuda.device_count())
    tracker = Tracker(args.tracking_uri)
    close_stale(tracker)
    data_dir = resolve_data_dir(args.data_dir)
    estimates = Estimates(tracker, profile, Calibration(data_dir))
    if args.dry_run:
        os.environ["BENCH_DOWNLOAD"] = "0"  # a dry run looks for the data, it does not fetch it
    for dataset, why in drop_missing_data(plans, data_dir).items():
        log.warning("%s: %s", dataset, why)
    out_dir = Path(args.out) if args.out else PROJECT_ROOT / "reports" / "out"
    if not args.dry_run:
        check_writable(out_dir)
        for job in {(j.table, j.key): j for p in plans for j in p.jobs}.values():
            check_device_count(job)  # before anything runs

    def run_perf(name: str) -> None:
        result = PERF[name](perf_args(name, profile, data_dir))
        tracker.log_perf(name, result)

    larger = [c.id for c in claims if args.runs and profile != "smoke" and args.runs > c.plan.runs]
    if larger and not args.dry_run:  # declared before any of its runs, so that they may count
        from reports.claims._common import PLANS_EXPERIMENT

        tracker.declare_plan(PLANS_EXPERIMENT, profile, args.runs, larger)
    left_out = run_claims(plans, tracker, data_dir, estimates, budget, run_perf, args.dry_run)
    if args.dry_run:
        return 0
    with Staged(out_dir) as folder:
        results = write_claims(tracker.uri, dict(TABLES), folder, profile, dict(left_out))
    write_index(out_dir, TABLES.values())
    print(f"verdicts ({profile}), the whole table with each cell's effect and band: {out_dir / 'claims.md'}")
    for claim, _, verdict in results:
        print(f"  {claim.id}: {verdict.verdict} (rule {verdict.version})")
    for claim_id, cost in left_out:
        print(f"left out by the budget: {claim_id} (~{minutes(cost)} more)")
    return 0


def cmd_report(args) -> int:
    from reports.claims import write_claims
    from reports.render import write_index, write_report

    from .engine.tracking import PROJECT_ROOT, Tracker, default_tracking_uri
    from .profiles import PROFILES
    from .tables import TABLES

    if args.table not in (*TABLES, "claims", "all"):
        raise did_you_mean("table", args.table, [*TABLES, "claims", "all"])
    if args.profile and args.profile not in PROFILES:
        raise did_you_mean("profile", args.profile, PROFILES)
    out_dir = Path(args.out) if args.out else PROJECT_ROOT / "reports" / "out"
    uri = args.tracking_uri or default_tracking_uri()
    close_stale(Tracker(uri, create=False))
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
    return 0


def cmd_calibrate_claims(args) -> int:
    """`calibrate-claims`: per claim, false "reproduced" on null, opposite and one-cell stores, false
    "not reproduced" and power on the paper's (reports/claims/calibrate.py); exit 1 past a limit."""
    import json
    from dataclasses import asdict

    from reports.claims.calibrate import LIMITS, calibrate, pins, violations

    if args.pins:
        print(json.dumps(pins(), indent=1, ensure_ascii=False))
        return 0
    if args.sims < 1:
        raise UserError(f"--sims {args.sims}: must be at least 1")
    rates = calibrate(args.sims)
    if args.json:
        print(json.dumps([asdict(r) for r in rates]))
    else:
        by = {(r.claim, r.scenario, r.runs): r for r in rates}
        print(f"{args.sims} simulated stores per claim, scenario and runs per cell (3 / 10):")
        print(
            f"{'claim':44} {'false R: null':>14} {'opposite':>11} {'one cell':>11} "
            f"{'power':>11} {'false N':>11}"
        )

        def pair(claim: str, scenario: str, field: str) -> str:
            got = [by.get((claim, scenario, n)) for n in (3, 10)]
            return " / ".join("–" if r is None else f"{getattr(r, field):.1%}" for r in got)

        for claim in dict.fromkeys(r.claim for r in rates):
            print(
                f"{claim:44} {pair(claim, 'null', 'reproduced'):>14} "
                f"{pair(claim, 'opposite', 'reproduced'):>11} "
                f"{pair(claim, 'one cell', 'reproduced'):>11} {pair(claim, 'paper', 'reproduced'):>11} "
                f"{pair(claim, 'paper', 'not_reproduced'):>11}"
            )
        limits = ", ".join(f"{s} {v:.0%}" for s, v in LIMITS.items())
        print(f"limits on false 'reproduced': {limits}")
    bad = violations(rates)
    for line in bad:
        log.error("%s", line)
    return 1 if bad else 0


def cmd_doctor(args) -> int:
    from datasets import resolve_data_dir

    from .doctor import doctor, doctor_gpu
    from .engine.tracking import PROJECT_ROOT

    if args.gpu:
        out_dir = Path(args.out) if args.out else PROJECT_ROOT / "reports" / "out"
        return doctor_gpu(out_dir, args.tracking_uri)
    return doctor(resolve_data_dir(args.data_dir), args.tracking_uri)


def cmd_ui(args) -> int:
    from .ui import ui

    return ui(args.tracking_uri, args.host, args.port)


def cmd_perf(args) -> int:
    from .engine.tracking import Tracker
    from .perf import PERF

    benchmark = PERF.lookup(args.name)
    if args.reps is None:
        args.reps = benchmark.default_reps
    if args.reps < 1:
        raise UserError(f"--reps must be >= 1, got {args.reps}")
    if args.steps is not None and args.steps < 3:
        raise UserError(f"--steps must be >= 3, got {args.steps}")
    tracker = Tracker(args.tracking_uri)  # before measuring: a store that cannot be used costs no run
    result = benchmark(args)
    for key, value in result.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    run_id = tracker.log_perf(args.name, result)
    log.info("perf %s logged as run %s in %s (experiment perf)", args.name, run_id, tracker.uri)
    if args.json:
        print(json.dumps(result))
    return 0


def end_on_signals() -> dict:
    """SIGTERM and SIGHUP end the command as Ctrl-C does (the run marked `interrupted`, ranks and
    workers stopped, nothing left behind), with exit code 128 + the signal: how clusters stop jobs.
    Returns the handlers it replaced (`main` puts them back)."""

    if threading.current_thread() is not threading.main_thread():
        return {}  # signal handlers can only be set from the main thread
    # multiprocessing's resource tracker (a child that unlinks the semaphores of processes that die)
    # ignores SIGINT and SIGTERM but not SIGHUP: killed by a closing terminal's SIGHUP, it left the
    # semaphores behind. Started now with SIGHUP ignored, it inherits that through exec.
    from multiprocessing import resource_tracker

    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous_hup)

    def stop(signum, _frame):
        for ignored in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(ignored, signal.SIG_IGN)  # one unwind: a second signal must not cut it short
        name = signal.Signals(signum).name
        raise Terminated(name, 128 + signum)

    return {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGHUP)}


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code."""
    tune_glibc_malloc()  # before torch starts any thread (docs/performance.md, "Memory allocator")
    # The suite prints its own progress: MLflow's per-artifact progress bars (one per staleness
    # table an async run logs) would interleave with it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    for name in ("benchmarks", "methods", "datasets", "models", "reports"):
        logging.getLogger(name).setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    previous = end_on_signals()
    verbs = {
        "list": cmd_list,
        "train": cmd_train,
        "run": cmd_run,
        "report": cmd_report,
        "perf": cmd_perf,
        "doctor": cmd_doctor,
        "calibrate-claims": cmd_calibrate_claims,
        "ui": cmd_ui,
    }
    try:
        return verbs[args.verb](args)
    except (UserError, DataMissingError, StorageError) as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        # The reader went away (`list | head -1`): nothing more to say, and nothing to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:
        if err.filename is not None or err.errno not in (errno.ENOSPC, errno.EIO, errno.EBADF):
            raise
        # stdout could not be written (`list > /dev/full`): one line on stderr.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"error: cannot write: {err.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        by = f" by {err.signal}" if isinstance(err, Terminated) else ""
        print(
            f"interrupted{by}: the current run is marked 'interrupted'; `run` resumes after finished jobs",
            file=sys.stderr,
        )
        return err.exit_code if isinstance(err, Terminated) else 130
    finally:
        for signum, handler in previous.items():  # an in-process caller (the tests) keeps its own
            signal.signal(signum, handler)
