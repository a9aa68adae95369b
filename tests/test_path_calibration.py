"""`calibrate-claims --path`: stores held in memory read back as the same store in SQLite, and
claims judged from simulated runs through the code that reads real ones, where they must fail too."""

import math

import pandas as pd
import pytest

from benchmarks.calibration.cases import CASES, layup_drift
from benchmarks.calibration.path import (
    DEFAULT,
    fit_workloads,
    planned,
    simulate,
    simulated_store,
    truths_of,
    verdicts,
)
from benchmarks.calibration.stores import (
    PATH_CLAIMS,
    STRAGGLERS,
    TABLE1_TROUBLED,
    TABLE6_FAILED,
    RowTruth,
    write_table,
)
from benchmarks.engine.tracking import Tracker
from benchmarks.tables import TABLES
from reports.claims import CLAIMS, Evidence
from reports.memory_store import MemoryStore

from .conftest import run_cli

TROUBLED = (("table1", TABLE1_TROUBLED), ("table6", TABLE6_FAILED), ("pd-stragglers", STRAGGLERS))
KEYS = ["model", "label", "run_index"]


def test_a_store_in_memory_reads_back_as_the_same_store_in_sqlite(tmp_path):
    """Diverged, failed, short runs and a run failed before measuring, written to SQLite by the
    runner's Tracker and to a MemoryStore: every claim of the path reads the same cells and
    verdicts from both, and each table's per-run values are equal column by column."""
    sqlite = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    memory = MemoryStore()
    for table, truths in TROUBLED:
        write_table(sqlite, table, "quick", truths, runs=3)
        write_table(memory, table, "quick", truths, runs=3)
    on_disk, in_memory = (Evidence(s.uri, dict(TABLES), "quick") for s in (sqlite, memory))
    for claim in PATH_CLAIMS:
        a, b = (CLAIMS[claim].judge(e) for e in (on_disk, in_memory))
        assert a.verdict == b.verdict, claim
        assert [(c.name, c.estimate, c.count, c.failed) for c in a.cells] == [
            (c.name, c.estimate, c.count, c.failed) for c in b.cells
        ], claim
    for table, _ in TROUBLED:
        a, b = (
            e.per_run(table).drop(columns=["_curve", "run_id", "start_time"]) for e in (on_disk, in_memory)
        )
        a, b = (f.sort_values(KEYS).reset_index(drop=True) for f in (a, b))
        assert len(a) > 0 and list(a.columns) == list(b.columns)
        pd.testing.assert_frame_equal(a, b)


def test_measurements_and_perf_results_read_back_the_same_from_memory_and_sqlite(tmp_path):
    """Table 9's timing runs (one failed before recording) and `perf async` results, written to
    SQLite by the runner's Tracker and to a MemoryStore: beta-about-2 and the speed-up bound read
    the same cells from both, the failed run unmeasured; a view of the first 3 runs a cell keeps the
    first 3 perf results."""
    sqlite, memory = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}"), MemoryStore()
    claims = [CLAIMS[c] for c in ("beta-about-2", "speedup-approaches-1-plus-beta")]
    for claim in claims:
        truths = truths_of(claim, "diverged", 0)  # beta-about-2: a ResNet-18 timing run fails
        for store in (sqlite, memory):
            simulated_store(claim, truths, seed=3, store=store)
    for claim in claims:
        a, b = (claim.judge(Evidence(s.uri, dict(TABLES), "quick")) for s in (sqlite, memory))
        cells = [[(c.name, str(c.values), c.count) for c in v.cells] for v in (a, b)]  # NaN == NaN
        assert cells[0] and cells[0] == cells[1], claim.id
    beta = CLAIMS["beta-about-2"].judge(Evidence(memory.uri, dict(TABLES), "quick"))
    assert [c.unmeasured for c in beta.cells] == [1, 0]
    perf = memory.runs("perf")  # newest first
    assert len(perf) == 10
    view = memory.first_runs(3)
    assert [r.run_id for r in view.runs("perf")] == [r.run_id for r in perf[-3:]]


def test_a_view_of_a_stores_first_runs_holds_those_runs_alone():
    """`first_runs(3)` of a store of 5 runs a cell: the runs of index 0-2, curves and all."""
    store = MemoryStore()
    write_table(store, "table6", "quick", TABLE6_FAILED, runs=5)
    first = store.first_runs(3)  # its URI names it while it lives
    view = Evidence(first.uri, dict(TABLES), "quick").per_run("table6")
    full = Evidence(store.uri, dict(TABLES), "quick").per_run("table6")
    assert sorted(view["run_index"]) == [0, 0, 1, 1, 2, 2]
    assert len(full) == 10
    same = view.merge(full, on=["label", "run_index"], suffixes=("", "_full"))
    assert len(same) == 6 and (same["epochs"] == same["epochs_full"]).all()
    assert (same["final_test_acc"].fillna(-1) == same["final_test_acc_full"].fillna(-1)).all()


