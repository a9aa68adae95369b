"""The command line's arguments, one function per verb (the contract is in docs/design.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

STORE_HELP = "default: $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser(description: str) -> Parser:
    """The parser of `python -m benchmarks VERB ...`."""
    parser = Parser(prog="python -m benchmarks", description=description)
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)
    sub.add_parser("list", help="tables, methods, datasets, models, profiles and perf benchmarks")
    verbs = (
        add_train,
        add_run,
        add_targets,
        add_tune,
        add_report,
        add_calibrate,
        add_doctor,
        add_ui,
        add_server,
        add_sync,
        add_migrate,
    )
    for add in (*verbs, add_perf):
        add(sub)
    docs = sub.add_parser("docs", help="write the docs' generated tables (methods, tables, claims)")
    docs.add_argument("--check", action="store_true", help="write nothing; exit 1 if any is stale")
    return parser


def add_train(sub) -> None:
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
    train.add_argument("--tracking-uri", help=STORE_HELP)
    train.add_argument("--json", action="store_true", help="print the result as one JSON line last")


def add_run(sub) -> None:
    run = sub.add_parser("run", help="run every job of a table (or all, or the claims' plans), resuming")
    run.add_argument("table", help="a table or figure id, all, or claims (the runs that decide the claims)")
    run.add_argument("--profile", default="auto")
    run.add_argument(
        "--methods",
        help="comma-separated methods: the table's, or any registered method, which joins each of the "
        "table's workloads as a row of its own",
    )
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
        "--until-decided",
        action="store_true",
        help="run claims: then each claim's design, look by look, for its open cells until it decides",
    )
    run.add_argument(
        "--dry-run", action="store_true", help="run claims: print each claim's plan and estimate"
    )


def add_report(sub) -> None:
    report = sub.add_parser("report", help="write reports/out/TABLE.md and .csv from the MLflow runs")
    report.add_argument("table", help="a table or figure id, claims (the claims' verdicts), or all")
    report.add_argument("--profile", help="only this profile's runs (default: every profile with runs)")
    report.add_argument("--out", default=None, help="output folder (default: reports/out/)")
    report.add_argument("--tracking-uri")
    report.add_argument(
        "--to-store",
        action="store_true",
        help="also keep the report's files in the store: a run of experiment `reports` (any host, "
        "through a server)",
    )


def add_calibrate(sub) -> None:
    calibrate = sub.add_parser(
        "calibrate-claims", help="each claim's rule on simulated stores of known truth: its error rates"
    )
    calibrate.add_argument(
        "--sims", type=int, help="simulated stores per claim, scenario and runs (default 1000; --path: 100)"
    )
    calibrate.add_argument(
        "--path",
        action="store_true",
        help="six claims judged through the code that reads real runs, from simulated runs in memory",
    )
    calibrate.add_argument("--only", metavar="CLAIMS", help="these claims only (comma-separated ids)")
    calibrate.add_argument("--json", action="store_true", help="print every rate as JSON")
    calibrate.add_argument(
        "--pins",
        action="store_true",
        help="print each rule's verdicts on fixed evidence (tests/claim_rules.json)",
    )
    calibrate.add_argument(
        "--fit",
        metavar="URI",
        help="fit the spreads to this store's runs (each part's; --path: each workload's), then calibrate",
    )
    calibrate.add_argument("--profile", help="the profile whose runs --fit reads (default quick)")
    calibrate.add_argument(
        "--paper-store",
        action="store_true",
        help="each rule's verdict on 000's own Tables 1-4 and 6 (mean ± std of 3 runs)",
    )
    calibrate.add_argument(
        "--path-pins",
        action="store_true",
        help="print six claims' verdicts read from synthetic MLflow stores (tests/claim_paths.json)",
    )


def add_doctor(sub) -> None:
    doctor = sub.add_parser("doctor", help="check this machine: devices, data, store, a short async run")
    doctor.add_argument("--gpu", action="store_true", help="the GPU acceptance in one command (CUDA only)")
    doctor.add_argument("--data-dir")
    doctor.add_argument("--tracking-uri")
    doctor.add_argument("--out", help="doctor --gpu: where its table goes (default: reports/out/)")


def add_ui(sub) -> None:
    ui = sub.add_parser("ui", help="the MLflow UI over the store, with a link to each table's runs")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--tracking-uri")


def add_server(sub) -> None:
    server = sub.add_parser(
        "server", help="an MLflow tracking server over the store, for jobs on several hosts"
    )
    server.add_argument(
        "--host", default="127.0.0.1", help="default: loopback; beyond it, --auth or --insecure"
    )
    server.add_argument("--port", type=int, default=5000)
    server.add_argument("--store", help=STORE_HELP)
    server.add_argument(
        "--create", action="store_true", help="make the --store SQLite file if it does not exist"
    )
    server.add_argument(
        "--allowed-hosts",
        metavar="HOSTS",
        help="the Host headers the server accepts beyond localhost and private IPs (MLflow's "
        "--allowed-hosts: comma-separated names, `*` for any): jobs that reach it by a DNS name",
    )
    server.add_argument(
        "--auth",
        action="store_true",
        help="MLflow's basic-auth app: users and permissions beside the store; the admin's password "
        "from MLFLOW_AUTH_ADMIN_PASSWORD or --auth-password-file on the first start",
    )
    server.add_argument("--auth-password-file", type=Path, metavar="FILE", help="the admin's password")
    server.add_argument(
        "--insecure", action="store_true", help="serve beyond loopback without authentication (warned)"
    )
    server.add_argument("--certfile", type=Path, metavar="PEM", help="serve HTTPS with this certificate")
    server.add_argument("--keyfile", type=Path, metavar="PEM", help="its private key (mode 600)")
    server.add_argument(
        "--cleartext-passwords",
        action="store_true",
        help="--auth beyond loopback over plain HTTP: every password crosses the network unencrypted",
    )


def add_migrate(sub) -> None:
    migrate = sub.add_parser(
        "migrate-store", help="upgrade a store of an earlier schema in place, backed up first"
    )
    migrate.add_argument(
        "uri", nargs="?", help="the store (default: $MLFLOW_TRACKING_URI, else results/mlflow.db)"
    )
    migrate.add_argument(
        "--no-backup", action="store_true", help="a database or server store: you backed it up yourself"
    )


def add_targets(sub) -> None:
    targets = sub.add_parser(
        "targets", help="reference runs (bp, seeds 1000+) of a table's workloads and the targets they derive"
    )
    targets.add_argument("table", help="a table or figure id")
    targets.add_argument("--profile", default="auto")
    targets.add_argument("--runs", type=int, default=3, help="reference runs per workload (default: 3)")
    targets.add_argument("--data-dir")
    targets.add_argument("--tracking-uri", help=STORE_HELP)


def add_tune(sub) -> None:
    tune = sub.add_parser(
        "tune", help="equal tuning: each compared method's declared trials (seed 2000) and its choice"
    )
    tune.add_argument("table", help="a table that declares search spaces (layup)")
    tune.add_argument("--profile", default="auto")
    tune.add_argument("--methods", help="comma-separated: these methods' trials only (the rest later)")
    tune.add_argument("--data-dir")
    tune.add_argument("--tracking-uri", help=STORE_HELP)


def add_sync(sub) -> None:
    sync = sub.add_parser("sync", help="send spools (runs logged while their server was away) to it")
    sync.add_argument("spools", nargs="*", help="spool files (default: every spool this host left)")
    sync.add_argument("--tracking-uri", help="the store to send them to (default: each spool's own)")
    sync.add_argument(
        "--close-stale", action="store_true", help="then mark failed the runs whose processes died"
    )


def add_perf(sub) -> None:
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
