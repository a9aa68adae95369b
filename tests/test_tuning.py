"""Equal tuning (benchmarks/tables/common/tuning.py, `python -m benchmarks tune`): every compared
method the same number of declared trials, trials run as rows of their own experiment, and only a
frozen choice enters a table's rows."""

import math
from dataclasses import replace

import pytest

import benchmarks.tables.layup as layup
from benchmarks.tables import TABLES
from benchmarks.tables.common.tuning import TRIALS, TUNING_SEED, SearchSpace, Tuned, Tuning, equal_trials
from benchmarks.tuning import chosen, trials_of
from core.job import METHOD_SETTINGS, Row

from .conftest import empty_store, run_cli

SPEC = TABLES["layup"]


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_every_compared_method_gets_the_same_declared_trials_on_every_workload(profile):
    for model in dict.fromkeys(c.model for c in SPEC.cells(profile)):
        spaces = SPEC.tuning.spaces(profile, model)
        assert set(spaces) == set(SPEC.methods), model
        assert {len(space.trials) for space in spaces.values()} == {TRIALS}
        for space in spaces.values():
            assert len(set(space.trials)) == TRIALS and space.why  # four distinct trials, and why
    with pytest.raises(ValueError, match="AlgoPerf"):
        equal_trials({**spaces, "ddp": SearchSpace.grid("ddp", "why", lr=(0.1, 0.2, 0.3))})


def test_the_trials_are_each_methods_row_without_delay_with_each_trials_settings():
    trials = trials_of(SPEC, "quick")
    assert len(trials) == 2 * len(SPEC.methods) * TRIALS  # two workloads
    assert len({t.job.key for t in trials}) == len(trials)
    for trial in trials:
        settings = dict(trial.job.row.settings)
        assert trial.job.table == "tuning-layup" and trial.job.seed == TUNING_SEED
        assert settings["devices"] == 3 and "straggler_delay_frac" not in settings
        defaults = METHOD_SETTINGS[trial.method]  # a row leaves out a method setting at its default
        assert all(settings.get(k, defaults.get(k)) == v for k, v in trial.settings), trial
    diloco = [dict(t.settings) for t in trials if t.method == "diloco" and t.model == "resnet18"]
    assert diloco[0] == {"outer_lr": 0.7, "outer_momentum": 0.9}  # the paper's outer step is a trial
    assert {"outer_lr": 1.0, "outer_momentum": 0.0} in diloco  # and plain averaging
    assert len(trials_of(SPEC, "quick", ["diloco"])) == 2 * TRIALS


def test_only_a_frozen_choice_enters_the_rows_of_its_method_and_workload(monkeypatch):
    monkeypatch.setattr(layup, "TUNING", Tuning(layup.spaces))  # nothing frozen
    plain = {(c.model, c.row) for c in SPEC.cells("quick")}
    assert all(r == Row.of(r.method, **dict(r.settings)) and "lr" not in dict(r.settings) for _, r in plain)
    choice = Tuned((("outer_lr", 1.0), ("outer_momentum", 0.0)), "a test's choice")
    monkeypatch.setattr(layup, "TUNING", Tuning(layup.spaces, {"quick": {"resnet18": {"diloco": choice}}}))
    tuned = {(c.model, c.row) for c in SPEC.cells("quick")}
    changed = tuned - plain
    assert changed and all(m == "resnet18" and r.method == "diloco" for m, r in changed)
    assert all(dict(r.settings)["outer_lr"] == 1.0 for _, r in changed)
    assert {(m, r) for m, r in plain if not (m == "resnet18" and r.method == "diloco")} <= tuned
    assert Row.of("diloco", devices=3, outer_lr=1.0, outer_momentum=0.0) in {r for _, r in changed}


