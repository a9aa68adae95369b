"""The averager a_q (002 Algorithm 1b): the device's parent process, its workers, the averaging
rounds and the epoch's end."""

from __future__ import annotations

import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from core.context import TrainContext
from core.runtime.supervise import Children
from core.runtime.wire import Wire

from ..common.update_exchange import replica_drift
from .config import MAX_POLL_S, POLL_S, START_TIMEOUT_S, STOP_GRACE_S
from .readings import READING
from .state import SharedState
from .worker import parameter_blocks, worker_main


def average_round(
    params: list[torch.Tensor], world: int, after_snapshot=None, wire: Wire | None = None,
    step_s: float | None = None,
) -> None:  # fmt: skip
    """One averaging round of Algorithm 1b (lines 5-8) on this device's live parameters.

    Snapshot without stopping the writers, all-reduce the snapshots to their mean (on the `wire`:
    a delayed device's snapshot joins its delay late, `step_s` the workers' step for a fractional
    delay), and add (mean - snapshot): whatever the workers wrote after the snapshot, the wire's
    delay included, is kept. `after_snapshot` is a test seam, called between the snapshot and the update.
    """
    snapshot = torch.cat([p.detach().reshape(-1) for p in params])  # v_a := x_q (lines 5)
    if after_snapshot is not None:
        after_snapshot()
    mean = snapshot.clone()
    if wire is not None:
        wire.all_reduce(mean, step_s)  # line 6
    else:
        dist.all_reduce(mean)
    delta = mean.div_(world).sub_(snapshot)  # line 7: mean - snapshot
    with torch.no_grad():
        offset = 0
        for p in params:  # line 8: x_q += delta, in place, while workers keep writing
            p.add_(delta[offset : offset + p.numel()].view(p.shape))
            offset += p.numel()


def round_due(
    reading: str, k: int, new_updates: float, most_updates: float, fewest_since: float, run_updates: int
) -> bool:
    """Whether the averagers start a round, from the values all-reduced in a poll (the same on every rank).

    `new_updates`: the most updates any device made since its last round; `most_updates`: the
    largest S; `fewest_since`: the smallest S at a device's last round; `run_updates`: L x epochs.
    """
    return READING[reading].round_due(k, new_updates, most_updates, fewest_since, run_updates)


