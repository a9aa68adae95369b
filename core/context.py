"""The training context: what a method trains through. It owns the clock, evaluation, logging and
the stopping rules (the machine's metrics per epoch are core/epoch_metrics.py's); a method asks it
for epochs and batches and hands it each epoch's meter.

A method's loop is `for epoch in ctx.epochs(): for batch in ctx.train_batches(epoch): ...;
ctx.end_epoch(meter)`. The clock runs from the start of each epoch to `end_epoch`, so it counts
data loading and every method overhead, and is paused while evaluating (AlgoPerf's rule).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .config import TrainConfig
from .epoch_metrics import EpochMetrics
from .errors import Diverged, UserError
from .inputs import to_model_layout, uses_channels_last
from .job import Job
from .metric import ACCURACY, Metric
from .metrics_log import MetricsLogger
from .result import RunResult
from .runtime.memory import peak_bytes
from .schedule import lr_at

log = logging.getLogger(__name__)

# Why a run stopped; None while it runs. The index is what rank 0 broadcasts to the other ranks.
STOP_REASONS = (None, "max_epochs", "patience", "time_budget", "diverged", "measured")


class _Stopwatch:
    """Accumulates time only while running: the training clock, paused during evaluation."""

    def __init__(self):
        self.total, self._since = 0.0, None

    def resume(self) -> None:
        if self._since is None:
            self._since = time.perf_counter()

    def pause(self) -> None:
        if self._since is not None:
            self.total += time.perf_counter() - self._since
            self._since = None

    def elapsed(self) -> float:
        return self.total + (time.perf_counter() - self._since if self._since is not None else 0.0)


class EpochMeter:
    """Sums of loss and correct predictions kept as tensors on the device: no sync per step."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.samples = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Count one batch (mean loss `loss` over `targets`)."""
        with torch.no_grad():
            self.loss_sum += loss.detach() * len(targets)
            self.correct += (logits.argmax(1) == targets).sum()
        self.samples += len(targets)

    def add_totals(self, loss_sum: torch.Tensor, correct: torch.Tensor, samples: int) -> None:
        """Count batches summed elsewhere (e.g. by worker processes): their loss sum, correct
        predictions and samples."""
        with torch.no_grad():
            self.loss_sum += loss_sum
            self.correct += correct.to(self.correct.dtype)
        self.samples += samples

    def result(self) -> tuple[float, float, int]:
        """(mean loss, accuracy, samples) of the epoch."""
        n = max(self.samples, 1)
        return self.loss_sum.item() / n, self.correct.item() / n, self.samples


def check_batch_fits(batch_size: int, dataset: Any, world: int) -> None:
    """Refuse a batch larger than one process's shard of the training set (no step would run):
    checked once, by the runner, before a run exists (`world`: the processes the data is shared
    among, 1 where every process reads the whole epoch, `Method.shards_data`)."""
    if dataset.steps_per_epoch(batch_size, world) < 1:
        shard = dataset.num_train // world
        holder = "each process" if world > 1 else "the dataset"
        raise UserError(
            f"batch_size {batch_size} exceeds the {shard} training samples of {holder}; "
            f"use --set batch_size=N with N <= {shard}"
        )


