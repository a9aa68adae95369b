"""Jobs and the training context: the clock, evaluation, logging and stopping every method shares."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

import datasets
import methods
from methods.optim import lr_at
from models import build_model, check_model

from .config import TrainConfig, flatten
from .errors import Diverged
from .tracking import Tracker, git_sha, hardware

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One training (or measurement) run: a cell of a table for one seed."""

    table: str
    dataset: str
    model: str
    method: str
    profile: str
    config: TrainConfig
    method_config: object = field(default_factory=methods.NoConfig)
    seed: int = 0
    run_index: int = 0
    devices: int = 1
    kind: str = "train"  # "train": method.train; other kinds are measurements (benchmarks.measurements)
    synthetic: bool = (
        False  # random inputs in the dataset's shape (e.g. for timing, where pixels don't matter)
    )

    @property
    def synthetic_data(self) -> bool:
        """Smoke runs use synthetic data in the dataset's shape: seconds per run, no files needed."""
        return self.synthetic or self.profile == "smoke" or self.dataset == "synthetic"

    def params(self) -> dict[str, object]:
        """Every hyperparameter, flattened: the MLflow params and the input of the job key."""
        return {**flatten(self.config, self.method_config), "devices": self.devices}

    @property
    def key(self) -> str:
        """Hash of (table, dataset, model, method, profile, seed, hyperparameters): resume by it."""
        ident = [self.table, self.dataset, self.model, self.method, self.profile, self.seed, self.params()]
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def identity(self, run_id: str) -> dict[str, str]:
        """The fields that name a job's run in every summary."""
        return dict(
            run_id=run_id, method=self.method, dataset=self.dataset, model=self.model, profile=self.profile
        )

    @property
    def name(self) -> str:
        """A readable run name."""
        return f"{self.dataset}-{self.model}-{self.method}-{self.profile}-run{self.run_index}"


class Stopwatch:
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

    def result(self) -> tuple[float, float, int]:
        """(mean loss, accuracy, samples) of the epoch."""
        n = max(self.samples, 1)
        return self.loss_sum.item() / n, self.correct.item() / n, self.samples