class Averager:
    """The device's parent process: its workers, the averaging rounds, and the epoch's end."""

    def __init__(self, ctx: TrainContext, partition_start: float | None):
        self.ctx, self.acfg, self.partition_start = ctx, ctx.method_config, partition_start
        self.cfg = ctx.config
        self.params = list(ctx.model.parameters())
        self.reading = READING[self.acfg.reading]
        self.steps = ctx.dataset.steps_per_epoch(
            self.cfg.batch_size, ctx.world, keep_partial=self.reading.keep_partial
        )
        self.run_updates = self.cfg.max_epochs * self.steps  # L x epochs: the authors' averager stops there
        self.mp = mp.get_context("spawn")  # fork is unsafe with threads and CUDA
        self.state = SharedState(self.mp, self.acfg.workers_per_device, ctx.device)
        self.workers: Children | None = None
        # The averaging on the wire (a wire straggler's delay on the last device's snapshots, ages, bytes).
        self.wire = Wire.of(self.cfg, ctx.rank, ctx.world, ctx.device) if ctx.world > 1 else None
        self.epoch_updates = 0  # S when the epoch started
        self.since_round = 0  # S at the last averaging round (s_pre)
        self.epoch = 0  # the epoch being trained (paper) or waited for (authors' reading)
        self.metrics = dict(
            averaging_rounds=0.0, updates_during_averaging=0.0, averaging_s=0.0, averager_polls=0.0
        )
        # How far apart the devices' S are, per poll (several devices): what the authors' trigger feeds on.
        self.spread_sum, self.spread_max = 0.0, 0.0

    # --- workers ---------------------------------------------------------------------------------
    def start_workers(self) -> None:
        """Spawn the U workers on the shared model and wait until all are ready (and every device's are)."""
        workers = self.acfg.workers_per_device
        ctx, cfg = self.ctx, self.cfg
        cores = max(1, (os.cpu_count() or 1) // ctx.world)
        threads = cfg.threads or max(1, cores // workers)
        blocks = parameter_blocks([p.numel() for p in self.params], workers)
        ctx.model.share_memory()  # the model x_q every worker updates (CUDA tensors go by IPC)
        args = [
            (
                i,
                ctx.model,
                ctx.dataset,
                ctx.job,
                self.state,
                blocks[i],
                ctx.rank,
                ctx.world,
                threads,
                os.getpid(),
            )
            for i in range(workers)
        ]
        names = [f"lapsgd-worker{i}" for i in range(workers)]
        self.workers = Children(self.mp, worker_main, args, names, daemon=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.state.get(SharedState.READY) < workers:
            self.check_workers()
            if time.monotonic() > deadline:
                raise RuntimeError(f"lapsgd workers did not start within {START_TIMEOUT_S:.0f} s")
            time.sleep(POLL_S)
        self.reading.begin(self)

    def check_workers(self) -> None:
        """Raise the first failed worker's error (or its exit code if it died without one)."""
        failed = self.workers.failure() if self.workers is not None else None
        if failed is not None:
            index, message, died = failed
            where = f"lapsgd worker {index} of rank {self.ctx.rank}"
            raise RuntimeError(f"{where} {message}" if died else f"{where} failed: {message}")

    def stop_workers(self) -> None:
        """Tell the workers to stop after their batch; terminate (then kill) any that do not."""
        self.state.set(SharedState.STOP, 1)
        if self.workers is not None:
            self.workers.stop(STOP_GRACE_S, terminate=False)

    # --- the averaging process a_q ---------------------------------------------------------------
    def progress(self, epoch: int) -> float:
        """Fraction of the budget used: epochs over max_epochs, or the clock over the time budget."""
        fraction = self.reading.progress(self, epoch, self.state.get(SharedState.NEXT_BATCH))
        if self.cfg.time_budget_s:
            fraction = max(fraction, self.ctx.train_time_s / self.cfg.time_budget_s)
        return fraction

    def epoch_done(self, epoch: int) -> bool:
        """Whether this device has trained all of epoch `epoch` (or, halted, every batch it leased)."""
        return self.reading.epoch_done(self, epoch)

    def run_epoch(self, epoch: int) -> None:
        """Let the workers train epoch `epoch`, averaging as Algorithm 1b says, until every device drained.

        In the authors' reading the workers are let go once and run on through the epochs (RunLeases):
        this returns when every device has trained epoch `epoch`, with the faster ones already on.
        """
        ctx, state = self.ctx, self.state
        self.epoch = epoch
        self.reading.start_epoch(state, epoch)
        while True:
            self.metrics["averager_polls"] += 1
            self.check_workers()
            if not state.get(SharedState.HALT) and ctx.budget_exhausted():
                state.set(SharedState.HALT, 1)  # stop leasing batches; this epoch ends here
            done = self.epoch_done(epoch)
            progress, halted = self.progress(epoch), state.get(SharedState.HALT)
            updates = self.reading.read_updates(state)
            if ctx.world > 1:
                # One small all-reduce per poll keeps the averagers' collectives in step: every
                # rank sees the same maxima and so enters the same rounds and leaves together.
                shared = torch.tensor(
                    [
                        updates - self.since_round,
                        updates,
                        -updates,
                        -self.since_round,
                        progress,
                        float(not done),
                        halted,
                    ],
                    dtype=torch.float64,
                    device=ctx.device,
                )  # on the device: NCCL reduces device tensors only
                dist.all_reduce(shared, op=dist.ReduceOp.MAX)
                new_updates, most_updates, minus_fewest, minus_fewest_since, progress, any_busy, halted = (
                    shared.tolist()
                )
                self.spread_sum += most_updates + minus_fewest
                self.spread_max = max(self.spread_max, most_updates + minus_fewest)
                if halted and not state.get(SharedState.HALT):
                    state.set(SharedState.HALT, 1)  # another device hit the budget
                    ctx.request_stop("time_budget")
                k = 1 if progress < self.acfg.average_switch else self.acfg.average_every
                if self.reading.round_due(
                    k, new_updates, most_updates, -minus_fewest_since, self.run_updates
                ):
                    self.average(since=self.reading.since_round(updates))
                done = not any_busy
            self.set_phase(progress)
            if done:
                return
            if self.reading.sleeps(updates, self.run_updates):
                time.sleep(self.poll_interval())

    def poll_interval(self) -> float:
        """A twentieth of a worker's step, within [POLL_S, MAX_POLL_S].

        A due round then starts within 5 % of a step, and the averager's polls (each an
        all-reduce on several devices) stay a small share of cores the workers need.
        """
        step_s = self.worker_step_s()
        return POLL_S if step_s is None else min(max(step_s / 20, POLL_S), MAX_POLL_S)

    def worker_step_s(self) -> float | None:
        """A worker's mean step time so far (None before each worker has taken 2 steps)."""
        updates = self.state.get(SharedState.UPDATES)
        if updates < 2 * self.acfg.workers_per_device:
            return None
        return self.ctx.train_time_s * self.acfg.workers_per_device / updates

    def set_phase(self, progress: float) -> None:
        """LPP-SGD: switch the workers to alternating partitioned updates once T_st is passed."""
        if self.partition_start is not None and progress >= self.partition_start:
            self.state.set(SharedState.PARTITIONED, 1)

    def average(self, since: int | None = None) -> None:
        """One averaging round, counting the updates the workers made while it ran; `since` is the
        S to count the next round's updates from (default: S as the round starts)."""
        before = self.state.get(SharedState.UPDATES)
        started = time.perf_counter()
        average_round(self.params, self.ctx.world, wire=self.wire, step_s=self.worker_step_s() or 0.0)
        after = self.state.get(SharedState.UPDATES)
        self.since_round = before if since is None else since  # s_pre := s_cur
        self.metrics["averaging_rounds"] += 1
        self.metrics["updates_during_averaging"] += after - before  # measured: workers never wait
        self.metrics["averaging_s"] += time.perf_counter() - started

    def end_epoch(self) -> None:
        """The epoch's train loss/accuracy from the workers' sums, the averaging metrics, evaluation."""
        ctx = self.ctx
        meter = ctx.meter()
        totals = self.state.epoch_stats(self.epoch)
        meter.add_totals(totals[0], totals[1], int(totals[2].item()))
        updates = self.state.get(SharedState.UPDATES)
        extra = dict(self.metrics, updates=float(updates))
        extra["partitioned"] = float(self.state.get(SharedState.PARTITIONED))
        if ctx.world > 1:
            extra["replica_drift"] = replica_drift(ctx.model)
            extra["update_spread_mean"] = self.spread_sum / max(1.0, self.metrics["averager_polls"])
            extra["update_spread_max"] = self.spread_max
            extra.update(self.wire.epoch_metrics(updates - self.epoch_updates))  # a worker's step: a batch
        self.epoch_updates = updates
        # The authors' workers train on while rank 0 evaluates: the clock runs (theirs test inside the
        # training loop, on the clock: lines 162-169, 183-185).
        ctx.end_epoch(meter, ctx.model, extra=extra, clock_runs=self.reading.clock_runs_while_evaluating)
        self.state.release_slot(self.epoch)
        self.metrics = dict.fromkeys(self.metrics, 0.0)
        self.spread_sum, self.spread_max = 0.0, 0.0
