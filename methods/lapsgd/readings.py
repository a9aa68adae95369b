"""The two readings of LAP-SGD (the paper's text, the authors' code): what the worker and the
averager do where they differ (the package docstring lists the differences)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

import torch.distributed as dist

from core.config import TrainConfig
from core.context import TrainContext

from .config import LapConfig
from .leases import Leases, RunLeases
from .state import SharedState


class Averager(Protocol):
    """What a reading reads of the averager (averager.py): its context, shared state and schedule."""

    ctx: TrainContext
    cfg: TrainConfig
    acfg: LapConfig
    state: SharedState
    steps: int  # batches per epoch of this device
    run_updates: int  # L x epochs


class PaperReading:
    """LAP-SGD as 002's text has it (Algorithm 1): what the worker and the averager do where the
    two readings differ. One instance per reading (READING), looked up by `LapConfig.reading`."""

    keep_partial = False  # an epoch drops its shard's last partial batch, as every method here
    clock_runs_while_evaluating = False  # the clock pauses while rank 0 evaluates, as for every method

    def count_update(self, state: SharedState) -> Callable[[], None] | None:
        """What a worker calls after its gradient: nothing (S counts a batch when it is leased)."""
        return None

    def work(
        self, state: SharedState, steps: int, total: int, parent_pid: int, train_epoch, wait_for
    ) -> None:
        """A worker's loop: each epoch when the averager lets it go, until told to stop."""
        seen = 0
        while wait_for(SharedState.EPOCH_GO, seen):
            epoch = state.get(SharedState.EPOCH_GO) - 1
            seen = epoch + 1
            train_epoch(epoch, Leases(state, steps, parent_pid))
            state.increment(SharedState.DONE)

    def begin(self, averager: Averager) -> None:
        """Once every worker is up: no device trains while another still starts."""
        if averager.ctx.world > 1:
            dist.barrier()

    def start_epoch(self, state: SharedState, epoch: int) -> None:
        """The averager lets the workers go on `epoch` (every device has drained the last)."""
        state.start_epoch(epoch)

    def progress(self, averager: Averager, epoch: int, leased: int) -> float:
        """The fraction of the epochs done (before the time budget's share is taken into account)."""
        return (epoch + min(leased, averager.steps) / averager.steps) / averager.cfg.max_epochs

    def epoch_done(self, averager: Averager, epoch: int) -> bool:
        """Whether this device's workers have all finished epoch `epoch`."""
        return averager.state.get(SharedState.DONE) == averager.acfg.workers_per_device

    def read_updates(self, state: SharedState) -> int:
        """S as the averager polls it: a plain read."""
        return state.get(SharedState.UPDATES)

    def round_due(
        self, k: int, new_updates: float, most: float, fewest_since: float, run_updates: int
    ) -> bool:
        """002 Alg. 1b: some device has made K updates since its last round."""
        return new_updates >= k

    def since_round(self, polled_updates: int) -> int | None:
        """The S the next round counts from: None, S as the round starts (s_pre := s_cur)."""
        return None

    def sleeps(self, updates: int, run_updates: int) -> bool:
        """Whether the averager sleeps between polls: always (a twentieth of a step)."""
        return True


class AuthorsCodeReading(PaperReading):
    """LAP-SGD as bapi/LPP-SGD runs it (the module docstring lists the differences, with lines)."""

    keep_partial = True  # their DataLoader keeps drop_last=False
    clock_runs_while_evaluating = True  # theirs test inside the training loop, on the clock

    def count_update(self, state: SharedState) -> Callable[[], None] | None:
        """S counted after the gradient, just before the update."""
        return lambda: state.increment(SharedState.UPDATES)

    def work(
        self, state: SharedState, steps: int, total: int, parent_pid: int, train_epoch, wait_for
    ) -> None:
        """One go, then on through the run's epochs (RunLeases), idle once its batches are done."""
        if not wait_for(SharedState.EPOCH_GO, 0):
            return
        batch = state.lease_in_run(steps, total)
        while batch is not None and os.getppid() == parent_pid:
            leases = RunLeases(state, steps, total, parent_pid, batch)
            train_epoch(leases.epoch, leases)
            state.finish(leases.epoch, leases.count)
            batch = leases.next
        wait_for(SharedState.STOP, 0)

    def begin(self, averager: Averager) -> None:
        """A device's workers train once they are up (a barrier among them only, line 110); its
        averager meets the others at its first poll (line 34)."""
        averager.state.start_epoch(0)

    def start_epoch(self, state: SharedState, epoch: int) -> None:
        """Nothing: the workers run on through the epochs."""

    def progress(self, averager: Averager, epoch: int, leased: int) -> float:
        """Batches leased over the whole run."""
        return leased / averager.run_updates

    def epoch_done(self, averager: Averager, epoch: int) -> bool:
        """Whether every batch of `epoch` is trained (or, halted, every batch this device leased)."""
        state = averager.state
        if state.finished_in(epoch) == averager.steps:
            return True
        return bool(state.get(SharedState.HALT)) and state.get(SharedState.FINISHED) == state.get(
            SharedState.NEXT_BATCH
        )

    def read_updates(self, state: SharedState) -> int:
        """S read under the counter's lock (lines 36-37), which the workers need to count theirs."""
        with state.lock:
            return state.get(SharedState.UPDATES)

    def round_due(
        self, k: int, new_updates: float, most: float, fewest_since: float, run_updates: int
    ) -> bool:
        """max S - min s_pre >= K, so while the devices are K or more updates apart every poll
        averages; and no round once a device has made all its updates."""
        return most < run_updates and most - fewest_since >= k

    def since_round(self, polled_updates: int) -> int | None:
        """The S this rank sent in the poll."""
        return polled_updates

    def sleeps(self, updates: int, run_updates: int) -> bool:
        """Busy polling while rounds may come; asleep once this device has made all its updates."""
        return updates >= run_updates


READING: dict[str, PaperReading] = {"paper": PaperReading(), "authors_code": AuthorsCodeReading()}