def resolve_device(name: str) -> torch.device:
    """`auto` is the first CUDA device where there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def uses_channels_last(cfg: TrainConfig, spec) -> bool:
    """Image models train in channels_last when the config asks (1.7x faster convolutions here)."""
    return cfg.channels_last and spec.image_size > 0


def to_model_layout(inputs, channels_last: bool):
    """A batch's inputs in the model's memory format (channels_last image batches, others as they are)."""
    return inputs.contiguous(memory_format=torch.channels_last) if channels_last else inputs


class TrainContext:
    """What a method trains through: data, model, the clock, evaluation, logging and stopping.

    A method's loop is `for epoch in ctx.epochs(): for batch in ctx.train_batches(epoch): ...;
    ctx.end_epoch(meter)`. The clock runs from the first batch an epoch asks for to `end_epoch`,
    so it counts data loading and every method overhead, and is paused while evaluating.
    """

    def __init__(
        self,
        job: Job,
        dataset,
        model: torch.nn.Module,
        device: torch.device,
        tracker: Tracker,
        run_id: str,
        rank: int = 0,
        world: int = 1,
        progress: bool = True,
    ):
        self.job, self.cfg, self.dataset, self.model, self.device = job, job.config, dataset, model, device
        self.tracker, self.run_id, self.rank, self.world = tracker, run_id, rank, world
        self.steps_per_epoch = dataset.steps_per_epoch(self.cfg.batch_size, world)
        self.channels_last = uses_channels_last(self.cfg, dataset.spec)
        if self.steps_per_epoch < 1:
            shard_size = dataset.num_train // world
            raise ValueError(f"batch_size {self.cfg.batch_size} exceeds the {shard_size} samples of a shard")
        self.clock = Stopwatch()
        self.wall_start = time.perf_counter()
        self.epoch = 0
        self.stop_reason: str | None = None
        self.best_test_acc, self.best_epoch, self.time_to_best_s = -1.0, -1, 0.0
        self.last: dict[str, float] = {}
        self._since_best = 0
        self._bar = tqdm(
            total=self.cfg.max_epochs,
            desc=job.name,
            unit="epoch",
            disable=None if progress else True,
            leave=False,
        )

    # --- what a method calls ---------------------------------------------------------------------
    def epochs(self) -> Iterator[int]:
        """Epoch numbers 0, 1, ... until a stopping rule fires at an epoch end."""
        try:
            while self.stop_reason is None:
                started = self.epoch
                yield started
                if self.epoch == started and self.stop_reason is None:
                    raise RuntimeError(
                        f"method {self.job.method} did not call ctx.end_epoch() in epoch {started}"
                    )
        finally:
            self._bar.close()

    def train_batches(self, epoch: int) -> Iterator[datasets.Batch]:
        """This process's shard of epoch `epoch`, with the clock running; ends early at the time budget."""
        self.clock.resume()
        for inputs, targets in self.dataset.train_batches(
            epoch, self.cfg.batch_size, self.job.seed, self.device, self.rank, self.world
        ):
            if self.budget_exhausted():
                return
            yield self.model_layout(inputs), targets

    def budget_exhausted(self) -> bool:
        """True (and `stop_reason` set) once the training clock has reached the time budget."""
        if self.cfg.time_budget_s and self.clock.elapsed() >= self.cfg.time_budget_s:
            self.stop_reason = "time_budget"
        return self.stop_reason == "time_budget"

    def model_layout(self, inputs):
        """Image batches in channels_last when the config asks (the model's memory format)."""
        return to_model_layout(inputs, self.channels_last)

    def meter(self) -> EpochMeter:
        """A fresh per-epoch loss/accuracy accumulator on the training device."""
        return EpochMeter(self.device)

    def end_epoch(
        self, meter: EpochMeter, model: torch.nn.Module | None = None, extra: dict[str, float] | None = None
    ) -> bool:
        """Stop the clock, evaluate, log the epoch and a method's `extra` metrics, apply the stopping rules.

        Returns True when training ends.
        """
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.clock.pause()
        epoch_time = self.clock.total - self.last.get("train_time_s", 0.0)
        train_loss, train_acc, samples, budget_hit = self._train_stats(meter)
        if not math.isfinite(train_loss):
            raise Diverged(f"train loss is {train_loss} in epoch {self.epoch}")
        test_loss = test_acc = float("nan")
        if self.rank == 0:  # rank 0 evaluates its replica and decides for every rank
            test_loss, test_acc = self.evaluate(model or self.model)
            if not math.isfinite(test_loss):
                self.stop_reason = "diverged"
            elif test_acc > self.best_test_acc:
                self.best_test_acc, self.best_epoch, self.time_to_best_s = (
                    test_acc,
                    self.epoch,
                    self.clock.total,
                )
                self._since_best = 0
            else:
                self._since_best += 1
            if self.stop_reason is None:
                if budget_hit:
                    self.stop_reason = "time_budget"
                elif self.epoch + 1 >= self.cfg.max_epochs:
                    self.stop_reason = "max_epochs"
                elif self._since_best >= self.cfg.patience:
                    self.stop_reason = "patience"
                elif self.cfg.time_budget_s and self.clock.total >= self.cfg.time_budget_s:
                    self.stop_reason = "time_budget"
        self._share_decision()
        if self.stop_reason == "diverged":
            raise Diverged(f"test loss is {test_loss} after epoch {self.epoch}")
        self.last = dict(
            train_loss=train_loss,
            train_acc=train_acc,
            test_loss=test_loss,
            test_acc=test_acc,
            lr=lr_at(self.epoch + 1 - 1 / self.steps_per_epoch, self.cfg),
            train_time_s=self.clock.total,
            wall_time_s=time.perf_counter() - self.wall_start,
            samples_per_s=samples / max(epoch_time, 1e-9),
        )
        if self.rank == 0:
            self.tracker.log_metrics(self.run_id, {**self.last, **(extra or {})}, step=self.epoch)
        self.epoch += 1
        self._bar.update(1)
        self._bar.set_postfix(test_acc=f"{test_acc:.3f}", loss=f"{train_loss:.3f}")
        return self.stop_reason is not None

    STOP_CODES = (None, "max_epochs", "patience", "time_budget", "diverged")

    def _train_stats(self, meter: EpochMeter) -> tuple[float, float, int, bool]:
        """(mean train loss, train accuracy, samples, any rank hit the time budget) over all ranks."""
        budget_hit = self.stop_reason == "time_budget"
        if self.world == 1:
            return (*meter.result(), budget_hit)
        import torch.distributed as dist

        totals = torch.stack(
            [
                meter.loss_sum,
                meter.correct.double(),
                torch.tensor(float(meter.samples), dtype=torch.float64, device=self.device),
                torch.tensor(float(budget_hit), dtype=torch.float64, device=self.device),
            ]
        )
        dist.all_reduce(totals)
        loss_sum, correct, samples, hits = totals.tolist()
        return loss_sum / max(samples, 1), correct / max(samples, 1), int(samples), hits > 0

    def _share_decision(self) -> None:
        """Every rank adopts rank 0's stop decision (the epoch end is the ranks' one sync point)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        code = torch.tensor([self.STOP_CODES.index(self.stop_reason)], device=self.device)
        dist.broadcast(code, src=0)
        self.stop_reason = self.STOP_CODES[int(code.item())]

    def evaluate(self, model: torch.nn.Module) -> tuple[float, float]:
        """(mean loss, accuracy) on the whole test split, in eval mode."""
        was_training = model.training
        model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        with torch.inference_mode():
            for inputs, targets in self.dataset.test_batches(self.cfg.eval_batch_size, self.device):
                logits = model(self.model_layout(inputs))
                loss_sum += F.cross_entropy(logits, targets, reduction="sum")
                correct += (logits.argmax(1) == targets).sum()
        model.train(was_training)
        return loss_sum.item() / self.dataset.num_test, correct.item() / self.dataset.num_test

    # --- what the runner reads -------------------------------------------------------------------
    def summary(self, status: str, run_id: str) -> dict:
        """The result object `train --json` prints."""
        return dict(
            **self.job.identity(run_id),
            best_test_acc=max(self.best_test_acc, 0.0),
            final_test_acc=self.last.get("test_acc"),
            final_train_loss=self.last.get("train_loss"),
            epochs=self.epoch,
            train_time_s=round(self.clock.elapsed(), 3),
            time_to_best_s=round(self.time_to_best_s, 3),
            samples_per_s=self.last.get("samples_per_s"),
            stop_reason=self.stop_reason,
            status=status,
        )


_DATASET_CACHE: dict[tuple, object] = {}


def get_dataset(job: Job, data_dir: Path):
    """The job's dataset, loaded once per process (a table's jobs share it)."""
    key = (job.dataset, str(data_dir), job.synthetic_data, job.config.seq_len)
    if key not in _DATASET_CACHE:
        _DATASET_CACHE[key] = datasets.load_dataset(
            job.dataset, data_dir, synthetic_like=job.synthetic_data, seq_len=job.config.seq_len
        )
    return _DATASET_CACHE[key]


def configure_threads(cfg: TrainConfig, devices: int) -> None:
    """Intra-op threads: `threads`, else the cores shared evenly among the job's processes."""
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // devices))


def seeded_model(job: Job, dataset, device: torch.device) -> torch.nn.Module:
    """The job's model, initialised from its seed, on `device`."""
    torch.manual_seed(job.seed)
    model = build_model(job.model, dataset.spec, job.config.width).to(device)
    if uses_channels_last(job.config, dataset.spec):
        model = model.to(memory_format=torch.channels_last)
    return model


def job_tags(job: Job) -> dict:
    """The MLflow tags of DESIGN.md known when a job starts."""
    return dict(
        table=job.table,
        method=job.method,
        dataset=job.dataset,
        model=job.model,
        profile=job.profile,
        seed=job.seed,
        run_index=job.run_index,
        devices=job.devices,
        git_sha=git_sha(),
        status="running",
        job_key=job.key,
        hardware=hardware(),
        torch_version=torch.__version__,
        kind=job.kind,
    )


class JobFailed(Exception):
    """A job ended with an exception; the run is marked failed. Carries the summary."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


def run_rank(
    job: Job,
    dataset,
    tracker: Tracker,
    run_id: str,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
    progress: bool = True,
) -> dict:
    """Train (or measure) in this process as rank `rank` of `world`; returns the summary.

    A NaN loss ends the job as `diverged` (in the summary); other exceptions propagate.
    """
    from .measurements import MEASUREMENTS

    configure_threads(job.config, job.devices)
    model = seeded_model(job, dataset, device)  # the same seed: every rank starts from the same replica
    ctx = TrainContext(job, dataset, model, device, tracker, run_id, rank, world, progress=progress)
    status, measured = "finished", {}
    try:
        if job.kind == "train":
            methods.get_method(job.method)().train(job, ctx)
        else:
            measured = MEASUREMENTS[job.kind](job, ctx)
    except Diverged as err:
        status, ctx.stop_reason = "diverged", "diverged"
        log.warning("%s diverged: %s", job.name, err)
    finally:
        ctx.clock.pause()
    summary = ctx.summary(status, run_id)
    if job.kind != "train":  # a measurement: its values replace the training fields
        return {**job.identity(run_id), "status": status, "stop_reason": ctx.stop_reason, **measured}
    finals = dict(
        best_test_acc=summary["best_test_acc"],
        time_to_best_s=summary["time_to_best_s"],
        epochs=summary["epochs"],
        final_train_time_s=summary["train_time_s"],
    )
    tracker.log_metrics(run_id, finals, step=max(ctx.epoch - 1, 0))
    return summary


def stub_summary(job: Job, run_id: str, status: str) -> dict:
    """The summary of a job that ended without a report (it failed)."""
    return dict(
        **job.identity(run_id),
        best_test_acc=0.0,
        final_test_acc=None,
        final_train_loss=None,
        epochs=None,
        train_time_s=None,
        time_to_best_s=None,
        samples_per_s=None,
        stop_reason=status,
        status=status,
    )


def run_job(job: Job, data_dir: Path | None, tracker: Tracker, progress: bool = True, dataset=None) -> dict:
    """Run one job start to end, on `job.devices` processes, and record it; returns its summary.

    A NaN loss ends it as `diverged` (returned); KeyboardInterrupt marks it `interrupted` and
    propagates; any other exception, in any process, marks it `failed` and raises JobFailed.
    """
    from .distributed import launched_by_torchrun, run_torchrun_rank, spawn_ranks, torchrun_rank
    from .tracking import NullTracker

    if dataset is None:
        dataset = get_dataset(job, data_dir)  # missing data fails here, before a run is created
    check_model(job.model, dataset.spec)  # and a model that cannot read it
    torchrun = launched_by_torchrun()
    if torchrun and torchrun_rank()[0] != 0:
        tracker = NullTracker()  # only rank 0 writes to MLflow
    params = {**job.params(), "data_source": dataset.source, "num_train": dataset.num_train}
    run_id = tracker.start(job.table, job.name, job_tags(job), params)
    try:
        if torchrun:
            summary = run_torchrun_rank(job, dataset, tracker, run_id)
        elif job.devices == 1:
            summary = run_rank(
                job, dataset, tracker, run_id, resolve_device(job.config.device), progress=progress
            )
        else:
            # A caller that passed its own dataset (and no data folder) has it shipped to the ranks.
            shipped = dataset if data_dir is None else None
            summary = spawn_ranks(job, data_dir, tracker.uri, run_id, dataset=shipped)
    except KeyboardInterrupt:
        tracker.finish(run_id, "interrupted", dict(stop_reason="interrupted"))
        raise
    except Exception as err:
        message = f"{type(err).__name__}: {err}"
        tracker.finish(run_id, "failed", dict(stop_reason="failed", error=message[:4000]))
        raise JobFailed(message, stub_summary(job, run_id, "failed")) from err
    tracker.finish(run_id, summary["status"], dict(stop_reason=summary["stop_reason"]))
    return summary