def test_per_run_values_are_the_same_where_pandas_lacks_the_text_option(monkeypatch):
    """pandas 4 drops `future.infer_string`, which builds the per-run frame's text as Python
    strings: without it the frame keeps Arrow-backed text, with the same values and no warning."""
    store = MemoryStore()
    write_table(store, "table6", "quick", TABLE6_FAILED, runs=3)
    with_option = Evidence(store.uri, dict(TABLES), "quick").per_run("table6")
    assert with_option["label"].dtype == object

    def no_such_option(name):
        raise pd.errors.OptionError(f"No such keys(s): {name!r}")

    monkeypatch.setattr(pd, "get_option", no_such_option)
    without = Evidence(store.uri, dict(TABLES), "quick").per_run("table6")
    assert without["label"].dtype != object
    frames = (f.drop(columns="_curve") for f in (with_option, without))
    pd.testing.assert_frame_equal(*frames, check_dtype=False, check_column_type=False)


# Claims whose paths differ: times censored, paired values, a screening, a staleness table, perf
# results, measurements.
LOOK_CLAIMS = (
    "bu-fastest-to-target",
    "lu-more-accurate-than-bu",
    "gpt-remedy-closes-gap",
    "gpt-lu-staleness-below-bu-grows-with-depth",
    "speedup-approaches-1-plus-beta",
    "beta-about-2",
)


@pytest.mark.parametrize("claim_id", LOOK_CLAIMS)
def test_a_look_on_a_grown_store_reads_what_a_store_of_that_looks_runs_alone_reads(claim_id):
    """`Evidence.at_look(n)` of a store of 10 runs a cell (how calibrate-claims --path judges each
    look) reads the per-run values, cells and verdict that a store of only those n runs reads:
    later runs move nothing a look read, targets included. With a diverged run where one can be."""
    claim, case = CLAIMS[claim_id], CASES[claim_id]
    store = simulated_store(claim, truths_of(claim, "diverged" if case.diverges else "paper", 0), seed=7)
    grown = Evidence(store.uri, dict(TABLES), case.profile)
    tables = {job.table for job in planned(claim_id).jobs}
    for look in (1, 2, 3):
        runs = claim.plan.runs_at(look)
        view = store.first_runs(runs)  # its URI names it while it lives
        at_look, then = grown.at_look(runs), Evidence(view.uri, dict(TABLES), case.profile)
        a, b = claim.judge(at_look), claim.judge(then)
        assert (a.verdict, a.reason) == (b.verdict, b.reason), look
        assert [repr(c) for c in a.cells] == [repr(c) for c in b.cells], look
        assert max(c.count for c in a.cells) <= runs
        for table in tables:
            frames = (e.planned(claim).per_run(table) for e in (at_look, then))
            pd.testing.assert_frame_equal(*(f.drop(columns="_curve", errors="ignore") for f in frames))


@pytest.mark.ci
@pytest.mark.slow  # 12-20 simulated stores: out of the default run
def test_imdb_twice_as_fast_reads_reproduced_at_the_papers_effect_and_not_at_the_opposite():
    """The IMDb claim judged from simulated runs: at the paper's 1.7x and the same accuracy most
    stores of 10 runs a cell read "reproduced"; at the opposite effect none does, most read "not
    reproduced". A path that lost runs, cells or targets would read neither."""
    claim = "imdb-lu-twice-as-fast"
    empty = MemoryStore()
    workloads = fit_workloads(empty.uri)  # no runs: the defaults
    paper = {r.runs: r for r in simulate((claim, "paper", 0, 6, 0, workloads))}
    assert paper[10].reproduced >= 0.8 and paper[10].not_reproduced == 0
    for part in (0, 1):
        opposite = {r.runs: r for r in simulate((claim, "opposite", part, 6, 0, workloads))}
        assert opposite[10].reproduced == 0 and opposite[10].not_reproduced >= 0.8, part


def test_every_claim_is_simulated_and_each_case_gives_each_part_cells():
    """Every registered claim has a path case; each, one store at the paper's effects: a cell for
    every part, each judged on the runs of one of its design's looks (the rows are those its rule
    reads), and a verdict that says something (not "not measurable": the case's hardware, data
    and profile are those the claim needs)."""
    assert set(CASES) == set(CLAIMS)
    for claim_id, case in CASES.items():
        claim = CLAIMS[claim_id]
        store = simulated_store(claim, truths_of(claim, "paper", 0), seed=2)
        verdict = claim.judge(Evidence(store.uri, dict(TABLES), case.profile))
        parts = {c.part for c in verdict.cells}
        assert parts == {p.name for p in claim.parts}, (claim_id, verdict.verdict, verdict.reason)
        assert all(c.count in (3, 5, 10) for c in verdict.cells), claim_id
        assert verdict.verdict != "not measurable here", (claim_id, verdict.reason)