class TrainContext:
    """Data, model, the clock, evaluation, logging and stopping for one process of a job."""

    def __init__(
        self,
        job: Job,
        dataset: Any,  # a datasets.Dataset: train_batches, test_batches, steps_per_epoch, spec
        model: torch.nn.Module,
        device: torch.device,
        log_metrics: Callable[[dict[str, float], int], None],
        rank: int = 0,
        world: int = 1,
        progress: bool = True,
        log_table: Callable[[str, dict[str, list]], None] | None = None,
        shards_data: bool = True,
    ):
        self.job, self.dataset, self.model, self.device = job, dataset, model, device
        self.rank, self.world = rank, world
        # Data-parallel ranks each read their own shard; the stages of a pipeline all read the whole
        # epoch (its first stage the inputs, its last the targets): `Method.shards_data`.
        self._data_rank, self._data_world = (rank, world) if shards_data else (0, 1)
        # The workload's metric (accuracy for the paper's classifiers): patience and the best epoch
        # follow it; the best accuracy is kept too (`train --json`'s best_test_acc).
        self.metric: Metric = getattr(dataset, "metric", ACCURACY)
        # The engine hands other ranks loggers that record nothing (only rank 0 writes to MLflow).
        self.metrics_log = MetricsLogger(log_metrics, ("train_loss", "test_loss", self.metric.name))
        self._log_table = log_table if log_table is not None else (lambda name, columns: None)
        self.steps_per_epoch = dataset.steps_per_epoch(self.config.batch_size, self._data_world)
        self.channels_last = uses_channels_last(self.config, dataset.spec)
        self._clock = _Stopwatch()
        self._wall_start = time.perf_counter()
        self.epoch = 0
        self._stop_reason: str | None = None
        self.best_value, self.best_epoch, self.time_to_best_s = self.metric.worst, -1, 0.0
        self.best_test_acc = -1.0
        self.last: dict[str, float] = {}
        self._measured: dict[str, float] = {}
        self.machine = EpochMetrics(device, rank)  # throughput, MFU, memory, contention
        self._since_best = 0
        self._bar = tqdm(
            total=self.config.max_epochs,
            desc=job.name,
            unit="epoch",
            disable=None if progress else True,
            leave=False,
        )

    # --- what a method reads ---------------------------------------------------------------------
    @property
    def config(self) -> TrainConfig:
        """The hyperparameters every method shares."""
        return self.job.config

    @property
    def method_config(self) -> Any:
        """The method's own hyperparameters (its `Config` dataclass)."""
        return self.job.method_config

    @property
    def stop_reason(self) -> str | None:
        """Why training stops (one of STOP_REASONS), None while it goes on."""
        return self._stop_reason

    @property
    def train_time_s(self) -> float:
        """The training clock now (seconds)."""
        return self._clock.elapsed()

    # --- what a method calls ---------------------------------------------------------------------
    def epochs(self) -> Iterator[int]:
        """Epoch numbers 0, 1, ... until a stopping rule fires at an epoch end; the clock runs
        from each epoch's start."""
        try:
            while self._stop_reason is None:
                started = self.epoch
                self._clock.resume()
                yield started
                if self.epoch == started and self._stop_reason is None:
                    raise RuntimeError(
                        f"method {self.job.method} did not call ctx.end_epoch() in epoch {started}"
                    )
        finally:
            self._bar.close()

    def train_batches(
        self, epoch: int, lockstep: bool = False, positions: Iterable[int] | None = None
    ) -> Iterator:
        """This process's shard of epoch `epoch`, with the clock running; ends early at the time budget.

        `lockstep`: the ranks step together (a collective in every step: DDP's all-reduce, a
        pipeline's sends), so they must stop at the same step: with a time budget, whether to go on
        is agreed before each batch (one small all-reduce; none without a budget).
        `positions`: the batches of the whole epoch's order (not a shard) to read, one per value,
        as the processes draw them from a counter they share (`layup`).
        """
        self._clock.resume()
        agree = lockstep and self.world > 1 and bool(self.config.time_budget_s)
        rank, world = (0, 1) if positions is not None else (self._data_rank, self._data_world)
        for inputs, targets in self.dataset.train_batches(
            epoch, self.config.batch_size, self.job.seed, self.device, rank, world, positions=positions
        ):
            exhausted = self.budget_exhausted()
            if agree:
                exhausted = self._any_rank(exhausted)
                if exhausted:
                    self._stop_reason = "time_budget"
            if exhausted:
                return
            yield self.model_layout(inputs), targets

    def budget_exhausted(self) -> bool:
        """True (and the stop requested) once the training clock has reached the time budget."""
        if self.config.time_budget_s and self._clock.elapsed() >= self.config.time_budget_s:
            self._stop_reason = "time_budget"
        return self._stop_reason == "time_budget"

    def request_stop(self, reason: str) -> None:
        """End training at the next epoch end (or now, outside `epochs()`) for `reason`."""
        if reason not in STOP_REASONS[1:]:
            raise ValueError(f"unknown stop reason {reason!r}; valid: {', '.join(STOP_REASONS[1:])}")
        self._stop_reason = reason

    def model_layout(self, inputs):
        """Image batches in channels_last when the config asks (the model's memory format)."""
        return to_model_layout(inputs, self.channels_last)

    def meter(self) -> EpochMeter:
        """A fresh per-epoch loss/accuracy accumulator on the training device."""
        return EpochMeter(self.device)

    def log_table(self, artifact_file: str, columns: dict[str, list]) -> None:
        """Rows for a table artifact of the run (appended to it if it exists): values too many to be
        metrics, e.g. one row per parameter tensor per epoch."""
        self._log_table(artifact_file, columns)

    def record(self, values: dict[str, float]) -> None:
        """A measurement's results: logged (step 0) and added to the run's summary, with the share
        of the machine other processes used while it measured (the run is tagged contended above
        CONTENDED_SHARE, as a training run is by its epochs)."""
        self._measured.update(values)
        self.metrics_log.measurement(values, self.machine.contention())

    def end_epoch(
        self,
        meter: EpochMeter,
        model: torch.nn.Module | None = None,
        extra: dict[str, float] | None = None,
        clock_runs: bool = False,
    ) -> bool:
        """Stop the clock, evaluate, log the epoch and a method's `extra` metrics, apply the stopping rules.

        `clock_runs`: the method trains on while this evaluates (LAP-SGD's authors_code reading), so
        the clock is not paused. Returns True when training ends.
        """
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        if not clock_runs:
            self._clock.pause()
        clock_s = self._clock.elapsed()
        epoch_time = clock_s - self.last.get("train_time_s", 0.0)
        train_loss, train_acc, samples, budget_hit, memory = self._train_stats(meter)
        if not math.isfinite(train_loss):
            raise Diverged(f"train loss is {train_loss} in epoch {self.epoch}")
        test_loss = test_acc = float("nan")
        held_out = self.dataset.held_out(test_loss, test_acc)  # NaNs on ranks that do not evaluate
        if self.rank == 0:  # rank 0 evaluates its replica and decides for every rank
            with self._evaluation_threads(clock_runs):
                test_loss, test_acc = self.evaluate(model or self.model)
            held_out = self.dataset.held_out(test_loss, test_acc)
            self._decide(test_loss, held_out, budget_hit)
        self._share_decision()
        if self._stop_reason == "diverged":
            raise Diverged(f"test loss is {test_loss} after epoch {self.epoch}")
        self.last = dict(
            train_loss=train_loss,
            train_acc=train_acc,
            **held_out,
            lr=lr_at(self.epoch + 1 - 1 / self.steps_per_epoch, self.config),
            train_time_s=clock_s,
            wall_time_s=time.perf_counter() - self._wall_start,
            **self.machine.epoch(samples, epoch_time, memory),
        )
        diagnostics = {**(extra or {}), **self.machine.diagnostics()}
        if self.rank == 0:
            self.metrics_log.epoch(self.epoch, self.last, diagnostics, clock_s)
        self.epoch += 1
        self._bar.update(1)
        self._bar.set_postfix(
            {self.metric.name: f"{self.last[self.metric.name]:.3f}", "loss": f"{train_loss:.3f}"}
        )
        return self._stop_reason is not None

    @contextmanager
    def _evaluation_threads(self, clock_runs: bool) -> Iterator[None]:
        """On a CPU, evaluate with the process's whole share of the cores where the method lowered
        its intra-op threads for threads of its own (the async methods: a third each), idle while
        this evaluates; not where the method trains on meanwhile (`clock_runs`) or the user set
        `threads`."""
        threads, share = torch.get_num_threads(), max(1, (os.cpu_count() or 1) // self.world)
        if self.device.type != "cpu" or clock_runs or self.config.threads or threads >= share:
            yield
            return
        torch.set_num_threads(share)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def evaluate(self, model: torch.nn.Module) -> tuple[float, float]:
        """(mean loss, accuracy) per target over the whole test split, in eval mode (a target is a
        sample of a classifier, a position of a language model's windows)."""
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        targets_seen = 0
        with torch.inference_mode():
            for inputs, targets in self.dataset.test_batches(self.config.eval_batch_size, self.device):
                logits = model(self.model_layout(inputs))
                loss_sum += F.cross_entropy(logits, targets, reduction="sum")
                correct += (logits.argmax(1) == targets).sum()
                targets_seen += len(targets)
        model.train(was_training)
        return loss_sum.item() / max(targets_seen, 1), correct.item() / max(targets_seen, 1)

    # --- the stopping rules ----------------------------------------------------------------------
    def _decide(self, test_loss: float, held_out: dict[str, float], budget_hit: bool) -> None:
        """Rank 0: the best value of the workload's metric so far (in `held_out`, this epoch's
        evaluation), and whether a stopping rule fires after this epoch."""
        if not math.isfinite(test_loss):
            self._stop_reason = "diverged"
            return
        self.best_test_acc = max(self.best_test_acc, held_out.get("test_acc", -1.0))
        value = held_out[self.metric.name]
        if self.metric.better(value, self.best_value):
            self.best_value, self.best_epoch, self.time_to_best_s = value, self.epoch, self._clock.elapsed()
            self._since_best = 0
        else:
            self._since_best += 1
        if self._stop_reason is not None:
            return
        if budget_hit:
            self._stop_reason = "time_budget"
        elif self.epoch + 1 >= self.config.max_epochs:
            self._stop_reason = "max_epochs"
        elif self._since_best >= self.config.patience:
            self._stop_reason = "patience"
        elif self.config.time_budget_s and self._clock.elapsed() >= self.config.time_budget_s:
            self._stop_reason = "time_budget"

    def _train_stats(self, meter: EpochMeter) -> tuple[float, float, int, bool, float]:
        """(mean train loss, train accuracy, samples, any rank hit the time budget, the job's peak
        memory in bytes since the last epoch: summed over its processes) over all ranks."""
        budget_hit = self._stop_reason == "time_budget"
        memory = float(peak_bytes(self.device))  # core/runtime/memory.py
        if self.world == 1:
            return (*meter.result(), budget_hit, memory)
        import torch.distributed as dist

        totals = torch.stack(
            [
                meter.loss_sum,
                meter.correct.double(),
                torch.tensor(float(meter.samples), dtype=torch.float64, device=self.device),
                torch.tensor(float(budget_hit), dtype=torch.float64, device=self.device),
                torch.tensor(memory, dtype=torch.float64, device=self.device),
            ]
        )
        dist.all_reduce(totals)
        loss_sum, correct, samples, hits, memory = totals.tolist()
        return loss_sum / max(samples, 1), correct / max(samples, 1), int(samples), hits > 0, memory

    def _any_rank(self, flag: bool) -> bool:
        """Whether `flag` holds on any rank (a collective: every rank calls it)."""
        import torch.distributed as dist

        votes = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(votes, op=dist.ReduceOp.MAX)
        return bool(votes.item())

    def _share_decision(self) -> None:
        """Every rank adopts rank 0's stop decision (the epoch end is the ranks' one sync point)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        code = torch.tensor([STOP_REASONS.index(self._stop_reason)], device=self.device)
        dist.broadcast(code, src=0)
        self._stop_reason = STOP_REASONS[int(code.item())]

    # --- what the runner reads -------------------------------------------------------------------
    def finish(self, status: str) -> None:
        """End the clock (the job is over); a diverged job's stop reason is `diverged`."""
        self._clock.pause()
        if status == "diverged":
            self._stop_reason = "diverged"

    def result(self, status: str, run_id: str) -> RunResult:
        """How the job ended, with a measurement's values where it recorded any."""
        return RunResult.of(
            self.job,
            run_id,
            status,
            self._stop_reason,
            metric=self.metric.name,
            best_metric=self.best_value if math.isfinite(self.best_value) else None,
            final_metric=self.last.get(self.metric.name),
            best_test_acc=max(self.best_test_acc, 0.0),
            final_test_acc=self.last.get("test_acc"),
            final_test_loss=self.last.get("test_loss"),
            final_train_loss=self.last.get("train_loss"),
            epochs=self.epoch,
            train_time_s=round(self._clock.elapsed(), 3),
            time_to_best_s=round(self.time_to_best_s, 3),
            samples_per_s=self.last.get("samples_per_s"),
            mfu=self.last.get("mfu"),
            **self.machine.end_of_run(),
            measured=dict(self._measured),
        )
