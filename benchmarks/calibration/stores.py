"""Synthetic MLflow stores of known truth, written as the runner writes runs (docs/log/fidelity.md,
"The rules' error rates"): the whole path of a claim, from the store's runs through run
selection, targets, censoring, pairing and guards to its verdict, on evidence whose truth is set.

A `RowTruth` says how a table row's runs behave: seconds per epoch, the accuracy it levels off
at, and runs that diverge or fail. `write_table` writes one run per job of the table at a
profile (the table's own jobs, their params and tags, so each run is read back as its row), with
a learning curve per epoch. `PATH_STORES` are the stores `calibrate-claims --path-pins` decides, so a
change anywhere on that path (which runs count, which target, how a missed target is censored)
changes the pins until the rule's version changes.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.metric import ACCURACY, Metric
from core.result import Hardware

SYNTHETIC_HARDWARE = Hardware("cpu", "synthetic CPU", 1, 2)
GPT_BLOCKS = 6  # models/gpt.py's depth where a job sets none


@dataclass(frozen=True)
class RowTruth:
    """A row's runs: `seconds` per epoch, the value of the workload's metric they level off at
    (`plateau`) with a rise of `tau` epochs (a metric to lower, a loss, falls from `start`),
    run-to-run spreads (`time_spread` in log seconds, `acc_spread` in the metric's units), the run
    indices that diverge or fail at an epoch (`ends`: run index -> (status, epoch)), and other
    per-epoch metrics at a level per run (`extra`: name -> (median, sd of each run's log)); a
    measuring job's row (Table 9's timing) has only `extra`, its recorded values, and a run of
    `ends` fails before recording them."""

    seconds: float
    plateau: float
    tau: float = 1.5
    time_spread: float = 0.05
    acc_spread: float = 0.005
    ends: dict[int, tuple[str, int]] = field(default_factory=dict)
    start: float = 8.0  # a metric to lower, at step 0: bits per byte of a uniform guess over bytes
    extra: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The share of the run-to-run variance (of the plateau and of the speed) that is the seed's:
    # shared by every row's run of one index and model, the correlation of two rows on one seed.
    seed_share: float = 0.0
    # An async method's per-tensor staleness (`staleness.json`, at its last epoch): each Transformer
    # block's at (the output block's, the rise per block from the output, the sd of a run's rise).
    block_staleness: tuple[float, float, float] = ()


@dataclass(frozen=True)
class PerfTruth:
    """A `perf NAME` benchmark's results: each number's median and the sd of each result's log
    (name -> (median, sd))."""

    numbers: dict[str, tuple[float, float]]


def drawn(levels: dict[str, tuple[float, float]], rng: np.random.Generator) -> dict[str, float]:
    """One run's values of log-normal levels (name -> (median, sd of the log))."""
    return {k: median * math.exp(rng.normal(0.0, sd)) for k, (median, sd) in levels.items()}


def curve(
    truth: RowTruth,
    epochs: int,
    run_index: int,
    rng: np.random.Generator,
    metric: Metric = ACCURACY,
    budget_s: float = 0.0,
    seed: tuple[float, float] = (0.0, 0.0),
) -> tuple[list, list, str]:
    """(the metric per epoch, training clock per epoch, status) of one run, which stops after the
    epoch its training clock reaches `budget_s` at (0: no budget), as the runner stops it; `seed`:
    the standard normal draws (speed, plateau) its seed shares with the other rows' runs of its index."""
    status, last = truth.ends.get(run_index, ("finished", epochs))
    own, shared = math.sqrt(1 - truth.seed_share), math.sqrt(truth.seed_share)
    speed = truth.seconds * math.exp(truth.time_spread * (own * rng.normal() + shared * seed[0]))
    if budget_s:
        epochs = min(epochs, max(1, math.ceil(budget_s / speed)))
    plateau = truth.plateau + truth.acc_spread * (own * rng.normal() + shared * seed[1])
    if metric.direction == "max":
        values = [plateau * (1 - math.exp(-(e + 1) / truth.tau)) for e in range(min(last, epochs))]
    else:
        fall = truth.start - plateau
        values = [plateau + fall * math.exp(-(e + 1) / truth.tau) for e in range(min(last, epochs))]
    if status == "diverged" and values:
        # A diverged run's last evaluation: chance on CIFAR-10, or back where a loss started.
        values[-1] = 0.1 if metric.direction == "max" else truth.start
    times = [speed * (e + 1) for e in range(len(values))]
    return values, times, status


def write_table(
    tracker, table: str, profile: str, truths: dict[str, RowTruth], runs: int, seed: int = 0
) -> int:
    """Write one run per job of `table` at `profile` whose row's label is in `truths`, `runs` per
    cell, as the runner writes it (`write_job`); returns the number of runs written."""
    from ..tables import TABLES

    jobs = [j for j in TABLES[table].jobs(profile, runs=runs) if j.row.label in truths]
    for job in jobs:
        write_job(tracker, job, truths[job.row.label], seed)
    return len(jobs)


def write_job(tracker, job, truth: RowTruth, seed: int = 0, hardware: Hardware = SYNTHETIC_HARDWARE) -> str:
    """One run of `job` as the runner writes it (its tags, params, per-epoch metrics and final
    status), its curve of the table's metric drawn from `truth` by its run index, row and model;
    returns its run id."""
    from methods import get_method

    from ..engine.runner import job_tags
    from ..tables import TABLES

    rng = np.random.default_rng([seed, job.run_index, sum(map(ord, job.row.label + job.model))])
    tags = {**job_tags(job), "hardware": str(hardware)}  # the runner's, on made-up hardware
    source = "synthetic" if job.synthetic_data else f"simulated {job.dataset}"  # as a dataset's `source`
    params = {**job.params(), "data_source": source, **hardware.params()}
    run_id = tracker.start(job.table, job.run_name, tags, params)
    if get_method(job.method).measures:  # a measurement records its values once (ctx.record)
        if job.run_index in truth.ends:  # it failed before recording any
            tracker.finish(run_id, "failed", dict(stop_reason="failed", error="synthetic failure"))
        else:
            tracker.log_metrics(run_id, timing(drawn(truth.extra, rng)), step=0)
            tracker.finish(run_id, "finished", dict(stop_reason="measured"))
        return run_id
    metric = TABLES[job.table].metric_of(job.model)
    epochs, budget = job.config.max_epochs, job.config.time_budget_s
    seed_draws = np.random.default_rng([seed, job.run_index, sum(map(ord, job.model))]).normal(size=2)
    values, times, status = curve(truth, epochs, job.run_index, rng, metric, budget, tuple(seed_draws))
    extra = drawn(truth.extra, rng)
    for epoch, (value, seconds) in enumerate(zip(values, times, strict=True)):
        metrics = {
            metric.name: value,
            "train_time_s": seconds,
            "train_loss": 1.0 / (epoch + 1),
            "mem_peak_gib": 0.1,
        }
        tracker.log_metrics(run_id, {**metrics, **extra}, step=epoch)
    if truth.block_staleness and values:
        tracker.log_table(
            run_id, staleness_table(truth.block_staleness, job, len(values) - 1, rng), "staleness.json"
        )
    stop = status if status != "finished" else "max_epochs" if len(values) == epochs else "time_budget"
    tracker.finish(run_id, status, dict(stop_reason=stop))
    return run_id


def staleness_table(block_staleness: tuple[float, float, float], job, epoch: int, rng) -> dict[str, list]:
    """One epoch of `staleness.json` as the async engine logs it (tensors in the model's order,
    input first): two tensors per block of the job's GPT, at one run's rise per block."""
    at_output, rise, sd = block_staleness
    rise = rise + rng.normal(0.0, sd)
    blocks = job.config.depth or GPT_BLOCKS
    names = [f"blocks.{b}.{part}.weight" for b in range(blocks) for part in ("attn", "mlp")]
    stale = [at_output + rise * (blocks - 1 - int(n.split(".")[1])) for n in names]
    columns = dict(tensor=names, depth=list(range(len(names))), staleness_mean=stale, staleness_max=stale)
    return {"epoch": [epoch] * len(names), **columns}


def timing(values: dict[str, float]) -> dict[str, float]:
    """A timing job's record: its passes' seconds and β = backward / forward, as methods/timing.py
    derives it (so a run's β is the ratio of its own two times)."""
    if "forward_s" in values and "backward_s" in values:
        return {**values, "beta": values["backward_s"] / values["forward_s"]}
    return values


def write_perf(tracker, name: str, truth: PerfTruth, index: int, seed: int, hardware: Hardware) -> str:
    """Result `index` of `perf NAME` as Tracker.log_perf writes it (a finished run of experiment
    `perf`, tagged with the benchmark and the hardware, its numbers at step 0); returns its run id."""
    rng = np.random.default_rng([seed, index, sum(map(ord, name))])
    run_id = tracker.start("perf", f"perf-{name}", dict(perf=name, hardware=str(hardware)), hardware.params())
    tracker.log_metrics(run_id, drawn(truth.numbers, rng), step=0)
    tracker.finish(run_id, "finished", dict(stop_reason="measured"))
    return run_id


# The claims' paths, table1: 000's ordering (BU fastest, LU most accurate, LAP/LPP slower and less
# accurate), then the same with a BU run that diverged before the target, an LPP run that never
# reached it, and a LAP run that failed after reaching it.
TABLE1_PAPER = {
    "async_lu": RowTruth(seconds=10.0, plateau=0.80),
    "async_bu": RowTruth(seconds=7.0, plateau=0.78),
    "lapsgd": RowTruth(seconds=20.0, plateau=0.74),
    "lppsgd": RowTruth(seconds=18.0, plateau=0.75),
}
TABLE1_TROUBLED = {
    **TABLE1_PAPER,
    "async_bu": RowTruth(seconds=7.0, plateau=0.78, ends={2: ("diverged", 2)}),
    "lppsgd": RowTruth(seconds=18.0, plateau=0.75, ends={1: ("failed", 6)}),
    "lapsgd": RowTruth(seconds=20.0, plateau=0.74, ends={0: ("diverged", 8)}),
}
# Table 6: LU about 1.8x faster to its best than BU on IMDb, the same accuracy; then a BU run that
# failed before its first evaluation. pd-stragglers: LU's accuracy falls 0.5-1.5 points with the delay.
TABLE6_PAPER = {
    "async_lu": RowTruth(seconds=6.5, plateau=0.85, acc_spread=0.004),
    "async_bu": RowTruth(seconds=12.0, plateau=0.85, acc_spread=0.004),
}
TABLE6_FAILED = {**TABLE6_PAPER, "async_bu": RowTruth(seconds=12.0, plateau=0.85, ends={1: ("failed", 0)})}
STRAGGLERS = {
    "async_lu": RowTruth(seconds=30.0, plateau=0.40, tau=0.5),
    "async_lu[straggler_delay_frac=0.25]": RowTruth(seconds=33.0, plateau=0.395, tau=0.5),
    "async_lu[straggler_delay_frac=0.5]": RowTruth(seconds=36.0, plateau=0.39, tau=0.5),
    "async_lu[straggler_delay_frac=1]": RowTruth(seconds=42.0, plateau=0.385, tau=0.5),
}
PATH_STORES = {
    "table1 paper order, 3 runs": ((("table1", TABLE1_PAPER),), 3),
    "table1 diverged, failed and short runs, 3 runs": ((("table1", TABLE1_TROUBLED),), 3),
    "table1 paper order, 5 runs": ((("table1", TABLE1_PAPER),), 5),
    "table6 and pd-stragglers, 3 runs": ((("table6", TABLE6_PAPER), ("pd-stragglers", STRAGGLERS)), 3),
    "table6 with a BU run failed before measuring, 3 runs": ((("table6", TABLE6_FAILED),), 3),
}
PATH_CLAIMS = (
    "bu-fastest-to-target",
    "lu-faster-than-lap-lpp",
    "async-more-accurate-than-lap-lpp",
    "lu-more-accurate-than-bu",
    "imdb-lu-twice-as-fast",
    "004-stragglers-cost-under-2.5-points",
)
PATH_PROFILE = "quick"


def path_pins() -> dict[str, dict[str, str]]:
    """Each path claim's verdict and cells on each of PATH_STORES, read from a real MLflow store
    by the code that reads real runs (`Claim.judge` on `Evidence`), with its rule version."""
    from reports.claims import CLAIMS, Evidence

    from ..engine.tracking import Tracker
    from ..tables import TABLES

    out: dict[str, dict[str, str]] = {claim: {"version": CLAIMS[claim].version} for claim in PATH_CLAIMS}
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, (tables, runs)) in enumerate(PATH_STORES.items()):
            uri = f"sqlite:///{Path(folder) / f'store{index}.db'}"
            tracker = Tracker(uri)
            for table, truths in tables:
                write_table(tracker, table, PATH_PROFILE, truths, runs)
            evidence = Evidence(uri, dict(TABLES), PATH_PROFILE)
            for claim in PATH_CLAIMS:
                verdict = CLAIMS[claim].judge(evidence)
                cells = "; ".join(
                    f"{c.name} {c.estimate[0]:.3f} n={c.count} look={c.look} failed={c.failed}"
                    for c in verdict.cells
                )
                out[claim][name] = f"{verdict.verdict}: {cells}"
    return out