@pytest.mark.ci
@pytest.mark.slow  # 10 simulated stores: out of the default run
def test_layup_drift_reads_reproduced_at_four_times_the_drift_and_not_reproduced_at_a_quarter():
    """With the measured spread (rule 2: 0.63 a pair), LAP-SGD's and DiLoCo's replicas 4x as far
    apart as LayUp's: stores of 10 runs a cell read "reproduced"; at a quarter of LayUp's drift none
    does, and most read "not reproduced". At the paper's assumed 2x they mostly stay open, which the
    claim's mark at quick says (calibrate-claims --path)."""
    claim = CLAIMS["layup-lower-drift"]

    def last_look(ratio: float, seed: int) -> str:
        store = simulated_store(claim, layup_drift((math.log(ratio),), DEFAULT), seed)
        return verdicts(claim, store)[10]

    far = [last_look(4.0, seed) for seed in range(5)]
    near = [last_look(0.25, seed) for seed in range(5)]
    assert far.count("reproduced") >= 4, far
    assert "reproduced" not in near and near.count("not reproduced") >= 4, near
    assert "quick" in claim.undecidable


def test_the_simulated_store_holds_the_jobs_run_claims_runs_for_the_claim():
    """The stragglers claim at quick: LU's four delay rows of pd-stragglers, 10 runs each, as the
    runner tags them (the table, profile and a row per label)."""
    claim = CLAIMS["004-stragglers-cost-under-2.5-points"]
    store = simulated_store(claim, truths_of(claim, "paper", 0), seed=1)
    runs = Evidence(store.uri, dict(TABLES), "quick").runs("pd-stragglers")
    assert runs.groupby("label").size().to_dict() == {label: 10 for label in STRAGGLERS}
    assert set(runs["profile"]) == {"quick"} and set(runs["status"]) == {"finished"}


@pytest.mark.parametrize("seed_share", [0.0, 0.6])
def test_spreads_and_the_seeds_share_are_fitted_to_a_stores_replicated_runs(seed_share):
    """A store of 10 runs a row drawn with a 2-point spread of best accuracy and 0.1 of log seconds
    per epoch, the rows' runs of one index sharing `seed_share` of it: the fit recovers all three
    within what 36 degrees of freedom and 12 correlations of 10 pairs allow."""
    store = MemoryStore()
    truths = {
        label: RowTruth(40.0, 0.5, 0.5, time_spread=0.1, acc_spread=0.02, seed_share=seed_share)
        for label in STRAGGLERS
    }
    write_table(store, "pd-stragglers", "quick", truths, runs=10)
    cifar = fit_workloads(store.uri).cifar
    best_spread = 0.02 * (1 - 2.718281828**-2)  # the plateau's spread, one epoch in at tau 0.5
    assert best_spread * 0.7 < cifar.acc < best_spread * 1.35
    assert 0.07 < cifar.time < 0.135
    assert abs(cifar.seed_share - seed_share) < 0.25, cifar.seed_share
    assert "40 runs in 4 rows" in cifar.source


@pytest.mark.ci
@pytest.mark.slow  # a pool of processes, ~15 s: out of the default run
def test_calibrate_claims_path_prints_each_cases_rates(tmp_path):
    """The command: one store per scenario for two claims, the spreads it used, one row per claim."""
    result = run_cli("calibrate-claims", "--path", "--sims", "1", "--only",
                     "imdb-lu-twice-as-fast,004-stragglers-cost-under-2.5-points")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "CIFAR-10: best accuracy sd 1.07 points" in result.stdout
    assert (
        "imdb-lu-twice-as-fast" in result.stdout and "004-stragglers-cost-under-2.5-points" in result.stdout
    )
    refused = run_cli("calibrate-claims", "--path", "--only", "no-such-claim")
    assert refused.returncode == 2 and "unknown claim" in refused.stderr


