"""The command line: list, train, run, report, perf (the contract is in docs/design.md)."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from core.errors import DataMissingError, StorageError, Terminated, UserError
from core.runtime.allocator import tune_glibc_malloc
from core.runtime.denormals import flush_denormals

from .parser import build_parser

log = logging.getLogger("benchmarks")
MAX_SEED = 2**63 - 1  # torch.manual_seed takes a 64-bit seed
# Verbs that never compute with torch: they skip importing it (~2 s on 2 cores), which the store's
# verbs (`server`, `sync`) would pay at each start for nothing.
NO_TORCH = {"server", "sync", "migrate-store", "ui"}


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
    from .run_verbs import close_stale

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
        result = run_job(job, resolve_data_dir(args.data_dir), tracker)
        code = 0 if result.status == "finished" else 3
    except JobFailed as err:
        log.error("job failed: %s", err)
        result, code = err.result, 1
    except KeyboardInterrupt as err:  # the run is closed as interrupted: its result, then the exit
        if args.json and rank == 0 and getattr(err, "result", None) is not None:
            print(json.dumps(err.result.to_json()))
        raise
    if code != 1 and rank == 0:
        best = "none" if result.best_metric is None else f"{result.best_metric:.4f}"
        log.info(
            "%s: %s (%s), best %s %s after %s epochs, %s s of training; run %s in %s",
            job.name, result.status, result.stop_reason, result.metric, best, result.epochs,
            result.train_time_s, result.run_id, tracker.uri,
        )  # fmt: skip
    if args.json and rank == 0:
        print(json.dumps(result.to_json()))
    return code


def cmd_calibrate_claims(args) -> int:
    """`calibrate-claims`: per claim, false "reproduced" at the band's edge, the opposite and with the
    effect in one cell, false "not reproduced" and power at the paper's effect
    (reports/claims/calibrate.py), with the parts' assumed spreads or those fitted to a store
    (`--fit URI`); exit 1 past a limit."""
    import json
    from dataclasses import asdict

    from reports.claims import CLAIMS
    from reports.claims.calibrate import calibrate, pins, violations

    from .engine.planner import select_claims

    if args.pins:
        print(json.dumps(pins(), indent=1, ensure_ascii=False))
        return 0
    if args.paper_store:
        from reports.claims.paper_store import paper_verdicts

        for claim, verdicts in paper_verdicts().items():
            print(f"{claim} (rule {verdicts.pop('version')})")
            for pairing, verdict in verdicts.items():
                print(f"  runs paired in {pairing}: {verdict}")
        return 0
    if args.path_pins:
        from .calibration.stores import path_pins

        print(json.dumps(path_pins(), indent=1, ensure_ascii=False))
        return 0
    sims = args.sims or (100 if args.path else 1000)
    if sims < 1:
        raise UserError(f"--sims {sims}: must be at least 1")
    only = [c.id for c in select_claims(CLAIMS, args.only)] if args.only else None
    if args.path:
        rates = path_rates(sims, only, args.fit, args.profile)
    else:
        claims = fitted_claims(args.fit, args.profile) if args.fit else list(CLAIMS.values())
        rates = calibrate(sims, claims=[c for c in claims if not only or c.id in only], workers=0)
    if args.json:
        print(json.dumps([asdict(r) for r in rates]))
    else:
        print_rates(rates, sims)
    # --path estimates each rate from far fewer stores: it may pass a limit by chance alone.
    bad = violations(rates, by_chance=args.path)
    if args.path:
        from .calibration.path import power_marks

        marked = sorted({r.claim for r in rates if CLAIMS[r.claim].undecidable})
        print(f"marked not decidable at a profile (Claim.undecidable): {', '.join(marked) or 'none'}")
        bad += power_marks(rates)
    for line in bad:
        log.error("%s", line)
    return 1 if bad else 0


def path_rates(sims: int, only: list[str] | None, uri: str | None, profile: str | None) -> list:
    """`calibrate-claims --path`: the path cases' rates, with the workloads' spreads fitted to the
    store at `uri` where it has replicated runs (`--fit`), each printed with its source."""
    from .calibration.path import CASES, DEFAULT, calibrate_path, fit_workloads
    from .engine.tracking import Tracker

    if only and (outside := [c for c in only if c not in CASES]):
        raise UserError(
            f"--path --only {', '.join(outside)}: not simulated; --path simulates {', '.join(CASES)}"
        )
    workloads = fit_workloads(Tracker(uri, create=False).uri, profile or "quick") if uri else DEFAULT
    print("runs' spreads of the simulated workloads:\n" + workloads.text())
    return calibrate_path(sims, only=tuple(only or ()), workloads=workloads)


def fitted_claims(uri: str, profile: str | None) -> list:
    """`calibrate-claims --fit URI`: every claim with the spreads of its parts fitted to the store's
    runs of `profile` (quick by default), each printed beside the spread it assumed."""
    from benchmarks.tables import TABLES
    from reports.claims import CLAIMS, Evidence
    from reports.claims.calibrate import fit_spreads, with_spreads

    from .engine.tracking import Tracker

    uri = Tracker(uri, create=False).uri  # one line where it names no usable store
    spreads = fit_spreads(Evidence(uri, dict(TABLES), profile or "quick"))
    print(f"spreads fitted to {uri} ({profile or 'quick'}); the other parts keep their assumed spread:")
    for s in spreads:
        counts = f"{s.values} margins in {s.cells} cells"
        print(f"  {s.claim} / {s.part}: {s.fitted:.3g} (assumed {s.assumed:.3g}; {counts})")
    return with_spreads(list(CLAIMS.values()), spreads)


def print_rates(rates: list, sims: int) -> None:
    """The rates' table: false "reproduced" per false scenario, power (at the paper's effect, and
    with a run diverged where simulated) and false "not reproduced", each at 3 / 5 / 10 runs."""
    from reports.claims.calibrate import LIMITS, RUNS

    by = {(r.claim, r.scenario, r.runs): r for r in rates}
    counts = " / ".join(str(n) for n in RUNS)
    print(f"{sims} simulated stores per claim, scenario and runs per cell ({counts}):")
    present = {r.scenario for r in rates}
    false = [s for s in ("edge", "opposite", "one cell", "edge censored") if s in present]
    power = [s for s in ("paper", "diverged") if s in present]
    changes = any(r.changed for r in rates) or "diverged" in present  # --path: judged look by look
    columns = [
        *(("false R: " if i == 0 else "") + s for i, s in enumerate(false)),
        *("power" if s == "paper" else f"power, {s}" for s in power),
        "false N",
        *(["changed a decided"] if changes else []),
    ]
    print(f"{'claim':42} " + " ".join(f"{c:>20}" for c in columns))

    def rates_of(claim: str, scenario: str, field: str) -> str:
        got = [by.get((claim, scenario, n)) for n in RUNS]
        return " / ".join("–" if r is None else f"{getattr(r, field):.1%}" for r in got)

    for claim in dict.fromkeys(r.claim for r in rates):
        shown = [rates_of(claim, s, "reproduced") for s in (*false, *power)]
        shown.append(rates_of(claim, "paper", "not_reproduced"))
        if changes:  # the worst scenario's share of stores whose decided verdict changed
            worst = {
                n: max((r.changed for r in rates if r.claim == claim and r.runs == n), default=0)
                for n in RUNS
            }
            shown.append(" / ".join(f"{worst[n]:.1%}" for n in RUNS))
        print(f"{claim:42} " + " ".join(f"{v:>20}" for v in shown))
    print(f"limits on false 'reproduced': {', '.join(f'{s} {v:.0%}' for s, v in LIMITS.items())}")


def cmd_doctor(args) -> int:
    from datasets import resolve_data_dir

    from .doctor import doctor, doctor_gpu
    from .engine.store import PROJECT_ROOT

    if args.gpu:
        out_dir = Path(args.out) if args.out else PROJECT_ROOT / "reports" / "out"
        return doctor_gpu(out_dir, args.tracking_uri)
    return doctor(resolve_data_dir(args.data_dir), args.tracking_uri)


def cmd_ui(args) -> int:
    from .ui import ui

    return ui(args.tracking_uri, args.host, args.port)


def cmd_server(args) -> int:
    from .server import Serving, serve

    return serve(
        Serving(
            args.store, args.host, args.port, args.create, args.allowed_hosts, auth=args.auth,
            insecure=args.insecure, password_file=args.auth_password_file, certfile=args.certfile,
            keyfile=args.keyfile, cleartext_passwords=args.cleartext_passwords,
        )
    )  # fmt: skip


def cmd_perf(args) -> int:
    from .engine.tracking import Tracker
    from .perf import PERF, PerfOptions

    benchmark = PERF.lookup(args.name)
    reps = benchmark.default_reps if args.reps is None else args.reps
    if reps < 1:
        raise UserError(f"--reps must be >= 1, got {reps}")
    if args.steps is not None and args.steps < 3:
        raise UserError(f"--steps must be >= 3, got {args.steps}")
    tracker = Tracker(args.tracking_uri)  # before measuring: a store that cannot be used costs no run
    result = benchmark(PerfOptions(reps, args.steps, args.data_dir, args.model))
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


def cmd_migrate_store(args) -> int:
    from .migrate import migrate

    return migrate(args.uri, args.no_backup)


def cmd_docs(args) -> int:
    from .docs import cmd_docs

    return cmd_docs(args)


def cmd_run(args) -> int:
    from .run_verbs import cmd_run

    return cmd_run(args)


def cmd_targets(args) -> int:
    from .reference import cmd_targets

    return cmd_targets(args)


def cmd_tune(args) -> int:
    from .tuning import cmd_tune

    return cmd_tune(args)


def cmd_report(args) -> int:
    from .run_verbs import cmd_report

    return cmd_report(args)


def cmd_sync(args) -> int:
    from .run_verbs import sync_spools

    return sync_spools(args.spools, args.tracking_uri, args.close_stale)


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code."""
    tune_glibc_malloc()  # before torch starts any thread (docs/performance.md, "Memory allocator")
    # The suite prints its own progress: MLflow's per-artifact progress bars (one per staleness
    # table an async run logs) would interleave with it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr)
    for name in ("benchmarks", "methods", "datasets", "models", "reports"):
        logging.getLogger(name).setLevel(logging.INFO)
    args = build_parser(__doc__).parse_args(argv)
    if args.verb not in NO_TORCH:
        flush_denormals()  # before torch starts a thread (core/runtime/denormals.py)
    previous = end_on_signals()
    verbs = {
        "list": cmd_list,
        "docs": cmd_docs,
        "train": cmd_train,
        "run": cmd_run,
        "targets": cmd_targets,
        "tune": cmd_tune,
        "report": cmd_report,
        "perf": cmd_perf,
        "doctor": cmd_doctor,
        "calibrate-claims": cmd_calibrate_claims,
        "ui": cmd_ui,
        "server": cmd_server,
        "sync": cmd_sync,
        "migrate-store": cmd_migrate_store,
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
