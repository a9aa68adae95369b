"""`run claims`: the claims' plans, estimated, run within a budget, ending with the claims report."""

import multiprocessing as mp
from dataclasses import replace

import pandas as pd
import pytest

from benchmarks.engine.planner import parse_duration
from benchmarks.tables import TABLES
from core.errors import UserError

from .conftest import empty_store, run_cli, smoke_job


def test_durations():
    assert parse_duration("2h") == 7200 and parse_duration("90m") == 5400
    assert parse_duration("1h30m") == 5400 and parse_duration("45s") == 45 and parse_duration("600") == 600
    for bad in ("", "soon", "-5m", "0"):
        with pytest.raises(UserError, match="--budget"):
            parse_duration(bad)


def test_dry_run_prints_each_plan_and_a_total_and_runs_nothing(tmp_path, monkeypatch):
    """The plans' lines and the total (the calibration's own measurements: the probe tests below)."""
    from benchmarks.engine import speed

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))  # these made-up speeds kept for no one else
    monkeypatch.setattr(speed.Speed, "probe", lambda *_: speed.Probe(1e-3, 1.0))
    monkeypatch.setattr(speed.Speed, "processes_s", lambda *_: 2.0)
    store = empty_store(tmp_path / "mlflow.db")
    proc = run_cli("run", "claims", "--profile", "smoke", "--runs", "3", "--dry-run", "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("total: ") and "min on this machine (estimated)" in lines[-1]
    plans = {line.split(":", 1)[0]: line for line in lines[:-1]}
    assert "perf async" in plans["speedup-approaches-1-plus-beta"]
    # 3 runs per cell (a paired test needs them) of Table 9's two models (synthetic batches: no data).
    assert "6 jobs" in plans["beta-about-2"] and "table9: fwd_bwd_timing" in plans["beta-about-2"]
    assert len(plans) >= 14 and "imdb-lu-twice-as-fast" in plans
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--only", "nope"), "unknown claim; valid claims:"),
        (("--budget", "soon"), "--budget soon: expected a duration"),
        (("--methods", "bp"), "`run claims` runs what each claim needs"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    proc = run_cli(
        "run", "claims", "--profile", "smoke", *args, "--tracking-uri", f"sqlite:///{tmp_path}/m.db"
    )
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


def test_claims_flags_are_refused_for_a_table(tmp_path):
    proc = run_cli(
        "run", "table6", "--profile", "smoke", "--only", "x", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"
    )
    assert proc.returncode == 2 and "--only is for `run claims`" in proc.stderr


def test_a_budget_leaves_out_what_does_not_fit(tmp_path):
    store = empty_store(tmp_path / "mlflow.db")
    out = tmp_path / "out"
    proc = run_cli(
        "run", "claims", "--profile", "smoke", "--only", "imdb-lu-twice-as-fast", "--budget", "1s",
        "--tracking-uri", store, "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "left out by the budget: imdb-lu-twice-as-fast (~" in proc.stdout
    verdicts = pd.read_csv(out / "claims.csv").set_index("id")
    # Nothing ran: measurable here, so the report says the budget left it out and what it would cost.
    assert verdicts.loc["imdb-lu-twice-as-fast", "verdict"] == "not run (budget)"
    reason = verdicts.loc["imdb-lu-twice-as-fast", "reason"]
    assert "min more here" in reason and "--only imdb-lu-twice-as-fast" in reason
    assert "not run (budget)" in (out / "claims.md").read_text()
    assert verdicts.loc["beta-about-2", "verdict"] == "not measurable here"  # not asked for: no note
    # A claim with nothing to run here (its plan needs GPUs) is not "left out by the budget".
    proc = run_cli(
        "run", "claims", "--profile", "smoke", "--only", "004-mfu-above-ddp", "--budget", "1s",
        "--tracking-uri", store, "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0 and "left out by the budget" not in proc.stdout, proc.stdout
    verdicts = pd.read_csv(out / "claims.csv").set_index("id")
    assert verdicts.loc["004-mfu-above-ddp", "verdict"] == "not measurable here"


@pytest.mark.slow  # two smoke jobs, ~8 s
def test_one_claim_runs_its_jobs_once_and_reports(tmp_path):
    """The IMDb claim at smoke: table6's two jobs run, the report is written and printed; a second
    `run claims` finds them finished and runs nothing."""
    store = empty_store(tmp_path / "mlflow.db")
    out = tmp_path / "out"
    args = ("run", "claims", "--profile", "smoke", "--only", "imdb-lu-twice-as-fast", "--tracking-uri", store)
    proc = run_cli(*args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "imdb-lu-twice-as-fast: inconclusive" in proc.stdout  # smoke decides nothing
    verdicts = pd.read_csv(out / "claims.csv").set_index("id")
    assert set(verdicts.loc[["imdb-lu-twice-as-fast"], "profile"]) == {"smoke"}  # a row a part
    assert "claims.md" in (out / "index.md").read_text()
    again = run_cli(*args, "--dry-run")
    assert "imdb-lu-twice-as-fast: 2 jobs (0 to run)" in again.stdout


def test_the_default_store_and_reports_lie_in_the_checkout(monkeypatch):
    """The engine's modules moved into benchmarks/engine/: the defaults still name the checkout's
    results/mlflow.db and reports/out/, not a folder inside the package."""
    from benchmarks.engine.store import PROJECT_ROOT, default_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert (PROJECT_ROOT / "pyproject.toml").exists() and (PROJECT_ROOT / "benchmarks").is_dir()
    assert default_tracking_uri() == f"sqlite:///{PROJECT_ROOT / 'results' / 'mlflow.db'}"


@pytest.mark.slow  # builds the quick plans, ~7 s
def test_jobs_whose_data_is_missing_are_left_out_of_the_plans(tmp_path):
    """Without the data on disk the quick plans hold no job for it, and say so (a dry run does not
    download: the lookup is immediate); ImageNet's plan is not run on a machine without its GPUs."""
    store = empty_store(tmp_path / "mlflow.db")
    only = "imdb-lu-twice-as-fast,imagenet-same-accuracy-3x-faster,beta-about-2"
    args = ("run", "claims", "--profile", "quick", "--dry-run", "--only", only)
    proc = run_cli(*args, "--data-dir", str(tmp_path / "none"), "--tracking-uri", store)
    assert proc.returncode == 0, proc.stderr
    plans = {line.split(":", 1)[0]: line for line in proc.stdout.splitlines()}
    assert "imdb-lu-twice-as-fast: 0 jobs" in plans["imdb-lu-twice-as-fast"]
    assert "imdb not on disk: its jobs are left out" in plans["imdb-lu-twice-as-fast"]
    assert "a verdict needs 3 GPU(s)" in plans["imagenet-same-accuracy-3x-faster"]
    assert "6 jobs" in plans["beta-about-2"]  # Table 9 times synthetic batches: no data needed


@pytest.mark.slow  # builds the quick plans, ~7 s
def test_a_run_whose_planned_jobs_lack_their_data_exits_1_with_a_line_per_dataset(tmp_path):
    """`run claims` (not a dry run) whose every planned job needs data not on disk runs nothing,
    still writes the verdicts, and exits 1 with one line naming the dataset and the claims it left
    without runs, as `run TABLE` does for its jobs."""
    store = empty_store(tmp_path / "mlflow.db")
    args = ("run", "claims", "--profile", "quick", "--only", "imdb-lu-twice-as-fast", "--out", str(tmp_path))
    proc = run_cli(*args, "--data-dir", str(tmp_path / "none"), "--tracking-uri", store)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert "not run, the imdb jobs of imdb-lu-twice-as-fast" in errors[0] and "Traceback" not in proc.stderr
    assert (tmp_path / "claims.md").exists()


# --- the planner's parts ---------------------------------------------------------------------------
def claim_plans(profile: str, *ids: str, gpus: int = 0, runs: int | None = None, design: bool = False):
    """The claims' plans as `run claims` makes them (`design`: before what this machine cannot
    decide is dropped, the runs each design would make)."""
    from benchmarks.engine.planner import drop_undecidable, plan_claims
    from benchmarks.tables import TABLES
    from reports.claims import CLAIMS

    plans = plan_claims([CLAIMS[i] for i in ids], dict(TABLES), profile, runs, None)
    if not design:
        drop_undecidable(plans, gpus, profile)
    return {p.claim.id: p for p in plans}


def test_reduced_profiles_plan_the_cells_that_decide_in_hours():
    """quick: LU and BU on CIFAR-10 ResNet-18 and on IMDb (3 runs each: the claim has a part on
    each), plus BU on ResNet-50 for the depth claim, and LU's straggler rows; paper: every cell the
    paper reports (both ResNets, CIFAR-100, IMDb; every method under stragglers)."""
    claims = ("lu-more-accurate-than-bu", "lu-staleness-below-bu-grows-with-depth")
    quick = claim_plans("quick", *claims, design=True)
    jobs = quick["lu-more-accurate-than-bu"].jobs
    assert sorted((j.table, j.model, j.method) for j in jobs) == sorted(
        (table, model, m)
        for table, model in (("table1", "resnet18"), ("table6", "lstm"))
        for m in ("async_lu", "async_bu")
        for _ in range(3)
    )
    # The depth part divides BU's update delay by each model's backward time (table9's timing runs).
    deeper = {(j.model, j.method) for j in quick["lu-staleness-below-bu-grows-with-depth"].jobs}
    assert deeper == {
        ("resnet18", "async_lu"), ("resnet18", "async_bu"), ("resnet50", "async_bu"),
        ("resnet18", "fwd_bwd_timing"), ("resnet50", "fwd_bwd_timing"),
    }  # fmt: skip
    paper = claim_plans("paper", "lu-more-accurate-than-bu")["lu-more-accurate-than-bu"].jobs
    assert {(j.table, j.model) for j in paper} == {
        ("table1", "resnet18"), ("table1", "resnet50"), ("table3", "resnet18"), ("table3", "resnet50"),
        ("table6", "lstm"),
    }  # fmt: skip
    # Stragglers: LU's drops decide, so quick runs LU's 4 delay levels; paper adds DDP and LAP-SGD.
    stragglers = "004-stragglers-cost-under-2.5-points"
    quick_methods = [j.method for j in claim_plans("quick", stragglers, design=True)[stragglers].jobs]
    assert quick_methods == ["async_lu"] * 12
    paper_methods = {j.method for j in claim_plans("paper", stragglers)[stragglers].jobs}
    assert paper_methods == {"async_lu", "ddp", "lapsgd"}


def test_a_layup_claim_plans_the_rows_its_rule_reads_and_its_open_cells_name_them():
    """Table layup has 42 jobs a run index at quick; each LayUp claim runs only the rows its rule
    selects (Need.rows), on both models, and a later look adds runs to its open cells' rows only."""
    from benchmarks.calibration.cases import layup_label
    from benchmarks.calibration.path import simulated_store, truths_of
    from reports.claims import CLAIMS, Evidence

    wire = (1.0, "wire")

    def rows(methods: tuple[str, ...], *delays: tuple[float, str]) -> set[tuple[str, str]]:
        """(model, label) of each method's row on both models, without delay and with each delay:
        the labels the table gives them at quick, with any frozen tuning choice's settings."""
        delays = ((0.0, "compute"), *delays)
        return {
            (m, layup_label(m, method, *d)) for m in ("resnet18", "gpt") for method in methods for d in delays
        }

    expected = {
        "layup-faster-than-ddp": rows(("ddp", "layup")),
        "layup-task-performance": rows(("ddp", "layup")),
        "layup-faster-than-diloco": rows(("plsgd", "lapsgd", "diloco", "layup")),
        "layup-lower-drift": rows(("diloco", "lapsgd", "layup")),
        "layup-robust-to-stragglers": rows(("ddp", "layup"), (1.0, "compute")),
        "layup-robust-to-wire-delays": rows(("layup", "ddp", "plsgd", "diloco", "lapsgd"), wire),
    }
    plans = claim_plans("quick", *expected, design=True)
    for claim_id, labels in expected.items():
        jobs = plans[claim_id].jobs
        assert {(j.model, j.label) for j in jobs} == labels, claim_id
        assert len(jobs) == len(labels) * 3, claim_id  # 3 runs a cell
    # The slowdown cells name both rows of each side: `--until-decided` runs those, not the table.
    for claim_id in ("layup-robust-to-stragglers", "layup-robust-to-wire-delays"):
        claim = CLAIMS[claim_id]
        store = simulated_store(claim, truths_of(claim, "edge", 0), seed=1)
        evidence = Evidence(store.uri, TABLES, "quick").planned(claim).at_look(3)
        cells = [c for r in claim.judge(evidence).results for c in r.cells]
        assert cells and all(c.rows for c in cells), claim_id
        assert {(model, label) for c in cells for _, model, label in c.rows} <= expected[claim_id], claim_id


def test_claims_a_machine_cannot_decide_are_not_run_there():
    """MFU needs a GPU, the multi-device speed-up two: without them their plans are left out, with
    a note; with them they run."""
    cpu = claim_plans("quick", "004-mfu-above-ddp", "lu-speedup-about-ddp", "beta-about-2")
    assert (
        not cpu["004-mfu-above-ddp"].jobs and "a verdict needs 1 GPU(s)" in cpu["004-mfu-above-ddp"].notes[0]
    )
    assert not cpu["lu-speedup-about-ddp"].jobs and cpu["beta-about-2"].jobs
    gpus = claim_plans("quick", "004-mfu-above-ddp", "lu-speedup-about-ddp", gpus=2)
    assert gpus["004-mfu-above-ddp"].jobs and gpus["lu-speedup-about-ddp"].jobs


def test_claims_a_profile_cannot_decide_are_not_run_there_and_say_why():
    """A claim marked not decidable at quick (Claim.undecidable) gets no runs there, with a note
    saying why; at paper its plan stands."""
    from reports.claims import CLAIMS

    claim = "lu-more-accurate-than-bu"
    quick = claim_plans("quick", claim, "async-more-accurate-than-lap-lpp")
    assert not quick[claim].jobs and not quick[claim].later
    assert quick[claim].notes == [f"not run: not decidable at quick: {CLAIMS[claim].undecidable['quick']}"]
    assert quick["async-more-accurate-than-lap-lpp"].jobs  # unmarked: planned
    assert claim_plans("paper", claim)[claim].jobs


def test_estimates_calibrate_then_learn_from_finished_jobs(tmp_path, monkeypatch):
    """Without a like run: the probe's start + its run in the store + the processes' start + the bp
    probe's seconds per sample x the job's samples x the method's prior cost, capped by its time
    budget; after a job of that kind finishes: its wall time."""
    from benchmarks.engine import planner, speed
    from benchmarks.engine.rank import get_dataset
    from benchmarks.engine.tracking import NullTracker

    jobs = claim_plans("smoke", "lu-more-accurate-than-bu", runs=2)["lu-more-accurate-than-bu"].jobs
    lu = next(j for j in jobs if j.method == "async_lu")
    probe = speed.Probe(per_sample_s=1e-3, start_s=2.0)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))  # not another test's kept measurement
    monkeypatch.setattr(speed.Speed, "probe", lambda self, job, dataset: probe)
    estimates = planner.Estimates(NullTracker(), "smoke", speed.Speed(None))
    data = get_dataset(lu, None)
    seconds = (
        lu.config.max_epochs * (data.num_train + data.num_test / 3) * 1e-3 * speed.cost_vs_bp("async_lu")
    )
    assert lu.devices == 1 and estimates.job_s(lu) == pytest.approx(
        2.0 + speed.RUN_S + min(seconds, lu.config.time_budget_s or seconds)
    )
    estimates._walls[lu.table] = {}  # this table's store read (empty)
    estimates.record(lu, 42.0)
    assert estimates.job_s(lu) == 0.0  # finished
    twin = next(j for j in jobs if j.method == "async_lu" and j.key != lu.key)
    assert estimates.job_s(twin) == 42.0  # learned


def test_a_speed_measurement_is_kept_for_the_next_command_and_taken_again_when_old(tmp_path, monkeypatch):
    """A command that measured a workload's speed (or a process's start) leaves it on disk; the next
    command on this host reads it instead of measuring; one older than a day is measured again."""
    from benchmarks.engine import speed
    from methods.lapsgd.config import LapConfig

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    probes, starts = [], []
    monkeypatch.setattr(
        speed.Speed, "probe", lambda self, job, data: probes.append(1) or speed.Probe(1e-3, 1.0)
    )
    fork = mp.get_context("fork")  # the child runs the stub below
    monkeypatch.setattr(speed.mp, "get_context", lambda _: starts.append(1) or fork)
    monkeypatch.setattr(speed, "_process_started", lambda: None)
    jobs = [smoke_job("bp"), replace(smoke_job("lapsgd", LapConfig(workers_per_device=1)), devices=2)]
    first = [speed.Speed(None).job_s(job, 0.0) for job in jobs]
    again = [speed.Speed(None).job_s(job, 0.0) for job in jobs]  # two more commands
    assert (len(probes), len(starts)) == (1, 1) and again == first
    monkeypatch.setattr(speed, "KEPT_S", -1.0)  # a day has passed
    speed.Speed(None).job_s(jobs[1], 0.0)
    assert (len(probes), len(starts)) == (2, 2)


def test_processes_start_as_many_at_once_as_there_are_cores(monkeypatch):
    """A job of this process pays no process start; 2 ranks with 2 LAP-SGD workers each start 6
    processes, on 2 cores 3 rounds of one process's start; on one device only the workers start."""
    from benchmarks.engine import speed
    from methods.lapsgd.config import LapConfig

    monkeypatch.setattr(speed, "usable_cores", lambda: 2)
    cal = speed.Speed(None)
    cal._process_s = 2.0
    job = smoke_job("lapsgd", LapConfig(workers_per_device=2))
    assert cal.processes_s(replace(job, devices=2)) == 2.0 * 3
    assert cal.processes_s(job) == 2.0  # one device: its 2 workers only, the rank is this process
    assert cal.processes_s(smoke_job("bp")) == 0.0
    assert cal.processes_s(replace(smoke_job("ddp"), devices=2)) == 2.0


def test_the_speed_probe_measures_this_machine():
    from benchmarks.engine.rank import get_dataset
    from benchmarks.engine.speed import Speed

    job = claim_plans("smoke", "lu-more-accurate-than-bu")["lu-more-accurate-than-bu"].jobs[0]
    probe = Speed(None).probe(job, get_dataset(job, None))
    assert 1e-6 <= probe.per_sample_s < 1.0  # seconds per training sample of a smoke ResNet-18
    assert 0.0 <= probe.start_s < 60.0


def test_the_speed_probe_keeps_the_faster_of_two_epochs(monkeypatch):
    """A stall during one of the probe's epochs (a shared machine) does not inflate the estimate;
    what the short epoch took beyond its samples is the start; a train split that fits in 2
    batches is timed as one epoch."""
    from types import SimpleNamespace

    from benchmarks.engine import runner, speed
    from benchmarks.engine.rank import get_dataset

    job = claim_plans("smoke", "lu-more-accurate-than-bu")["lu-more-accurate-than-bu"].jobs[0]
    clock = [0.0]
    calls = []

    def fake_run_job(probe, devices, tracker, progress, dataset):
        calls.append(dataset.num_train)
        stall = 30.0 if len(calls) == 3 else 0.0  # the first 8-batch epoch stalls
        samples = dataset.num_train + dataset.num_test / 3
        clock[0] += 1.0 + 2e-3 * samples + stall  # 1 s of start-up, 2 ms a sample

    monkeypatch.setattr(runner, "run_job", fake_run_job)
    monkeypatch.setattr(speed, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    data = get_dataset(job, None)
    probe = speed.Speed(None).probe(job, data)
    assert probe.per_sample_s == pytest.approx(2e-3) and probe.start_s == pytest.approx(1.0)
    assert len(calls) == 5
    tiny = data.subset(job.config.batch_size, 8)
    one_epoch = (1.0 + 2e-3 * (tiny.num_train + 8 / 3)) / tiny.num_train
    assert speed.Speed(None).probe(job, tiny).per_sample_s == pytest.approx(one_epoch)


def test_the_papers_claims_run_before_the_extensions():
    from benchmarks.engine.planner import Estimates, priority
    from benchmarks.engine.tracking import NullTracker

    plans = claim_plans("smoke", "gpt-lu-speedup", "beta-about-2", "lu-faster-than-pipelines")
    estimates = Estimates(NullTracker(), "smoke")
    order = sorted(plans.values(), key=lambda p: priority(p, estimates, set()))
    assert [p.claim.extension for p in order] == [False, True, True] and order[0].claim.id == "beta-about-2"


@pytest.mark.slow
def test_the_speed_estimate_is_within_1_5x_of_each_workloads_wall_time(tmp_path):
    """On every workload of `run claims --profile smoke` (dataset, model, spawned processes): the
    calibration's estimate of its first job against the job's wall time through the runner, the
    faster of two runs (one stall on a shared machine is not the estimate's error)."""
    import time
    from dataclasses import replace

    from benchmarks.engine.planner import START_S, plan_claims, select_claims
    from benchmarks.engine.runner import run_job
    from benchmarks.engine.speed import Speed
    from benchmarks.engine.tracking import Tracker
    from benchmarks.tables import TABLES
    from methods import METHODS
    from reports.claims import CLAIMS

    from .conftest import SHARED_DATA

    plans = plan_claims(select_claims(CLAIMS, None), dict(TABLES), "smoke", None, None)
    workloads: dict[tuple, object] = {}
    for job in (job for plan in plans for job in plan.jobs):
        if not METHODS[job.method].measures:
            workers = getattr(job.method_config, "workers_per_device", 0)
            workloads.setdefault((job.dataset, job.model, job.devices, workers), job)
    assert len(workloads) >= 6, sorted(workloads)
    estimator, tracker = Speed(SHARED_DATA), Tracker(empty_store(tmp_path / "mlflow.db"))
    ratios = {}
    for workload, job in workloads.items():
        estimate = estimator.job_s(job, START_S)
        walls = []
        for seed in (job.seed, job.seed + 100):
            started = time.perf_counter()
            run_job(replace(job, seed=seed), SHARED_DATA, tracker, progress=False)
            walls.append(time.perf_counter() - started)
        ratios[workload] = estimate / min(walls)
    assert all(1 / 1.5 <= ratio <= 1.5 for ratio in ratios.values()), ratios