def test_a_verdict_that_changes_after_a_decided_look_is_counted_and_fails_the_command(monkeypatch):
    """A store read "reproduced" on its first 3 runs and "inconclusive" on its first 5: counted at 5
    runs (and at 10, where it differs again), and named by `violations`, which makes the command
    exit 1; a store that decides only at its last look changes nothing."""
    from benchmarks.calibration import path as path_calibration
    from reports.claims.calibrate import violations

    sequences = iter(
        [
            {3: "reproduced", 5: "inconclusive", 10: "not reproduced"},
            {3: "inconclusive", 5: "inconclusive", 10: "reproduced"},
        ]
    )
    monkeypatch.setattr(path_calibration, "verdicts", lambda claim, store: next(sequences))
    rates = {r.runs: r for r in simulate(("imdb-lu-twice-as-fast", "paper", 0, 2, 0, DEFAULT))}
    assert (rates[3].changed, rates[5].changed, rates[10].changed) == (0.0, 0.5, 0.5)
    assert any("changed a decided verdict at 5 runs" in line for line in violations(list(rates.values())))


def test_a_later_looks_runs_never_undo_a_decided_verdict():
    """A simulated lu-faster-than-lap-lpp store (a diverged LU run, the paper's effect) reproduced at
    its first look; at the next looks a LAP-SGD run of index 4 stopped on its time budget, whose guard
    once turned the verdict into "not comparable" (2 % of such stores in calibrate-claims --path,
    2026-11-28). The claim keeps the first look's decision, as its cells do, and says where."""
    import zlib

    from benchmarks.calibration.path import SCENARIOS, verdicts

    claim = CLAIMS["lu-faster-than-lap-lpp"]
    truths = truths_of(claim, "diverged", 0)
    base = [0, zlib.crc32(claim.id.encode()), SCENARIOS.index("diverged"), 0]
    store = simulated_store(claim, truths, seed=zlib.crc32(str([*base, 4]).encode()))
    assert set(verdicts(claim, store).values()) == {"reproduced"}
    whole = claim.judge(Evidence(store.uri, dict(TABLES), CASES[claim.id].profile))
    assert whole.verdict == "reproduced" and whole.reason.startswith("decided at look 1 (3 runs a cell): ")


# --- claims a profile cannot decide ---------------------------------------------------------------
def test_an_undecided_verdict_where_the_design_cannot_decide_reads_not_decidable_and_why():
    """At a profile the claim is marked at, "inconclusive" (and "not measurable" for want of runs)
    reads "not decidable here" with why and the rule's own reason; a decided verdict stands, as
    does "not measurable" for want of GPUs, and another profile is untouched."""
    from dataclasses import replace

    from reports.claims import INCONCLUSIVE, NOT_DECIDABLE, NOT_MEASURABLE, NOT_REPRODUCED, Verdict

    claim = replace(CLAIMS["bu-fastest-to-target"], undecidable={"quick": "a spread of 9 points"})
    open_ = Verdict(INCONCLUSIVE, "cell open", "profile quick")
    read = claim.decidable_here(open_, "quick")
    assert read.verdict == NOT_DECIDABLE
    assert read.reason == "at quick, a spread of 9 points (the rule alone: inconclusive: cell open)"
    assert claim.decidable_here(open_, "paper") == open_
    no_runs = Verdict(NOT_MEASURABLE, "no runs", "")
    assert claim.decidable_here(no_runs, "quick").verdict == NOT_DECIDABLE
    assert replace(claim, needs_gpus=2).decidable_here(no_runs, "quick") == no_runs
    decided = Verdict(NOT_REPRODUCED, "outside", "profile quick")
    assert claim.decidable_here(decided, "quick") == decided


def test_a_claim_under_80_percent_power_unmarked_or_marked_above_it_is_named():
    """`calibrate-claims --path` exits 1 where the power at the last look and the mark disagree
    beyond two standard errors: unmarked at 60 %, marked at 97 %; not at 76 % or 84 % of 100
    stores (within chance of 80 %), nor at another look or scenario."""
    from benchmarks.calibration.path import power_marks
    from reports.claims.calibrate import Rates

    def rate(claim: str, power: float, runs: int = 10, scenario: str = "paper") -> Rates:
        return Rates(claim, scenario, runs, power, 0.0, 1 - power, 100)

    marked, unmarked = "layup-faster-than-ddp", "bu-fastest-to-target"
    assert CASES[marked].profile in CLAIMS[marked].undecidable
    assert CASES[unmarked].profile not in CLAIMS[unmarked].undecidable
    lines = power_marks([rate(unmarked, 0.6), rate(marked, 0.97)])
    assert len(lines) == 2 and "60 % 'reproduced'" in lines[0] and "not marked" in lines[0]
    assert "marked not decidable at quick, yet 97 %" in lines[1]
    fine = [
        rate(unmarked, 0.76),
        rate(marked, 0.84),
        rate(unmarked, 0.1, runs=5),
        rate(unmarked, 0.1, scenario="edge"),
    ]
    assert power_marks(fine) == []