def test_the_quick_choices_are_frozen_for_every_compared_method_with_their_provenance():
    """The sweep of 2026-11-29 (docs/methods.md, "Equal tuning"): a choice for every method on both
    workloads at quick, each one of its space's trials, none at smoke or paper."""
    chosen = layup.TUNING.chosen
    assert set(chosen) == {"quick"} and set(chosen["quick"]) == {"resnet18", "gpt"}
    for model, methods in chosen["quick"].items():
        spaces = layup.TUNING.spaces("quick", model)
        assert set(methods) == set(spaces), model
        for method, tuned in methods.items():
            assert tuned.settings in spaces[method].trials and "tune layup --profile quick" in tuned.source
            rows = [c.row for c in SPEC.cells("quick") if c.model == model and c.row.method == method]
            on_three = [r for r in rows if dict(r.settings)["devices"] == 3]
            assert on_three, (model, method)
            defaults = METHOD_SETTINGS[method]
            for row in on_three:  # every row of the method on 3 processes carries the choice
                settings = dict(row.settings)
                assert all(settings.get(k, defaults.get(k)) == v for k, v in tuned.settings), (model, row)


def test_the_choice_is_the_shortest_time_to_target_then_the_best_value():
    assert chosen([(90.0, 0.6), (80.0, 0.5), (math.inf, 0.9)], "max") == 1
    assert chosen([(math.inf, 0.6), (math.inf, 0.7)], "max") == 1  # none reached: the best value
    assert chosen([(math.inf, 4.1), (math.inf, 3.9)], "min") == 1  # bits per byte: lower
    assert chosen([(50.0, 0.5), (50.0, 0.5)], "max") == 0  # a tie: the first declared


def test_a_table_without_spaces_or_a_method_without_one_is_one_line(tmp_path):
    uri = empty_store(tmp_path / "mlflow.db")
    for args, needle in (
        (("table1",), "table1 tunes no method"),
        (("layup", "--methods", "bp"), "--methods bp: layup tunes ddp, layup, plsgd, lapsgd, diloco"),
    ):
        proc = run_cli("tune", *args, "--profile", "smoke", "--tracking-uri", uri)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.ci
@pytest.mark.slow  # 4 trials of 3 processes at smoke: ~40 s
def test_tune_runs_a_methods_trials_once_prints_its_choice_and_the_report_counts_them(tmp_path):
    from reports.kinds.layup import tuning_notes

    uri = empty_store(tmp_path / "mlflow.db")
    args = ("tune", "layup", "--profile", "smoke", "--methods", "diloco", "--tracking-uri", uri)
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "4 run, 0 already finished" in first.stdout
    assert first.stdout.count("  trial ") == TRIALS and "chosen: trial " in first.stdout
    assert "Tuned((('outer_lr', " in first.stdout and "tune layup --profile smoke: trial" in first.stdout
    again = run_cli(*args)
    assert again.returncode == 0 and " run, " not in again.stdout  # every trial already finished
    notes = tuning_notes(replace(SPEC), "smoke", uri, ["resnet18"])
    assert "4 of 20 trials finished in the experiment tuning-layup" in notes[0]
    assert "No choice is frozen at smoke" in notes[0]


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_every_job_reads_back_as_its_own_row_at_its_profile(profile):
    """A run's row is read among its own profile's and model's rows first: a smoke run at smoke's lr
    0.05 is smoke's `layup[devices=3]`, never quick's tuned `layup[devices=3,lr=0.05]`."""
    for job in SPEC.jobs(profile):
        logged = {k: str(v) for k, v in job.params().items()}  # as MLflow keeps them
        assert SPEC.run_row(job.method, logged, profile, job.model) == job.row, (profile, job.model, job.row)
    smoke = next(j for j in SPEC.jobs("smoke") if j.method == "layup" and j.row == Row.of("layup", devices=3))
    logged = {k: str(v) for k, v in smoke.params().items()}
    assert float(logged["lr"]) == 0.05 and Row.of("layup", devices=3, lr=0.05, peers=1) in SPEC.rows
    assert SPEC.run_row("layup", logged, "smoke", "resnet18") == Row.of("layup", devices=3)
