"""Targets set apart (benchmarks/tables/common/targets.py): one frozen target per workload, the rule
that derives one from reference runs, the `targets` verb that makes them, and claims whose times
never depend on the runs they score."""

import math
from dataclasses import replace

import pytest

from benchmarks.tables import TABLES
from benchmarks.tables.common.spec import PROFILES
from benchmarks.tables.common.targets import REFERENCE_EXPERIMENT, REFERENCE_SEED, Target, derived
from core.metric import ACCURACY, BITS_PER_BYTE
from reports.claims import CLAIMS, NOT_MEASURABLE, Evidence

from .conftest import TWO_CORES, add_run, empty_store, run_cli
from .test_claims import new_store


def test_one_target_per_workload_whichever_tables_run_it():
    """Tables that train the same dataset and model at a profile for the same epochs and budget
    share one frozen target, with its provenance."""
    seen: dict[tuple, tuple[str, Target]] = {}
    for spec in TABLES.values():
        for profile in PROFILES:
            for model, target in spec.targets.get(profile, {}).items():
                assert isinstance(target, Target) and target.source, (spec.id, profile, model)
                workload = spec.workload(profile, model)
                assert workload is not None, (
                    f"{spec.id}'s {model} at {profile}: its cells are not one workload"
                )
                other, first = seen.setdefault(workload, (spec.id, target))
                assert first == target, f"{workload}: {other} freezes {first.value}, {spec.id} {target.value}"


def test_every_time_claims_table_has_its_papers_targets():
    """Each table a time-to-target claim reads has a frozen target for each of its models at the
    paper profile (the other profiles may wait for reference runs)."""
    for table_id in ("table1", "table3", "table5", "table6", "table7", "table8", "pd-headline", "layup"):
        spec = TABLES[table_id]
        models = {c.model for c in spec.cells("paper")}
        assert models <= set(spec.target_values("paper")), table_id


def test_the_rule_asks_nine_tenths_of_the_references_median_best():
    assert derived([0.781, 0.790, 0.770], ACCURACY) == pytest.approx(0.70)  # 0.9 x 0.781 = 0.703
    assert derived([0.50, 0.44, math.nan], ACCURACY) == pytest.approx(0.40)  # 0.9 x 0.47, NaN left out
    assert derived([0.5], ACCURACY) == pytest.approx(0.45)  # exactly on the grid stays
    assert derived([3.80, 3.90, 3.85], BITS_PER_BYTE) == pytest.approx(4.3)  # 3.85 / 0.9 = 4.28, up
    assert math.isnan(derived([], ACCURACY))


def test_reference_runs_are_bp_on_seeds_of_their_own_with_the_tables_budget():
    from benchmarks.reference import reference_jobs

    jobs = reference_jobs(TABLES["pd-pipeline"], "quick", 3)["resnet18"]
    assert [j.seed for j in jobs] == [REFERENCE_SEED + i for i in range(3)]
    assert {j.method for j in jobs} == {"bp"} and {j.table for j in jobs} == {REFERENCE_EXPERIMENT}
    assert {j.config.time_budget_s for j in jobs} == {0.0}  # pd-pipeline trains without a budget
    (layup,) = reference_jobs(TABLES["layup"], "quick", 1)["resnet18"]
    assert layup.config.max_epochs == 1  # the table's one epoch at quick
    assert reference_jobs(TABLES["table9"], "smoke", 1) == {}  # timings train nothing
    refused = run_cli("targets", "table10", "--profile", "smoke")
    assert refused.returncode == 2
    assert (
        refused.stderr.strip()
        == "error: table10 trains no model at smoke: it has no workload to derive a target for"
    )


def test_times_to_target_do_not_move_with_the_runs_scored(tmp_path):
    """Under 000's rule (the lowest best of the runs scored) a LAP-SGD run that stops at 0.80 would
    lower Table 1's target and shorten every other run's time; the frozen target (87 % at paper)
    leaves them as they were."""
    uri, tracker = new_store(tmp_path)
    for i in range(3):
        add_run(
            tracker, "table1", "resnet18", "async_lu", i, [0.5, 0.8, 0.88], [10, 20, 30], hardware=TWO_CORES
        )
        add_run(
            tracker, "table1", "resnet18", "async_bu", i, [0.6, 0.88, 0.9], [10, 20, 30], hardware=TWO_CORES
        )
    before = Evidence(uri, dict(TABLES), "paper").per_run("table1")
    for i in range(3):
        add_run(tracker, "table1", "resnet18", "lapsgd", i, [0.5, 0.8, 0.8], [10, 20, 30], hardware=TWO_CORES)
    after = Evidence(uri, dict(TABLES), "paper").per_run("table1")
    lu = after[after["method"] == "async_lu"]["tta_target_s"].tolist()
    assert lu == before[before["method"] == "async_lu"]["tta_target_s"].tolist() == [30.0] * 3
    assert after[after["method"] == "lapsgd"]["tta_target_s_censored"].all()  # never reached 0.87


def test_a_claim_without_a_frozen_target_says_so(tmp_path):
    uri, tracker = new_store(tmp_path)
    for i in range(3):
        for method in ("async_lu", "async_bu", "lapsgd", "lppsgd"):
            add_run(tracker, "table1", "resnet18", method, i, [0.5, 0.9], [10, 20], hardware=TWO_CORES)
    specs = {**TABLES, "table1": replace(TABLES["table1"], targets={})}
    verdict = CLAIMS["bu-fastest-to-target"].judge(Evidence(uri, specs, "paper"))
    assert verdict.verdict == NOT_MEASURABLE
    assert "no frozen target for table1's resnet18 at paper" in verdict.reason
    assert "targets table1 --profile paper" in verdict.reason


@pytest.mark.ci
@pytest.mark.slow  # trains a smoke LSTM: ~10 s, in CI's part for the default run's margin
def test_targets_verb_runs_reference_runs_once_and_prints_the_target_to_freeze(tmp_path):
    uri = empty_store(tmp_path / "mlflow.db")
    args = ("targets", "table6", "--profile", "smoke", "--runs", "1", "--tracking-uri", uri)
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "table6 lstm at smoke (imdb" in first.stdout and "1 of 1 reference runs of bp" in first.stdout
    assert "frozen: 0.5 (set by hand" in first.stdout and "to freeze: Target(" in first.stdout
    assert "seeds 1000-1000, experiment reference-targets" in first.stdout
    again = run_cli(*args)  # resumed: nothing trains again, the same target
    assert again.returncode == 0 and "reference runs (smoke)" not in again.stderr
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    bad = run_cli("targets", "table6", "--profile", "smoke", "--runs", "0", "--tracking-uri", uri)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --runs must be >= 1, got 0"
