"""`report claims`: the statistics every rule uses, and each rule on hand-made MLflow stores whose
runs are known, including evidence on which it must fail."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.engine.tracking import Tracker
from benchmarks.tables import TABLES
from reports.claims import (
    CLAIMS,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    NOT_MEASURABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    Evidence,
    evaluate,
)
from reports.claims._common import Measured
from reports.claims.stats import (
    CONTRADICTS,
    OPEN,
    SUPPORTS,
    Cell,
    Design,
    Part,
    above,
    decide,
    decide_part,
    mean_interval,
    stated,
    within,
)

from .conftest import TWO_CORES, add_run, empty_store, run_cli

PINS = Path(__file__).parent / "claim_rules.json"
ONE_LOOK = Design((3,))  # the whole error at 3 runs: the families alone, without the looks' shares
PATHS = Path(__file__).parent / "claim_paths.json"
FASTEST = CLAIMS["bu-fastest-to-target"].parts[0]


def add(tracker, table, model, method, run_index, accs, profile="paper", status="finished", **final):
    """A run as the runner records it (conftest.add_run), 10 s an epoch, on a CPU; `final`
    metrics (staleness, Table 9's timing) beside the curve."""
    times = [10.0 * (epoch + 1) for epoch in range(len(accs))]
    return add_run(tracker, table, model, method, run_index, accs, times, status, final or None,
                   profile=profile, hardware=TWO_CORES)  # fmt: skip


def verdict(uri: str, claim: str, profile: str = "paper"):
    return CLAIMS[claim].judge(Evidence(uri, dict(TABLES), profile))


def new_store(tmp_path, name="mlflow.db"):
    uri = empty_store(tmp_path / name)
    return uri, Tracker(uri)


# --- the statistics ----------------------------------------------------------------------------
def test_a_cell_supports_contradicts_or_stays_open_by_where_its_interval_lies():
    band = above(0.5, "why", "points")
    assert Cell("p", "c", (5.0, 5.5, 6.0)).judge(band)[0] == SUPPORTS
    assert Cell("p", "c", (-1.0, -0.9, -0.8)).judge(band)[0] == CONTRADICTS
    assert Cell("p", "c", (1.0, -0.5, 2.0)).judge(band)[0] == OPEN  # crosses the band's edge
    # A true null (0) sits below a smallest effect of interest: it can read contradicted.
    assert Cell("p", "c", (0.01, -0.01, 0.0, 0.02, -0.02)).judge(band)[0] == CONTRADICTS
    same = within(-1.0, 1.0, "the same", "points")
    assert Cell("p", "c", (0.1, 0.2, 0.0)).judge(same)[0] == SUPPORTS
    assert Cell("p", "c", (3.0, 3.5, 4.0)).judge(same)[0] == CONTRADICTS
    assert Cell("p", "c", (0.1, 2.0, -1.5)).judge(same)[0] == OPEN


def test_the_interval_is_scipys_one_sample_t_interval():
    from scipy import stats

    from reports.claims.stats import mean_interval

    values = [0.3, -0.1, 0.8, 0.45, 0.2]
    expected = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    mean, low, high = mean_interval(values)
    assert mean == pytest.approx(0.33) and (low, high) == pytest.approx((expected.low, expected.high))


def test_a_cell_decides_only_with_every_planned_run():
    band = above(0.0, "why")
    assert Cell("p", "c", (5.0, 5.5), planned=3).judge(band) == (OPEN, "2 of 3 planned runs")
    assert Cell("p", "c", (5.0,), planned=1).judge(band)[0] == OPEN  # smoke plans 1: never decides
    failed = Cell("p", "c", (5.0, 5.5, 6.0, math.nan), planned=4, failed=1)
    assert failed.judge(band)[0] == OPEN  # a planned run failed before measuring: cannot support
    against = Cell("p", "c", (-5.0, -5.5, -6.0, math.nan), planned=4, failed=1)
    assert against.judge(band)[0] == CONTRADICTS  # ... but can still count against


def test_a_claim_over_several_cells_needs_every_cell_and_fails_on_any():
    part = Part("gap", above(0.5, "why", "points"))
    strong = Cell("gap", "a", (5.0, 5.5, 6.0))
    weak = Cell("gap", "b", (0.0, 0.1, -0.1))
    # Pooled, these six pairs would pass a t-test (mean +2.75); per cell, the second contradicts.
    assert decide_part(part, [strong, weak], design=ONE_LOOK).verdict == NOT_REPRODUCED
    assert (
        decide_part(part, [strong, Cell("gap", "b", (0.0, 3.0, 6.0))], design=ONE_LOOK).verdict
        == INCONCLUSIVE
    )
    assert (
        decide_part(part, [strong, Cell("gap", "b", (2.0, 2.2, 2.4))], design=ONE_LOOK).verdict == REPRODUCED
    )
    up_to = Part("gap", above(1.0, "why"), every=False)  # "up to": the best cell decides
    assert decide_part(up_to, [strong, weak], design=ONE_LOOK).verdict == REPRODUCED
    assert (
        decide_part(up_to, [Cell("gap", "a", (0.1, 0.2, 0.0)), weak], design=ONE_LOOK).verdict
        == NOT_REPRODUCED
    )


def test_up_to_a_stated_size_fails_where_another_cell_lies_above_it():
    """ "Up to 1.27x" with one cell at 1.27x and another at 2x: the best cell is 2x, so the stated
    size is wrong; version 5 read "reproduced" (some cell inside the band), version 6 reads "not
    reproduced" where a cell lies wholly above the band, and "inconclusive" until every cell is
    shown below its high edge (calibrate-claims --path found 40-54 % false "reproduced" at it)."""
    up_to = Part("t", stated(1.27, "why"), every=False)
    at_size = Cell("t", "gpt", tuple(math.log(1.27) + d for d in (-0.01, 0.0, 0.01)))
    above_it = Cell("t", "resnet18", tuple(math.log(2.0) + d for d in (-0.01, 0.0, 0.01)))
    near_edge = Cell("t", "resnet18", tuple(math.log(1.55) + d for d in (-0.2, 0.0, 0.2)))
    assert decide_part(up_to, [at_size, above_it], design=ONE_LOOK).verdict == NOT_REPRODUCED
    assert decide_part(up_to, [at_size, near_edge], design=ONE_LOOK).verdict == INCONCLUSIVE
    below = Cell("t", "resnet18", tuple(math.log(1.15) + d for d in (-0.01, 0.0, 0.01)))
    assert decide_part(up_to, [at_size, below], design=ONE_LOOK).verdict == REPRODUCED


def test_a_claim_shares_its_error_rate_over_the_cells_that_could_decide_it():
    """Bonferroni over the cells where any one decides: a best cell that supports "up to" alone at
    0.025 does not among six cells, and a cell that contradicts alone at 0.025 does not among six
    cells of a claim; every cell must support at 0.025 (intersection-union): no correction."""
    close = Cell("gap", "a", (1.4, 1.5, 1.6))  # > 1.0 at 0.025 one-sided, not at 0.025 / 6
    others = [Cell("gap", f"b{k}", (0.0, 1.0, 2.0)) for k in range(5)]  # open
    up_to = Part("gap", above(1.0, "why"), every=False)
    assert decide_part(up_to, [close], design=ONE_LOOK).verdict == REPRODUCED
    assert decide_part(up_to, [close, *others], design=ONE_LOOK).verdict == INCONCLUSIVE
    every = Part("gap", above(0.5, "why"))
    low = Cell("gap", "a", (-0.1, 0.0, 0.1))  # < 0.5 at 0.025 one-sided, not at 0.025 / 6
    strong = [Cell("gap", f"b{k}", (2.0, 2.1, 2.2)) for k in range(5)]
    assert decide_part(every, [low], design=ONE_LOOK).verdict == NOT_REPRODUCED
    assert decide_part(every, [low, *strong], design=ONE_LOOK).verdict == INCONCLUSIVE
    assert decide_part(every, strong, design=ONE_LOOK).verdict == REPRODUCED
    # Across parts: a second part's cells join the family of the first's.
    other = Part("size", above(0.5, "why"))
    cells = [low, *[replace_part(c, "size") for c in strong]]
    verdict_, _, results = decide((every, other), cells, design=ONE_LOOK)
    assert results[0].contradict == pytest.approx(0.025 / 6) and verdict_ == INCONCLUSIVE


def test_a_design_spends_the_error_over_its_looks_and_a_decision_stands():
    """Pocock-type spending over looks at 3, 5 and 10 runs: the shares sum to one (so over every
    look each direction's error stays at 0.025); a cell too noisy at 3 runs decides at 5; a cell
    decided at 3 keeps its decision whatever its later runs say; one open at 10 says so."""
    from reports.claims.stats import SEQUENTIAL, judge_looks

    shares = [SEQUENTIAL.share(k) for k in (1, 2, 3)]
    assert sum(shares) == pytest.approx(1.0) and shares[0] == pytest.approx(math.log1p((math.e - 1) * 0.3))
    band = above(0.0, "why")
    noisy_then_tight = Cell("p", "c", (2.0, -0.5, 3.0, 1.0, 1.1, 0.9, 1.0, 1.2, 0.8, 1.0))
    at, verdict_, _ = judge_looks(noisy_then_tight, band, 0.025, 0.025)
    assert (verdict_, at.look, at.count) == (SUPPORTS, 3, 10)  # the first 5 still cross 0: decides at 10
    first5 = Cell("p", "c", (2.0, 0.5, 3.0, 1.8, 1.9))  # open at 3 runs (sd large for df 2), not at 5
    at, verdict_, _ = judge_looks(first5, band, 0.025, 0.025)
    assert (verdict_, at.look, at.count) == (SUPPORTS, 2, 5)
    reversed_later = Cell("p", "c", (5.0, 5.5, 6.0, -9.0, -9.0))
    at, verdict_, _ = judge_looks(reversed_later, band, 0.025, 0.025)
    assert (verdict_, at.look, at.values) == (SUPPORTS, 1, (5.0, 5.5, 6.0))
    at, verdict_, why = judge_looks(Cell("p", "c", (1.0, -1.0) * 5), band, 0.025, 0.025)
    assert verdict_ == OPEN and "last look (10 runs) is reached" in why
    assert (
        judge_looks(Cell("p", "c", (1.0, 2.0)), band, 0.025, 0.025)[2] == "2 of the 3 runs of its first look"
    )
    # A cell that supports at 0.025 with 3 runs need not at the first look's share of it.
    close = Cell("p", "c", (1.3, 1.5, 1.7))
    assert close.judge(above(1.0, "why"))[0] == SUPPORTS
    assert judge_looks(close, above(1.0, "why"), 0.025, 0.025)[1] == OPEN


def replace_part(cell: Cell, part: str) -> Cell:
    return Cell(part, cell.name, cell.values, cell.runs, cell.planned, cell.failed)


def test_an_open_cell_says_how_many_runs_would_decide_it():
    """80 % power at the cell's observed mean and spread (scipy's noncentral t): the fewest runs
    whose simulated share of supporting cells reaches 80 %, within sampling error."""
    import numpy as np

    from reports.claims.stats import ALPHA, runs_to_decide

    cell = Cell("gap", "a", (0.6, 1.5, 0.9))  # mean 1.0, sd 0.46 against > 0.5: open at 3 runs
    band = above(0.5, "why")
    runs = runs_to_decide(cell, band, ALPHA, ALPHA)
    assert decide_part(Part("gap", band), [cell], design=ONE_LOOK).reason.endswith(
        f"about {runs} runs a cell would decide it (80 % power at its observed mean and spread))"
    )
    rng = np.random.default_rng(0)

    def share(n: int) -> float:
        cells = [Cell("gap", "a", tuple(rng.normal(1.0, 0.458, n))) for _ in range(2000)]
        return sum(c.judge(band)[0] == SUPPORTS for c in cells) / len(cells)

    assert share(runs) >= 0.77 and share(runs - 1) < 0.8
    assert runs_to_decide(Cell("gap", "a", (0.49, 0.51, 0.5)), band, ALPHA, ALPHA) is None  # at the edge


def test_a_stated_size_is_closed_on_both_sides():
    """'2.14x' holds within a factor of 1.25 of it: 1.47x (half of it in log terms, which rule
    version 2 passed) and 5x contradict it."""
    part = Part("ratio", stated(2.14, "why"))

    def at(ratio: float) -> str:
        values = tuple(math.log(ratio) + d for d in (-0.01, 0, 0.01))
        return decide_part(part, [Cell("ratio", "a", values)]).verdict

    assert (at(2.14), at(1.9), at(1.47), at(5.0)) == (REPRODUCED, REPRODUCED, NOT_REPRODUCED, NOT_REPRODUCED)


def test_a_guard_turns_only_a_reproduced_into_not_comparable():
    claim = CLAIMS["async-more-accurate-than-lap-lpp"]
    name = claim.parts[0].name
    ahead = Measured((Cell(name, "c", (5.0, 5.5, 6.0)),), guard="a baseline had not converged")
    behind = Measured((Cell(name, "c", (-5.0, -5.5, -6.0)),), guard="a baseline had not converged")
    assert claim.decide(ahead).verdict == NOT_COMPARABLE
    result = claim.decide(behind)  # the unfairness favoured the claim, and it still failed
    assert result.verdict == NOT_REPRODUCED and "could only favour the claim" in result.reason
    # The other side: our own method cut short could only count against the claim.
    cut = "async_lu's runs stopped on their time budget"
    assert claim.decide(replace(behind, guard="", guard_against=cut)).verdict == NOT_COMPARABLE
    kept = claim.decide(replace(ahead, guard="", guard_against=cut))
    assert kept.verdict == REPRODUCED and "could only count against the claim" in kept.reason


# --- rules on stores ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """paper: LU ahead of BU by 5-6 points on CIFAR-10 and level with it on IMDb; quick: behind by
    5-6 points; smoke: ahead in 1 pair."""
    uri = empty_store(tmp_path_factory.mktemp("claims") / "mlflow.db")
    tracker = Tracker(uri)
    for i, (lu, bu) in enumerate([(0.90, 0.85), (0.91, 0.855), (0.92, 0.86)]):
        add(tracker, "table1", "resnet18", "async_lu", i, [0.5, lu], staleness_mean=0.4)
        add(tracker, "table1", "resnet18", "async_bu", i, [0.5, bu], staleness_mean=1.1 + 0.01 * i)
        add(tracker, "table1", "resnet18", "async_lu", i, [0.5, bu], profile="quick")
        add(tracker, "table1", "resnet18", "async_bu", i, [0.5, lu], profile="quick")
        add(tracker, "table6", "lstm", "async_lu", i, [0.8, 0.850 + 0.001 * i])
        add(tracker, "table6", "lstm", "async_bu", i, [0.8, 0.851 + 0.0005 * i])
    add(tracker, "table1", "resnet18", "async_lu", 3, [0.4], status="diverged")  # outside the plan
    add(tracker, "table1", "resnet18", "lapsgd", 0, [0.2], status="diverged")
    add(tracker, "table1", "resnet18", "async_lu", 0, [0.3, 0.6], profile="smoke")
    add(tracker, "table1", "resnet18", "async_bu", 0, [0.3, 0.5], profile="smoke")
    # Table 9: ResNet-18 β 2.2 (paper 2.08), ResNet-50 β 3.0 (paper 1.80: off by 67 %), 3 runs each.
    for i in range(3):
        for model, beta in (("resnet18", 2.2 + 0.01 * i), ("resnet50", 3.0 + 0.01 * i)):
            add(
                tracker,
                "table9",
                model,
                "fwd_bwd_timing",
                i,
                [],
                forward_s=0.01,
                backward_s=0.01 * beta,
                beta=beta,
            )
    return uri


def test_lu_more_accurate_than_bu_per_workload(store):
    reproduced = verdict(store, "lu-more-accurate-than-bu")
    assert reproduced.verdict == REPRODUCED, reproduced.reason
    cifar, imdb = reproduced.results
    assert [c.name for c in cifar.cells] == ["table1 resnet18"] and [c.name for c in imdb.cells] == [
        "table6 lstm"
    ]
    mean, low, high = cifar.cells[0].estimate
    assert mean == pytest.approx(5.5) and 0.5 < low < mean < high  # points, with its 95 % interval
    assert len(reproduced.runs) == 12 and reproduced.version.startswith("6 ")
    assert verdict(store, "lu-more-accurate-than-bu", "quick").verdict == NOT_REPRODUCED
    assert verdict(store, "lu-more-accurate-than-bu", "smoke").verdict == INCONCLUSIVE


def test_imdb_gaps_cannot_carry_a_cifar_claim_nor_cifar_gaps_an_imdb_one(tmp_path):
    """LU far ahead on CIFAR-10 and 3 points ahead on IMDb, which 000 calls 'the same': the IMDb
    cell lies outside the equivalence margin, so the claim is not reproduced (a pooled test said
    reproduced)."""
    uri, tracker = new_store(tmp_path)
    for i in range(3):
        add(tracker, "table1", "resnet18", "async_lu", i, [0.5, 0.90 + 0.01 * i])
        add(tracker, "table1", "resnet18", "async_bu", i, [0.5, 0.80 + 0.01 * i])
        add(tracker, "table6", "lstm", "async_lu", i, [0.8, 0.880 + 0.001 * i])
        add(tracker, "table6", "lstm", "async_bu", i, [0.8, 0.850 + 0.001 * i])
    result = verdict(uri, "lu-more-accurate-than-bu")
    assert result.verdict == NOT_REPRODUCED and "IMDb" in result.reason and "table6 lstm" in result.reason


def test_beta_needs_three_runs_per_model_and_a_model_the_paper_timed(store, tmp_path):
    result = verdict(store, "beta-about-2")
    assert result.verdict == NOT_REPRODUCED and "table9 resnet50" in result.reason
    uri, tracker = new_store(tmp_path)
    add(tracker, "table9", "resnet18", "fwd_bwd_timing", 0, [], forward_s=1.0, backward_s=2.1, beta=2.1)
    one = verdict(uri, "beta-about-2")
    assert one.verdict == INCONCLUSIVE and "1 of the 3 runs of its first look" in one.reason


def test_staleness_grows_with_depth_only_beyond_the_backward_time(tmp_path):
    """§3.4's τ = βT(M-1)/2: BU's delay over its backward time must grow from ResNet-18 to
    ResNet-50. A delay that grows only as the backward pass does (3x and 3x) is not reproduced; one
    that grows 3x over a 1.5x longer backward pass is."""
    for r50_backward, expected in ((0.030, NOT_REPRODUCED), (0.015, REPRODUCED)):
        uri, tracker = new_store(tmp_path, f"{expected}.db")
        for i in range(3):
            add(tracker, "table1", "resnet18", "async_lu", i, [0.5, 0.6], staleness_mean=0.4 + 0.01 * i)
            add(tracker, "table1", "resnet18", "async_bu", i, [0.5, 0.6], staleness_mean=1.1,
                update_delay_s_sum=0.010 + 0.0001 * i, update_delay_s_mean=0.1)  # fmt: skip
            add(
                tracker,
                "table1",
                "resnet50",
                "async_bu",
                i,
                [0.5, 0.6],
                update_delay_s_sum=0.030 + 0.0002 * i,
                update_delay_s_mean=0.1,  # a mean over tensors: not what §3.4's sum grows by
            )
            for model, backward in (("resnet18", 0.010), ("resnet50", r50_backward)):
                add(
                    tracker,
                    "table9",
                    model,
                    "fwd_bwd_timing",
                    i,
                    [],
                    forward_s=0.005,
                    backward_s=backward,
                    beta=2.0,
                )
        result = verdict(uri, "lu-staleness-below-bu-grows-with-depth")
        assert result.verdict == expected, result.reason
        assert result.results[0].verdict == REPRODUCED  # BU - LU staleness +0.7 updates


def test_a_run_that_diverged_never_reaches_the_frozen_target(tmp_path):
    """BU reaches the frozen target (000 Table 1's 87 %) first in every finished pair, but one BU run
    diverged before it: it never reaches it (censored at infinity, counted, never imputed); a run
    that reached the target and then diverged keeps its time. No run moves the target."""
    uri, tracker = new_store(tmp_path)
    for i in range(3):
        add(tracker, "table1", "resnet18", "async_lu", i, [0.5, 0.7, 0.8, 0.88])
        bu, status = ([0.86, 0.88, 0.88, 0.88], "finished") if i < 2 else ([0.7, 0.1], "diverged")
        add(tracker, "table1", "resnet18", "async_bu", i, bu, status=status)
    add(tracker, "table1", "resnet18", "lapsgd", 0, [0.5, 0.88, 0.1], status="diverged")
    add(tracker, "table1", "resnet18", "lppsgd", 0, [0.5, 0.6, 0.86, 0.86])  # its budget ran out
    result = verdict(uri, "bu-fastest-to-target")
    cell = next(c for c in result.cells if c.name == "table1 resnet18 async_lu")
    # LU reaches 0.87 in 40 s, BU in 20 s; the diverged BU run never does (the rule before version 6
    # censored it at its own last time, 20 s, as if it could still reach it later).
    assert cell.failed == 1 and cell.censored == 1 and cell.fast_reached == (True, True, False)
    assert cell.fast == pytest.approx((20.0, 20.0, math.inf)) and cell.slow == pytest.approx((40.0,) * 3)
    # The censored pair has no paired ratio (it has no time to the target).
    assert cell.values[:2] == pytest.approx((math.log(2), math.log(2))) and math.isnan(cell.values[2])
    bu_runs = cell.runs[3:]  # the slow row's (LU's) ids, then the fast row's (BU's)
    assert f"1 censored ({bu_runs[2][:8]}), compared by log-rank" in cell.text(FASTEST.band)
    assert cell.unmeasured == 0  # never reaching is a measurement, not a missing one
    lap = next(c for c in result.cells if c.name == "table1 resnet18 lapsgd")
    assert lap.slow == pytest.approx((20.0,)) and lap.slow_reached == (True,)  # reached, then diverged
    lpp = next(c for c in result.cells if c.name == "table1 resnet18 lppsgd")
    assert lpp.slow == pytest.approx((40.0,)) and lpp.slow_reached == (False,)  # finished short of it


def test_a_diverged_run_is_slower_than_any_run_that_reached_the_target():
    """Log-rank with a run censored at infinity: the row whose runs diverged before the target reads
    slower than one whose runs all reached it, however late; censored at its own (early) last time,
    the same diverged runs left the comparison open."""
    from reports.claims.censored import TimeCell

    reached = (100.0, 110.0, 120.0, 105.0, 115.0)
    never = TimeCell("t", "c", slow=(math.inf,) * 5, fast=reached, slow_reached=(False,) * 5,
                     fast_reached=(True,) * 5, runs=tuple("abcdefghij"))  # fmt: skip
    early = replace(never, slow=(5.0,) * 5)
    band = above(math.log(1.1), "why", "x")
    assert never.judge(band)[0] == SUPPORTS  # the fast row is faster by more than 1.1x
    assert early.judge(band)[0] == OPEN


def test_censored_times_are_compared_by_log_rank_tests_at_the_bands_edges():
    """With a censored time, a cell's side of the band is scipy's one-sided log-rank test of the
    fast row against the slow row scaled to that edge; without one, the paired log ratios' t
    interval. The interval is the set of shifts no test rejects."""
    from scipy import stats

    from reports.claims.censored import TimeCell

    slow, fast = (200.0, 210.0, 220.0, 230.0, 240.0), (100.0, 105.0, 110.0, 115.0, 150.0)
    missed = (True, True, True, True, False)  # the last fast run stopped at 150 s short of the target
    cell = TimeCell("t", "c", (), slow=slow, fast=fast, slow_reached=(True,) * 5, fast_reached=missed)
    scaled = stats.CensoredData(uncensored=[t / 1.1 for t in slow])
    expected = stats.logrank(
        stats.CensoredData(uncensored=fast[:4], right=fast[4:]), scaled, alternative="greater"
    )
    assert cell.p_above(math.log(1.1)) == pytest.approx(expected.pvalue)
    assert cell.judge(above(math.log(1.1), "why", "x"))[0] == SUPPORTS
    assert cell.judge(above(math.log(3.0), "why", "x"))[0] == CONTRADICTS
    estimate, low, high = cell.interval()
    assert low < estimate < high and cell.p_above(low - 1e-6) < 0.025 and cell.p_above(low + 1e-6) >= 0.025
    reached = TimeCell("t", "c", (0.7, 0.69, 0.68), slow=slow[:3], fast=fast[:3], slow_reached=(True,) * 3,
                       fast_reached=(True,) * 3)  # fmt: skip
    assert reached.interval() == mean_interval([0.7, 0.69, 0.68])


def test_a_rerun_does_not_replace_the_run_of_its_index_that_ended_first(tmp_path):
    """LU's run 0 diverged; `run` then redid that job and it finished 10 points ahead. The run
    that ended first counts, so the divergence stays in the cell and the claim cannot pass on it."""
    uri, tracker = new_store(tmp_path)
    diverged = add(tracker, "table1", "resnet18", "async_lu", 0, [0.3], status="diverged")
    for i in range(3):
        add(tracker, "table1", "resnet18", "async_lu", i, [0.5, 0.90 + 0.01 * i])
        add(tracker, "table1", "resnet18", "async_bu", i, [0.5, 0.80 + 0.01 * i])
    cifar = verdict(uri, "lu-more-accurate-than-bu").results[0]
    (cell,) = cifar.cells
    assert diverged in cell.runs and cell.failed == 1 and cifar.verdict != REPRODUCED


def test_a_cell_is_judged_at_the_looks_of_its_design_on_its_first_runs(tmp_path):
    """Runs 0-2 show LU ahead by 10 points each: the cell decides at its first look, and runs 3 and
    4, which reverse it, do not move that decision. Run indices past the design's last look (10)
    never reach a cell."""
    uri, tracker = new_store(tmp_path)
    for i in range(11):
        lu, bu = (0.90, 0.80) if i < 3 else (0.70, 0.95)
        add(tracker, "table1", "resnet18", "async_lu", i, [0.5, lu + 0.01 * i])
        add(tracker, "table1", "resnet18", "async_bu", i, [0.5, bu + 0.01 * i])
    claim = CLAIMS["lu-more-accurate-than-bu"]
    evidence = Evidence(uri, TABLES, "paper").planned(claim)
    (raw,) = [c for c in claim.rule(evidence).cells if c.name.startswith("table1")]
    assert len(raw.values) == 10  # index 10 lies past the design's last look
    cifar = claim.judge(Evidence(uri, TABLES, "paper")).results[0]
    (cell,) = cifar.cells
    assert cifar.verdict == REPRODUCED and (cell.look, cell.count) == (1, 3), cifar.reason
    assert cell.share == pytest.approx(math.log1p((math.e - 1) * 0.3))


def test_not_measurable_here(store):
    assert verdict(store, "imagenet-same-accuracy-3x-faster").verdict == NOT_MEASURABLE
    mfu = verdict(store, "004-mfu-above-ddp")
    assert mfu.verdict == NOT_MEASURABLE and "run pd-headline" in mfu.reason
    no_runs = verdict(store, "lu-speedup-about-ddp")
    assert no_runs.verdict == NOT_MEASURABLE and "run table7" in no_runs.reason
    gpt = verdict(store, "gpt-lu-speedup")
    assert gpt.verdict == NOT_MEASURABLE


def test_the_speedup_bound_on_three_perf_results_and_its_guard_by_direction(tmp_path):
    uri, tracker = new_store(tmp_path, "perf.db")
    assert verdict(uri, "speedup-approaches-1-plus-beta").verdict == NOT_MEASURABLE
    for ratio in (2.5, 2.55, 2.6):  # 4 cores, 1 + β = 2.9: 86-90 % of the bound
        tracker.log_perf("async", dict(ratio_1thread=ratio, bound=2.9, beta=1.9, cores=4, model="resnet18"))
    result = verdict(uri, "speedup-approaches-1-plus-beta")
    assert result.verdict == REPRODUCED, result.reason
    assert result.cells[0].estimate[0] == pytest.approx(2.55 / 2.9)
    # On 2 cores: reaching 85 % of min(1 + β, 2) says nothing of 1 + β; falling to 55 % of it does.
    for ratios, expected in (((1.7, 1.71, 1.69), NOT_COMPARABLE), ((1.1, 1.12, 1.08), NOT_REPRODUCED)):
        uri, tracker = new_store(tmp_path, f"cores-{expected}.db")
        for ratio in ratios:
            tracker.log_perf(
                "async", dict(ratio_1thread=ratio, bound=2.0, beta=1.9, cores=2, model="resnet18")
            )
        result = verdict(uri, "speedup-approaches-1-plus-beta")
        assert result.verdict == expected, result.reason
        assert "2 cores, fewer than 1 + β" in result.reason
    # Past the bound by more than two spreads: a measurement error, not a speed-up that approaches it.
    uri, tracker = new_store(tmp_path, "past.db")
    for ratio in (3.5, 3.55, 3.6):
        tracker.log_perf("async", dict(ratio_1thread=ratio, bound=2.9, beta=1.9, cores=4, model="resnet18"))
    assert verdict(uri, "speedup-approaches-1-plus-beta").verdict == NOT_REPRODUCED


def test_an_unconverged_baseline_is_not_comparable_only_when_it_helps_the_claim(tmp_path):
    uri, tracker = new_store(tmp_path)
    for i in range(3):
        add(tracker, "table1", "resnet18", "async_lu", i, [0.6, 0.8, 0.85, 0.86 + 0.01 * i])
        add(tracker, "table1", "resnet18", "async_bu", i, [0.6, 0.8, 0.84, 0.85 + 0.01 * i])
        add(tracker, "table1", "resnet18", "lapsgd", i, [0.2, 0.3, 0.45, 0.6 + 0.01 * i])
    result = verdict(uri, "async-more-accurate-than-lap-lpp")
    assert result.verdict == NOT_COMPARABLE and "had not converged" in result.reason
    assert "lapsgd resnet18 run 0 +15.0 points in its last 1 of 4 epochs" in result.reason
    uri, tracker = new_store(tmp_path, "behind.db")
    for i in range(3):  # LAP-SGD still rising, and already ahead: against the claim, so it stands
        add(tracker, "table1", "resnet18", "async_lu", i, [0.6, 0.7, 0.72, 0.73 + 0.01 * i])
        add(tracker, "table1", "resnet18", "async_bu", i, [0.6, 0.7, 0.71, 0.72 + 0.01 * i])
        add(tracker, "table1", "resnet18", "lapsgd", i, [0.5, 0.7, 0.8, 0.9 + 0.005 * i])
    assert verdict(uri, "async-more-accurate-than-lap-lpp").verdict == NOT_REPRODUCED


def test_stragglers_are_judged_per_delay_level(tmp_path):
    """No delay, 25 % and 100 %: a drop of 0.2 points at 25 % cannot mask one of 6 points at 100 %."""
    from .conftest import row_params

    uri, tracker = new_store(tmp_path)
    rows = {"": 0.0, "straggler_delay_frac=0.25": 0.002, "straggler_delay_frac=1": 0.06}
    for i in range(3):
        for name, drop in rows.items():
            add_run(tracker, "pd-stragglers", "resnet18", "async_lu", i, [0.5, 0.8 - drop + 0.001 * i],
                    [10.0, 20.0], hardware=TWO_CORES,
                    params=row_params("pd-stragglers", "async_lu", name))  # fmt: skip
    result = verdict(uri, "004-stragglers-cost-under-2.5-points")
    names = [c.name for c in result.cells]
    assert names == ["pd-stragglers resnet18 delay 25%", "pd-stragglers resnet18 delay 100%"], names
    assert result.verdict == NOT_REPRODUCED and "delay 100%" in result.reason


def test_report_claims_through_the_cli(store, tmp_path):
    proc = run_cli("report", "claims", "--tracking-uri", store, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "claims.md").read_text()
    assert (
        text.count("\n| **") >= 14 and "**reproduced** (rule 6 " in text and "**not measurable here**" in text
    )
    assert (
        "band > +0.50 pts" in text and "table1 resnet18 +5.50 pts [" in text and "3 runs, look 1 of 3" in text
    )
    assert "Design: looks at 3, 5, 10 runs a cell" in text and "stage: look 1 of 3 (3 runs a cell)" in text
    assert "(claims.png)" in text and (tmp_path / "claims.png").exists()
    import pandas as pd

    csv = pd.read_csv(tmp_path / "claims.csv")
    row = csv[(csv["id"] == "lu-more-accurate-than-bu") & (csv["cell"] == "table1 resnet18")].iloc[0]
    assert row["effect"] == pytest.approx(5.5) and row["runs"] == 3 and row["band_low"] == 0.5
    assert "claims.md" in (tmp_path / "index.md").read_text()


def test_smoke_verdicts_are_inconclusive(store):
    results = {claim.id: (profile, v) for claim, profile, v in evaluate(store, dict(TABLES), "smoke")}
    assert len(results) >= 14
    profile, result = results["lu-more-accurate-than-bu"]
    assert profile == "smoke" and result.verdict == INCONCLUSIVE


def test_reports_count_runs_that_reached_and_runs_that_diverged(store, tmp_path):
    """Table 1 (target 0.87 in `paper`): LU's 3 runs reach it, BU's 3 do not; LU's run 3 and LAP-SGD's
    only run diverged: counted, and LAP-SGD keeps its row."""
    proc = run_cli("report", "table1", "--profile", "paper", "--tracking-uri", store, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    summary = pd.read_csv(tmp_path / "table1.csv").set_index("method")
    assert (
        summary.at["async_lu", "target_reached"] == "3 of 3"
        and summary.at["async_bu", "target_reached"] == "0 of 3"
    )
    assert summary.at["async_lu", "diverged"] == 1 and summary.at["async_bu", "diverged"] == 0
    assert summary.at["lapsgd", "diverged"] == 1 and summary.at["lapsgd", "runs"] == 0


def test_speedups_on_cpu_processes_are_not_the_papers_devices(tmp_path):
    uri, tracker = new_store(tmp_path, "speedup.db")
    for i in range(3):
        for method, accs in (
            ("bp", [0.5, 0.8, 0.9]),
            ("async_lu", [0.6, 0.85, 0.86]),
            ("ddp", [0.7, 0.82, 0.84]),
        ):
            add(tracker, "table7", "resnet18", method, i, accs)
    result = verdict(uri, "lu-speedup-about-ddp")
    assert result.verdict == NOT_MEASURABLE and "needs several GPUs" in result.reason
    assert result.cells and "Test CPU" in result.evidence  # the numbers are still shown


def test_a_claim_of_gpus_and_cifar100_is_not_measurable_on_cpu_processes_or_a_stand_in(tmp_path):
    """004's 2.14x / 1.34x: LU 1.4x slower than LPP-SGD and DDP here (which would contradict it) reads
    "not measurable" at quick (a CIFAR-10 stand-in) and on CPU processes, never "not reproduced"."""
    uri, tracker = new_store(tmp_path, "headline.db")
    for profile in ("quick", "paper"):
        for i in range(3):
            for method, accs in (("async_lu", [0.1, 0.5, 0.9]), ("lppsgd", [0.5, 0.9]), ("ddp", [0.5, 0.9])):
                add(tracker, "pd-headline", "resnet18", method, i, accs, profile=profile)
    for profile, needs in (("quick", "CIFAR-100 (this profile trains"), ("paper", "needs several GPUs")):
        result = verdict(uri, "004-faster-than-lppsgd-and-ddp", profile)
        assert result.verdict == NOT_MEASURABLE and needs in result.reason, result.reason
        assert result.cells  # the numbers are still shown


def test_every_claim_names_the_paper_version_its_sentence_comes_from(store, tmp_path):
    from reports.claims import write_claims
    from reports.claims._common import EXTENSION, LAYUP_V4, PAPER_000, PAPER_004

    assert {c.paper_version for c in CLAIMS.values()} == {PAPER_000, PAPER_004, LAYUP_V4, EXTENSION}
    assert all((c.paper_version == EXTENSION) == c.extension for c in CLAIMS.values())
    write_claims(store, dict(TABLES), tmp_path)
    text = (tmp_path / "claims.md").read_text()
    assert f"from {PAPER_004}" in text and "paper_version" in (tmp_path / "claims.csv").read_text()


def test_a_claim_the_budget_left_out_says_so():
    from reports.claims import NOT_RUN, Verdict, budget_note

    claim = CLAIMS["004-stragglers-cost-under-2.5-points"]
    left_out = {claim.id: 13 * 60 + 1}
    none = budget_note(claim, Verdict(NOT_MEASURABLE, "no finished runs"), "quick", left_out)
    assert none.verdict == NOT_RUN and "~14 min more here" in none.reason
    assert f"run claims --profile quick --only {claim.id}" in none.reason
    some = budget_note(claim, Verdict(INCONCLUSIVE, "2 pairs"), "quick", left_out)
    assert some.verdict == INCONCLUSIVE and some.reason.startswith("2 pairs; its other runs were left out")
    other = Verdict(NOT_MEASURABLE, "no finished runs")
    assert budget_note(CLAIMS["beta-about-2"], other, "quick", left_out) is other


# --- frozen rules and their error rates ----------------------------------------------------------
def test_every_rules_verdicts_on_fixed_evidence_are_pinned_to_its_version():
    """A change of a rule's logic changes its verdicts on these simulated stores: it must raise the
    rule's version, record the change in docs/log/fidelity.md and re-pin (`python -m
    benchmarks calibrate-claims --pins > tests/claim_rules.json`)."""
    from reports.claims.calibrate import pins

    pinned = json.loads(PINS.read_text())
    now = pins()
    assert set(now) == set(pinned), "a claim was added or removed: pin it"
    for claim_id, current in now.items():
        assert current == pinned[claim_id], (
            f"{claim_id}: its verdicts on fixed evidence or its version changed ({pinned[claim_id]} -> "
            f"{current}); raise the version with its history in docs/log/fidelity.md and re-pin"
        )


@pytest.mark.ci
@pytest.mark.slow  # every claim's path from a store: ~17 s, in CI
def test_the_path_from_a_store_to_each_verdict_is_pinned_to_its_rules_version():
    """table1's claims read from fixed synthetic MLflow stores written as the runner writes runs
    (benchmarks/calibration/stores.py: diverged, failed and short runs, a store past the first look): a
    change of run selection, targets, censoring or pairing changes these verdicts and cells, and
    must raise the rules' versions and re-pin (`python -m benchmarks calibrate-claims --path-pins >
    tests/claim_paths.json`)."""
    from benchmarks.calibration.stores import path_pins

    pinned = json.loads(PATHS.read_text())
    now = path_pins()
    for claim_id, current in now.items():
        assert current == pinned[claim_id], f"{claim_id}: {pinned[claim_id]} -> {current}"


def test_the_rules_on_the_papers_own_tables():
    """000's Tables 1-4 and 6 as 3 runs each (mean ± std), paired in rank order and in reverse
    (docs/claims.md, "The rules on the paper's own numbers"): what each rule says of the paper's
    own evidence, frozen with the rules' versions."""
    from reports.claims.paper_store import paper_verdicts

    verdicts = {
        c: (v["rank order"].split(":")[0], v["reverse order"].split(":")[0])
        for c, v in paper_verdicts().items()
    }
    assert verdicts == {
        # Table 1's ResNet-50 lead of BU over LU is 1.05x and Table 3's ResNet-50 has LU ahead (0.97x).
        "bu-fastest-to-target": (NOT_REPRODUCED, INCONCLUSIVE),
        # Version 6: "up to 2.97x" needs every cell shown below 3.71x, which 3 runs of the paper's
        # spreads do not show (version 5: reproduced in rank order; docs/fidelity.md).
        "lu-faster-than-lap-lpp": (INCONCLUSIVE, INCONCLUSIVE),
        "async-more-accurate-than-lap-lpp": (REPRODUCED, REPRODUCED),
        "lu-more-accurate-than-bu": (INCONCLUSIVE, INCONCLUSIVE),
        "imdb-lu-twice-as-fast": (REPRODUCED, INCONCLUSIVE),
    }
    # Frozen targets, the first decided verdict kept and the marks of what quick cannot decide
    # moved no verdict here (docs/fidelity.md).
    versions = {c: v["version"].split()[0] for c, v in paper_verdicts().items()}
    assert versions == {
        "bu-fastest-to-target": "6",
        "lu-faster-than-lap-lpp": "8",
        "async-more-accurate-than-lap-lpp": "5",
        "lu-more-accurate-than-bu": "6",
        "imdb-lu-twice-as-fast": "5",
    }


@pytest.mark.slow  # 25 simulated stores a claim: ~13 s; CI runs the 100-store form below
def test_a_small_calibration_keeps_false_verdicts_within_what_chance_allows():
    """`calibrate-claims` at 25 stores a case (the ci test below runs 100): no rule's false
    "reproduced" beyond its limit plus two standard errors of 25 stores (a rule that read an
    "up to" open above, 40-54 % false at the edge, fails here), and the rules that often decide at
    the paper's effect do in some store."""
    from reports.claims.calibrate import calibrate, violations

    rates = calibrate(sims=25)
    assert violations(rates, by_chance=True) == []
    power = {r.claim: r.reproduced for r in rates if r.scenario == "paper" and r.runs == 10}
    assert sum(p > 0 for p in power.values()) >= len(power) - 4, power


@pytest.mark.ci
@pytest.mark.slow  # two spawned processes import the suite: seconds
def test_the_calibration_reads_the_same_rates_over_two_processes_as_in_one():
    """`calibrate-claims` runs a claim a task over one process per core; each claim draws from its
    own seeds, so the rates are those of one process, in the same order."""
    from reports.claims.calibrate import calibrate

    claims = [CLAIMS[c] for c in ("bu-fastest-to-target", "beta-about-2", "lu-faster-than-lap-lpp")]
    assert calibrate(20, claims=claims, workers=2) == calibrate(20, claims=claims)


@pytest.mark.ci
@pytest.mark.slow  # 100 stores a case, ~30 s over 2 processes: out of the default run (see the test above)
def test_calibration_bounds_false_verdicts_and_each_rule_can_say_reproduced():
    """A fast subset of `calibrate-claims`: false "reproduced" within the limits, and every rule,
    at 10 runs a cell and the paper's effect, can read reproduced."""
    from reports.claims.calibrate import calibrate, violations

    rates = calibrate(sims=100, workers=0)  # a process per core: the same rates (the test above)
    # 100 stores estimate a rate within about 2 standard errors (4.4 points at 5 %, 2.0 at 1 %): the
    # command's 1000 stores hold the limits themselves.
    assert violations(rates, by_chance=True) == []
    power = {r.claim: r.reproduced for r in rates if r.scenario == "paper" and r.runs == 10}
    # IMDb's "the same accuracy" (within 1.5 points) needs about 25 pairs at quick's spread (2 points
    # a pair): at 10 runs those two claims can rarely read reproduced; 004's two stated sizes (each
    # within a factor of 1.25, over the design's looks) about one store in five; every other rule often.
    equivalence = {"imdb-lu-twice-as-fast", "lu-more-accurate-than-bu"}
    assert all(power[c] < 0.1 for c in equivalence), power
    assert 0.05 < power["004-faster-than-lppsgd-and-ddp"] < 0.5, power
    # "Up to 2.97x" over 6 cells, each shown below 3.71x since version 6: about one store in seven.
    assert 0.03 < power["lu-faster-than-lap-lpp"] < 0.4, power
    # LayUp's drift, 2x assumed against 1.1x in 4 cells at the measured 0.63 a pair (rule 2): ~1 in 6.
    assert 0.05 < power["layup-lower-drift"] < 0.4, power
    hard = equivalence | {"004-faster-than-lppsgd-and-ddp", "lu-faster-than-lap-lpp", "layup-lower-drift"}
    assert all(p > 0.3 for c, p in power.items() if c not in hard), power
    # At the band's edge, with all of a claim's cells, false "reproduced" stays near 0.025.
    assert max(r.reproduced for r in rates if r.scenario == "edge") < 0.07


def test_spreads_fitted_to_a_store_recover_its_runs_spread(tmp_path):
    """`calibrate-claims --fit`: a part's spread is the pooled standard deviation of its cells'
    margins, read as the claims read runs. Synthetic runs with a spread of 5 % in time and half a
    point of accuracy per run give pairs spread about sqrt(2) times that."""
    from benchmarks.calibration.stores import PATH_PROFILE, TABLE1_PAPER, write_table
    from reports.claims.calibrate import fit_spreads, with_spreads

    uri, tracker = new_store(tmp_path)
    write_table(tracker, "table1", PATH_PROFILE, TABLE1_PAPER, 3)
    spreads = {s.part: s for s in fit_spreads(Evidence(uri, dict(TABLES), PATH_PROFILE))}
    fastest = spreads["t_other / t_BU to the frozen target"]
    assert fastest.cells == 6 and fastest.values == 18
    assert 0.05 * math.sqrt(2) / 1.6 < fastest.fitted < 0.05 * math.sqrt(2) * 1.6
    gap = spreads["async - LAP/LPP best accuracy"]
    assert 0.5 * math.sqrt(2) / 1.6 < gap.fitted < 0.5 * math.sqrt(2) * 1.6
    fitted = {c.id: c for c in with_spreads(list(CLAIMS.values()), list(spreads.values()))}
    assert fitted["bu-fastest-to-target"].parts[0].noise == fastest.fitted
    assert fitted["beta-about-2"].parts == CLAIMS["beta-about-2"].parts  # no runs: its assumption stays
