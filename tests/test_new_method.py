"""A method is one file: the registry alone wires it into the tables' cells, the processes a
profile gives it, the tox matrix and the docs (docs/design.md, "Adding a method")."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.engine.build import build_job
from benchmarks.tables import TABLES
from benchmarks.tables.common.spec import devices_for
from core.config import NoConfig, parse_settings
from core.job import DEVICE_DEFAULTS, METHOD_SETTINGS, Row, run_row
from methods import METHODS, register_method
from methods.ddp import DataParallel

from .conftest import run_cli
from .test_cli import one_error_line

ROOT = Path(__file__).parents[1]


@pytest.fixture
def newcomer():
    """A multi-process method registered as a new file would register it (removed after the test)."""

    @register_method("newcomer_sgd")
    class NewcomerSGD(DataParallel):
        """DDP under another name: a multi-process method no table or list names."""

        summary = "a test's multi-process method"
        Config = NoConfig

    yield "newcomer_sgd"
    del METHODS["newcomer_sgd"], METHOD_SETTINGS["newcomer_sgd"]


def test_a_new_method_of_processes_runs_on_several_at_quick_without_a_list(newcomer):
    """Where a method runs on several processes is the method's property (`parallel`), not a list
    of names: a new data-parallel method gets quick's 2 processes, as DDP does; the async methods
    keep their threads in one process."""
    assert devices_for(newcomer, "quick") == devices_for("ddp", "quick") == 2
    assert devices_for("async_lu", "quick") == 1 and devices_for(newcomer, "smoke") == 1
    assert {cls.parallel for cls in METHODS.values()} <= {"processes", "threads"}


def test_a_registered_method_joins_an_existing_tables_cells(newcomer):
    """`TableSpec.with_methods`: the guest gets one cell per workload of the table, as many runs as
    the table's, its own processes at the profile; where the table's rows name their processes
    (LayUp's equal-device comparison), the guest gets the same count and its row names it."""
    table3 = TABLES["table3"].with_methods([newcomer])
    guests = [j for j in table3.jobs("quick") if j.method == newcomer]
    workloads = {(c.dataset, c.model) for c in TABLES["table3"].cells("quick")}
    runs = max(c.runs for c in TABLES["table3"].cells("quick"))
    assert {(j.dataset, j.model) for j in guests} == workloads and len(guests) == len(workloads) * runs
    assert {j.devices for j in guests} == {2} and table3.guests == (newcomer,)
    assert Row(newcomer) in table3.rows and table3.rows[: len(TABLES["table3"].rows)] == TABLES["table3"].rows
    layup = TABLES["layup"].with_methods([newcomer])
    assert {j.devices for j in layup.jobs("quick") if j.method == newcomer} == {3}
    assert Row.of(newcomer, devices=3) in layup.rows
    assert TABLES["table3"].with_methods(["lapsgd"]) is TABLES["table3"]  # its own method: no guest


def test_run_with_an_unknown_method_or_a_measurement_exits_2(newcomer):
    """`run TABLE --methods X`: a name no module registered, or a measurement, ends on one line."""
    one_error_line(
        run_cli("run", "table3", "--methods", "newcomer_sdg", "--profile", "smoke"), 2, "newcomer_sgd"
    )
    one_error_line(
        run_cli("run", "table3", "--methods", "fwd_bwd_timing", "--profile", "smoke"), 2, "measurement"
    )


def test_a_guest_row_is_run_and_reported_beside_the_tables_rows(new_store, tmp_path):
    """End to end at smoke: `run layup --methods bp` trains bp in the layup table's workload, and
    `report layup` shows it as a guest row beside the table's runs, not as a missing cell."""
    proc = run_cli("run", "layup", "--methods", "bp", "--profile", "smoke", "--tracking-uri", new_store)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    proc = run_cli("report", "layup", "--profile", "smoke", "--tracking-uri", new_store, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = (out / "layup.md").read_text()
    assert "| resnet18 | bp " in text and "Guest rows" in text and "bp run 0" not in text


def tox_environments() -> dict[str, str]:
    """tox's own reading of the project (through toxfile.py): environment -> its commands."""
    tox = [sys.executable, "-m", "tox"]
    names = subprocess.run([*tox, "-l"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    envs = names.stdout.split()
    shown = subprocess.run(
        [*tox, "config", "-e", ",".join(envs), "-k", "commands"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    commands, current = {}, None
    for line in shown.stdout.splitlines():
        if line.startswith("[testenv:"):
            current = line.removeprefix("[testenv:").rstrip("]")
            commands[current] = ""
        elif current:
            commands[current] += line + "\n"
    return commands


def test_every_registered_method_is_wired():
    """From the registry: each training method has its tox environment (toxfile.py) that trains it
    through the CLI, on 2 processes where it runs on several, and its row in docs/methods.md's
    generated table."""
    if importlib.util.find_spec("tox") is None:
        pytest.skip("tox is not installed (the `dev` extra installs it)")
    commands = tox_environments()
    methods_doc = (ROOT / "docs" / "methods.md").read_text()
    for name, cls in METHODS.items():
        if cls.measures:
            continue
        assert f"--method {name}" in commands.get(name, ""), f"tox has no environment training {name}"
        assert ("--devices 2" in commands[name]) == (cls.max_devices != 1), name
        assert f"| `{name}` |" in methods_doc, (
            f"docs/methods.md has no row of {name}: python -m benchmarks docs"
        )


@dataclass(frozen=True)
class ElasticConfig:
    """A setting whose default the process count decides (EASGD's alpha = 0.9 / processes)."""

    alpha: float | None = None


@pytest.fixture
def elastic():
    """A method with a process-count default, registered as its file would (removed after)."""

    @register_method("elastic_sgd")
    class ElasticSGD(DataParallel):
        summary = "a test's method whose alpha is 0.9 / devices unless set"
        Config = ElasticConfig

        @classmethod
        def device_defaults(cls, devices: int) -> dict:
            return {"alpha": 0.9 / devices}

    yield "elastic_sgd"
    del METHODS["elastic_sgd"], METHOD_SETTINGS["elastic_sgd"], DEVICE_DEFAULTS["elastic_sgd"]


def test_a_default_of_the_process_count_is_logged_as_used_and_names_one_row(elastic):
    """The value a job's processes give a setting is the one its params log (never the None that
    declares it), its row leaves it out as the default it is, and the same value set by hand on
    the same processes is the same job and row: one configuration, one name. On other processes,
    or set to another value, it is a row of its own."""
    on_two = build_job("t", "cifar10", "resnet18", elastic, "smoke", devices=2)
    assert on_two.method_config.alpha == pytest.approx(0.45) == on_two.params()["alpha"]
    assert on_two.row == Row(elastic) and on_two.label == elastic
    by_hand = build_job("t", "cifar10", "resnet18", elastic, "smoke", devices=2, settings={"alpha": 0.45})
    assert by_hand.key == on_two.key and by_hand.row == on_two.row
    on_three = build_job("t", "cifar10", "resnet18", elastic, "smoke", devices=3)
    assert on_three.method_config.alpha == pytest.approx(0.3) and on_three.row == Row(elastic)
    other = build_job("t", "cifar10", "resnet18", elastic, "smoke", devices=2, settings={"alpha": 0.3})
    assert other.label == f"{elastic}[alpha=0.3]"
    logged = {k: str(v) for k, v in on_two.params().items()}  # as MLflow keeps them: strings
    assert run_row([Row(elastic)], elastic, logged) == Row(elastic)
    assert parse_settings(["alpha=0.2"], [ElasticConfig]) == {"alpha": 0.2}  # `--set` types it
