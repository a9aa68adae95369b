"""`migrate-store`: stores written by the commits of earlier schemas (tests/fixtures/stores) are
refused until migrated, then migrated in place with a backup, re-reported with the same per-run
values the writing commit read, and resumed (their jobs count as finished)."""

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from core.result import SCHEMA_VERSION

from .conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "stores"
REPORTS = ("table2", "lap-readings", "pd-stragglers")
# The rows as each earlier commit named them, and as they are named now (one order: the spec's).
NAMES = {
    "table2": ["async_lu", "lapsgd"] * 2,
    "lap-readings": ["lapsgd[average_switch=0]", "lapsgd[reading=authors_code,average_switch=0]"],
    "pd-stragglers": ["async_lu"] + [f"async_lu[straggler_delay_frac={f}]" for f in ("0.25", "0.5", "1")],
}
VALUES = ("best_acc_mean", "tta_best_s_mean", "epochs_best_mean", "samples_per_s_mean", "acc_drop_pts_mean")


def unpacked(schema: int, tmp_path: Path) -> str:
    """A copy of the schema's fixture store; its URI."""
    path = tmp_path / "mlflow.db"
    with gzip.open(FIXTURES / f"schema{schema}" / "mlflow.db.gz") as packed, open(path, "wb") as out:
        shutil.copyfileobj(packed, out)
    return f"sqlite:///{path}"


@pytest.mark.parametrize("schema", [1, 3])
def test_an_earlier_store_migrates_and_reports_the_values_its_commit_read(schema, tmp_path):
    uri = unpacked(schema, tmp_path)
    out = tmp_path / "out"
    refused = run_cli("report", "table2", "--profile", "smoke", "--tracking-uri", uri, "--out", str(out))
    assert refused.returncode == 1 and f"migrate-store {uri}" in refused.stderr, refused.stderr
    migrated = run_cli("migrate-store", uri)
    assert migrated.returncode == 0, migrated.stderr
    backups = list(tmp_path.glob("mlflow.db.before-migrate-*"))
    assert len(backups) == 1 and str(backups[0]) in migrated.stdout
    assert f"migrated 10 runs of store schema {schema} to schema {SCHEMA_VERSION}" in migrated.stdout
    client = MlflowClient(tracking_uri=uri)
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    assert {e.tags["schema"] for e in experiments} == {SCHEMA_VERSION}
    runs = client.search_runs([e.experiment_id for e in experiments])
    assert {r.data.tags["schema"] for r in runs} == {SCHEMA_VERSION}
    assert all(r.data.params["hardware_kind"] == "cpu" for r in runs)  # from the hardware tag (schema 1)
    for table in REPORTS:
        proc = run_cli("report", table, "--profile", "smoke", "--tracking-uri", uri, "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        before = pd.read_csv(FIXTURES / f"schema{schema}" / f"{table}.csv")
        after = pd.read_csv(out / f"{table}.csv")
        assert list(after["method"]) == NAMES[table] and list(after["model"]) == list(before["model"])
        for column in [c for c in VALUES if c in before]:
            assert list(after[column]) == pytest.approx(list(before[column]), nan_ok=True), (table, column)
    again = run_cli("migrate-store", uri)
    assert again.returncode == 0 and "nothing to migrate" in again.stdout


def test_a_migrated_store_resumes_its_jobs(tmp_path):
    """The job keys are recomputed as today's suite builds the same jobs: `run` finds them finished."""
    uri = unpacked(1, tmp_path)
    assert run_cli("migrate-store", uri).returncode == 0
    for table, methods in (
        ("table1", "async_lu,lapsgd"),
        ("lap-readings", None),
        ("pd-stragglers", "async_lu"),
    ):
        args = (
            "run",
            table,
            "--profile",
            "smoke",
            "--tracking-uri",
            uri,
            *(("--methods", methods) if methods else ()),
        )
        proc = run_cli(*args)
        assert (
            proc.returncode == 0 and " 0 run, " in f" {proc.stdout}" and "already finished" in proc.stdout
        ), (
            table,
            proc.stdout,
        )


def test_a_server_store_is_not_migrated_without_a_backup_said_done(tmp_path):
    uri = unpacked(1, tmp_path)
    proc = run_cli("migrate-store", uri.replace("sqlite:///", "sqlite:////nonexistent/"))
    assert proc.returncode == 1 and "no MLflow store at" in proc.stderr
    from benchmarks import migrate
    from benchmarks.engine.store import Store

    store = Store(uri, create=False, check_schema=False)
    store.sqlite_path = None  # as a database or server store has none
    with pytest.raises(Exception, match="--no-backup"):
        migrate.backup(store, no_backup=False)
    assert migrate.backup(store, no_backup=True) is None


def test_a_run_whose_params_build_no_job_today_keeps_its_key_and_the_rest_migrate(tmp_path):
    """A param today's config cannot read (a type changed since) costs that run its resume, not the
    store its migration: the run keeps its key, is tagged and named in one line."""
    uri = unpacked(1, tmp_path)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("lap-readings")
    odd = client.create_run(experiment.experiment_id, run_name="odd", tags=dict(
        table="lap-readings", dataset="cifar10", model="resnet18", method="lapsgd", profile="smoke",
        seed="0", run_index="0", job_key="0123456789abcdef", status="finished"))  # fmt: skip
    client.log_param(odd.info.run_id, "workers_per_device", "two")
    proc = run_cli("migrate-store", uri)
    assert proc.returncode == 0, proc.stderr
    assert "migrated 11 runs" in proc.stdout and "1 runs kept their job key, e.g. odd: " in proc.stdout
    tags = client.get_run(odd.info.run_id).data.tags
    assert tags["job_key"] == "0123456789abcdef" and tags["schema"] == SCHEMA_VERSION
    assert tags["migrated_key"].startswith("kept, its params build no job today (ValueError")
