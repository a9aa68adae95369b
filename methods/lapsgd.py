"""`lapsgd`: locally-asynchronous parallel SGD (002, Algorithm 1), a baseline of the paper under study.

Per device (a rank of `--devices N`), U worker processes share one model in shared memory and
update it lock-free, Hogwild! style (Algorithm 1a): each claims the next batch of the epoch's
seeded permutation from a shared counter, does `s := read-and-inc(S)` on the shared update
counter S, computes its gradient on the model as it reads it, and updates the model in place with
its own SGD state. The rank's own process is the averager a_q (Algorithm 1b): it watches S, and
when any device has made K updates since the last round it snapshots the live model, all-reduces
the snapshots to their mean across devices, and adds (mean - snapshot) to the live model while
the workers go on updating it, so that updates made during the round survive.

Choices where 002 is silent (the authors' code, `bapi/LPP-SGD`, decides; docs/fidelity.md):
- Momentum and weight decay are private to each worker (a torch.optim.SGD per worker over the
  shared parameters); BatchNorm buffers are shared but not averaged.
- "Any device has K new updates" is decided on an all-reduced MAX, so every averager enters the
  same rounds; the schedule's progress (K = 1 before `average_switch`, then `average_every`) is
  the fraction of the budget used: epochs over max_epochs or the training clock over the time
  budget, whichever is further.
- Epochs end as in every other method: the workers drain, the averager evaluates (rank 0), and
  the next epoch starts; the authors' code has no epoch barrier (`reading=authors_code` below).
- Worker start-up (a spawned interpreter each) is not on the training clock, like process spawn
  for `--devices N`.

`reading=authors_code` runs LAP-SGD as the authors' code runs it where that differs from the
paper's text (bapi/LPP-SGD at commit bd4cb78, `train/LAPSGD.py`; docs/fidelity.md):
- the trigger: each poll all-reduces (S, -s_pre) with MAX and averages when max S - min s_pre >= K,
  s_pre being each device's own S when it last averaged (lines 35-52). While two devices are K or
  more updates apart, every poll averages, not every K updates;
- the averager polls in a busy loop, without sleeping (the `while True` of line 35), and reads S
  under the counter's lock (lines 36-37), which the workers need to count their updates;
- S is incremented after the gradient, just before the update (lines 154-173), not when a batch
  is claimed;
- averaging ends for good once any device has made all the updates of the run (max S >= L x
  epochs, lines 42-45): the slower devices' last updates are never averaged;
- the partial last batch of each shard is trained on (their DataLoader keeps drop_last=False,
  `dataloaders/data_loader_CIFAR.py` lines 23-28), so an epoch has ceil(shard / B) updates;
- no device waits for another between epochs: the workers are let go once and run through the
  epochs (each of theirs loops over its DataLoader epochs, lines 110-118), nor at the start: a
  device's workers train once they are up, and its averager meets the others at its first poll
  (their averager's only barrier, line 34, is not the workers'), so the devices are as far apart
  as their start-ups and speeds make them.
  Each device's workers claim the run's batches from one counter (epoch = claim // L). The
  averagers keep polling across epoch ends; an epoch is reported (rank 0 evaluates the live model)
  once every device has trained it, and the clock keeps running meanwhile, as the workers do.
  Theirs gives each of U > 1 workers a whole epoch of its own; ours share an epoch's batches.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from core.context import TrainContext
from core.errors import UserError
from core.inputs import to_model_layout, uses_channels_last
from core.job import Job
from core.runtime.straggler import straggler_for
from core.runtime.supervise import Children, enter_child, reporting
from core.schedule import lr_at

from .common.base import Method, register_method
from .common.optim import make_optimizer, set_lr
from .common.update_exchange import replica_drift

log = logging.getLogger(__name__)

READINGS = ("paper", "authors_code")

POLL_S = 0.005  # shortest polling period of the averager and idle workers (002's parent busy-loops)
MAX_POLL_S = 0.05
START_TIMEOUT_S = 300.0  # a worker that has not started by then (imports, data) fails the job
# Workers finish their batch (or start-up) within it, else are terminated; below distributed.GRACE_S.
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class LapConfig:
    """LAP-SGD's knobs (docs/methods.md): U workers per device, the averaging period K, its switch point."""

    workers_per_device: int = 1  # 000 §4: "the number of processes per GPU to be 1"
    average_every: int = 16  # K after the switch (before it K = 1), as 002 §3 after PL-SGD
    average_switch: float = 0.5  # fraction of the budget with K = 1
    reading: str = "paper"  # paper: 002's text; authors_code: as bapi/LPP-SGD runs it (module docstring)

    @property
    def variant(self) -> str:
        """The reading, when it is not the default: runs of the authors' code are rows of their own."""
        return "" if self.reading == "paper" else self.reading

    def validate(self) -> None:
        """Reject values that cannot run, with one line naming the key."""
        if self.workers_per_device < 1:
            raise UserError(f"workers_per_device must be >= 1, got {self.workers_per_device}")
        if self.average_every < 1:
            raise UserError(f"average_every must be >= 1, got {self.average_every}")
        if not 0.0 <= self.average_switch <= 1.0:
            raise UserError(f"average_switch must be in [0, 1], got {self.average_switch}")
        if self.reading not in READINGS:
            raise UserError(f"reading must be one of {', '.join(READINGS)}, got {self.reading!r}")


class SharedState:
    """Counters and flags one averager shares with its workers, in shared memory.

    `ints` holds the epoch being trained (+1: the go signal), the next batch position to claim,
    the update counter S, how many workers have finished the epoch, the halt (budget), stop (end
    of training) and partitioned-phase flags, then (authors' reading) the batches finished over
    the run, the first epoch workers may not enter yet, and the batches finished per epoch slot.
    Increments happen under `lock`; plain reads and single writes of an aligned int64 need none.
    `stats` holds, per worker and epoch slot (epoch % SLOTS), the epoch's sum of losses, correct
    predictions and samples, on the device (no sync per step).
    """

    EPOCH_GO, NEXT_BATCH, UPDATES, DONE, READY, HALT, STOP, PARTITIONED, FINISHED, EPOCH_LIMIT = range(10)
    SLOT_FINISHED = 10  # then, per epoch slot, the batches finished in it
    SLOTS = 4  # epochs a device's workers may run ahead of the last epoch reported (authors' reading)

    def __init__(self, mp_ctx, workers: int, device: torch.device):
        self.ints = torch.zeros(self.SLOT_FINISHED + self.SLOTS, dtype=torch.int64).share_memory_()
        self.ints[self.EPOCH_LIMIT] = self.SLOTS
        self.lock = mp_ctx.Lock()
        self.stats = torch.zeros(workers, self.SLOTS, 3, dtype=torch.float64, device=device)
        if device.type == "cpu":
            self.stats.share_memory_()

    def get(self, field: int) -> int:
        """Read one counter or flag."""
        return int(self.ints[field])

    def set(self, field: int, value: int) -> None:
        """Write one counter or flag (a single aligned store)."""
        self.ints[field] = value

    def increment(self, field: int) -> None:
        """Add one, atomically with respect to the other processes."""
        with self.lock:
            self.ints[field] += 1

    def claim(self, steps: int) -> int | None:
        """The next batch position of the epoch, counting one update in S; None when there is none."""
        with self.lock:
            position = int(self.ints[self.NEXT_BATCH])
            if position >= steps or self.ints[self.HALT] or self.ints[self.STOP]:
                return None
            self.ints[self.NEXT_BATCH] = position + 1
            self.ints[self.UPDATES] += 1  # s := read-and-inc(S), Algorithm 1a line 4
            return position

    def claim_in_run(self, steps: int, total: int) -> int | None:
        """The authors' reading: the next batch of the whole run (epoch x steps + position), claimed
        without waiting for an epoch start; -1 while its epoch slot is still to be reported; None
        when the run has no batch left (or is halted or stopped)."""
        with self.lock:
            batch = int(self.ints[self.NEXT_BATCH])
            if batch >= total or self.ints[self.HALT] or self.ints[self.STOP]:
                return None
            if batch // steps >= self.ints[self.EPOCH_LIMIT]:
                return -1
            self.ints[self.NEXT_BATCH] = batch + 1
            return batch

    def finish(self, epoch: int, batches: int) -> None:
        """Count `batches` of epoch `epoch` as trained (their stats are in `stats`)."""
        with self.lock:
            self.ints[self.FINISHED] += batches
            self.ints[self.SLOT_FINISHED + epoch % self.SLOTS] += batches

    def finished_in(self, epoch: int) -> int:
        """Batches of epoch `epoch` trained so far (authors' reading)."""
        return int(self.ints[self.SLOT_FINISHED + epoch % self.SLOTS])

    def epoch_stats(self, epoch: int) -> torch.Tensor:
        """(loss sum, correct, samples) of epoch `epoch`, over the workers."""
        return self.stats[:, epoch % self.SLOTS].sum(0)

    def release_slot(self, epoch: int) -> None:
        """Epoch `epoch` is reported: clear its slot for epoch + SLOTS, and let the workers enter it."""
        with self.lock:
            self.stats[:, epoch % self.SLOTS].zero_()
            if self.stats.is_cuda:
                torch.cuda.synchronize(self.stats.device)  # zeroed before any worker adds to it
            self.ints[self.SLOT_FINISHED + epoch % self.SLOTS] = 0
            self.ints[self.EPOCH_LIMIT] = epoch + 1 + self.SLOTS

    def start_epoch(self, epoch: int) -> None:
        """Reset the epoch's counters, then let the workers go."""
        with self.lock:
            self.ints[self.NEXT_BATCH] = 0
            self.ints[self.DONE] = 0
            self.ints[self.EPOCH_GO] = epoch + 1


class Claims:
    """Batch positions claimed from the shared counter, remembering the last one (for the LR)."""

    def __init__(self, state: SharedState, steps: int, parent_pid: int):
        self.state, self.steps, self.parent_pid = state, steps, parent_pid
        self.position = -1

    def __iter__(self):
        while (position := self.state.claim(self.steps)) is not None:
            if os.getppid() != self.parent_pid:
                return  # the averager is gone: stop at once
            self.position = position
            yield position


class RunClaims:
    """The authors' reading: batches of one epoch claimed from the run's counter, starting at
    `first`; the claim that falls into a later epoch (or None at the run's end) is kept in `next`.

    A device's workers so run on from one epoch into the next without waiting for the others, as
    in bapi/LPP-SGD, where each worker loops over its DataLoader epochs (`test_train`, lines 110-118).
    """

    def __init__(self, state: SharedState, steps: int, total: int, parent_pid: int, first: int):
        self.state, self.steps, self.total, self.parent_pid = state, steps, total, parent_pid
        self.epoch, self.first = first // steps, first
        self.next: int | None = None
        self.position, self.count = -1, 0

    def __iter__(self):
        batch = self.first
        while True:
            if os.getppid() != self.parent_pid:
                return  # the averager is gone: stop at once
            self.position = batch % self.steps
            self.count += 1
            yield self.position
            while (batch := self.state.claim_in_run(self.steps, self.total)) == -1:
                if os.getppid() != self.parent_pid:
                    return
                time.sleep(POLL_S)  # SLOTS epochs ahead of the slowest device: wait for a report
            if batch is None or batch // self.steps != self.epoch:
                self.next = batch
                return


class PaperReading:
    """LAP-SGD as 002's text has it (Algorithm 1): what the worker and the averager do where the
    two readings differ. One instance per reading (READING), looked up by `LapConfig.reading`."""

    keep_partial = False  # an epoch drops its shard's last partial batch, as every method here
    clock_runs_while_evaluating = False  # the clock pauses while rank 0 evaluates, as for every method

    def count_update(self, state: SharedState) -> Callable[[], None] | None:
        """What a worker calls after its gradient: nothing (S counts a batch when it is claimed)."""
        return None

    def work(
        self, state: SharedState, steps: int, total: int, parent_pid: int, train_epoch, wait_for
    ) -> None:
        """A worker's loop: each epoch when the averager lets it go, until told to stop."""
        seen = 0
        while wait_for(SharedState.EPOCH_GO, seen):
            epoch = state.get(SharedState.EPOCH_GO) - 1
            seen = epoch + 1
            train_epoch(epoch, Claims(state, steps, parent_pid))
            state.increment(SharedState.DONE)

    def begin(self, averager: Averager) -> None:
        """Once every worker is up: no device trains while another still starts."""
        if averager.ctx.world > 1:
            dist.barrier()

    def start_epoch(self, state: SharedState, epoch: int) -> None:
        """The averager lets the workers go on `epoch` (every device has drained the last)."""
        state.start_epoch(epoch)

    def progress(self, averager: Averager, epoch: int, claimed: int) -> float:
        """The fraction of the epochs done (before the time budget's share is taken into account)."""
        return (epoch + min(claimed, averager.steps) / averager.steps) / averager.cfg.max_epochs

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
        """One go, then on through the run's epochs (RunClaims), idle once its batches are done."""
        if not wait_for(SharedState.EPOCH_GO, 0):
            return
        batch = state.claim_in_run(steps, total)
        while batch is not None and os.getppid() == parent_pid:
            claims = RunClaims(state, steps, total, parent_pid, batch)
            train_epoch(claims.epoch, claims)
            state.finish(claims.epoch, claims.count)
            batch = claims.next
        wait_for(SharedState.STOP, 0)

    def begin(self, averager: Averager) -> None:
        """A device's workers train once they are up (a barrier among them only, line 110); its
        averager meets the others at its first poll (line 34)."""
        averager.state.start_epoch(0)

    def start_epoch(self, state: SharedState, epoch: int) -> None:
        """Nothing: the workers run on through the epochs."""

    def progress(self, averager: Averager, epoch: int, claimed: int) -> float:
        """Batches claimed over the whole run."""
        return claimed / averager.run_updates

    def epoch_done(self, averager: Averager, epoch: int) -> bool:
        """Whether every batch of `epoch` is trained (or, halted, every batch this device claimed)."""
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


def parameter_blocks(sizes: list[int], parts: int) -> list[range]:
    """`parts` disjoint, contiguous runs of parameter indices covering all, of roughly equal element counts.

    LPP-SGD's partition (002 §1.2; the authors' code splits the parameter list the same way).
    `sizes` are the parameter tensors' element counts, in the model's order.
    """
    if not 1 <= parts <= len(sizes):
        raise ValueError(f"cannot split {len(sizes)} parameter tensors into {parts} blocks")
    total, bounds, running = sum(sizes), [0], 0
    for i, size in enumerate(sizes):
        running += size
        blocks_left, tensors_left = parts - len(bounds), len(sizes) - (i + 1)
        if blocks_left > 0 and (running >= total * len(bounds) / parts or tensors_left == blocks_left):
            bounds.append(i + 1)
    bounds.append(len(sizes))
    return [range(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def hogwild_step(
    model, optimizer, inputs, targets, block: list[torch.Tensor] | None = None, after_gradient=None
):
    """Algorithm 1a lines 5-6: gradient at the model as read now, then x -= lr * grad in place, lock-free.

    With `block`, only that block's gradient is computed (autograd stops where no block parameter
    lies behind) and only it is updated: the optimiser skips parameters without a gradient.
    `after_gradient` is called between the gradient and the update. Returns (loss, logits).
    """
    logits = model(inputs)
    loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=block)
    if after_gradient is not None:
        after_gradient()
    optimizer.step()
    return loss, logits


def _worker_main(*args) -> None:
    """One Hogwild! updater u of Algorithm 1a, until the averager says stop (or disappears).

    `args`: `_hogwild_worker`'s (the averager's pid last), then the pipe to the averager."""
    *work, report = args
    enter_child(parent_pid=work[-1])  # the averager ends its workers
    with reporting(report):
        _hogwild_worker(*work)


def _hogwild_worker(
    index: int,
    model: torch.nn.Module,
    dataset,
    job: Job,
    state: SharedState,
    block_indices: range,
    rank: int,
    world: int,
    threads: int,
    parent_pid: int,
) -> None:
    """A worker's work: train the batches it claims, each with its own optimizer state."""
    torch.set_num_threads(threads)
    cfg = job.config
    params = list(model.parameters())
    device = params[0].device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    block = [params[i] for i in block_indices]
    optimizer = make_optimizer(params, cfg)  # momentum private to this worker, as in 002's code
    reading = READING[job.method_config.reading]
    steps = dataset.steps_per_epoch(cfg.batch_size, world, keep_partial=reading.keep_partial)
    count_update = reading.count_update(state)
    channels_last = uses_channels_last(cfg, dataset.spec)
    last_full = True  # LPP-SGD's last_iter, initialised FULL
    straggler = straggler_for(cfg, rank, world, unit=index)  # worker 0 of the last rank

    def train_epoch(epoch: int, claims) -> None:
        """Train the batches `claims` yields from epoch `epoch`, adding to the epoch's stats."""
        nonlocal last_full
        stats = state.stats[index, epoch % SharedState.SLOTS]
        if straggler is not None:
            straggler.restart()
        for inputs, targets in dataset.train_batches(
            epoch, cfg.batch_size, job.seed, device, rank, world, positions=claims
        ):
            inputs = to_model_layout(inputs, channels_last)
            set_lr(optimizer, lr_at(epoch + claims.position / steps, cfg))
            # LPP-SGD after partition_start: alternate a partitioned update (gradient and update
            # of this worker's block only) with a full one. LAP-SGD never sets the flag.
            partitioned = bool(state.get(SharedState.PARTITIONED)) and last_full
            last_full = not partitioned
            loss, logits = hogwild_step(
                model,
                optimizer,
                inputs,
                targets,
                block if partitioned else None,
                after_gradient=count_update,
            )
            with torch.no_grad():
                stats[0] += loss.detach() * len(targets)
                stats[1] += (logits.argmax(1) == targets).sum()
                stats[2] += len(targets)
            if straggler is not None:
                straggler.tick(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the epoch's updates and stats are in memory

    def wait_for(field: int, above: int) -> bool:
        """Sleep until `field` exceeds `above`; False when told to stop or the averager is gone."""
        while state.get(field) <= above and not state.get(SharedState.STOP):
            if os.getppid() != parent_pid:
                return False
            time.sleep(POLL_S)
        return not state.get(SharedState.STOP)

    state.increment(SharedState.READY)
    reading.work(state, steps, steps * cfg.max_epochs, parent_pid, train_epoch, wait_for)


def average_round(params: list[torch.Tensor], world: int, after_snapshot=None) -> None:
    """One averaging round of Algorithm 1b (lines 5-8) on this device's live parameters.

    Snapshot without stopping the writers, all-reduce the snapshots to their mean, and add
    (mean - snapshot): whatever the workers wrote after the snapshot is kept. `after_snapshot` is
    a test seam, called between the snapshot and the update.
    """
    snapshot = torch.cat([p.detach().reshape(-1) for p in params])  # v_a := x_q (lines 5)
    if after_snapshot is not None:
        after_snapshot()
    mean = snapshot.clone()
    dist.all_reduce(mean)  # line 6
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
        self.workers = Children(self.mp, _worker_main, args, names, daemon=True)
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
        """Whether this device has trained all of epoch `epoch` (or, halted, every batch it claimed)."""
        return self.reading.epoch_done(self, epoch)

    def run_epoch(self, epoch: int) -> None:
        """Let the workers train epoch `epoch`, averaging as Algorithm 1b says, until every device drained.

        In the authors' reading the workers are let go once and run on through the epochs (RunClaims):
        this returns when every device has trained epoch `epoch`, with the faster ones already on.
        """
        ctx, state = self.ctx, self.state
        self.epoch = epoch
        self.reading.start_epoch(state, epoch)
        while True:
            self.metrics["averager_polls"] += 1
            self.check_workers()
            if not state.get(SharedState.HALT) and ctx.budget_exhausted():
                state.set(SharedState.HALT, 1)  # stop claiming batches; this epoch ends here
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
        updates = self.state.get(SharedState.UPDATES)
        if updates < 2 * self.acfg.workers_per_device:
            return POLL_S
        step_s = self.ctx.train_time_s * self.acfg.workers_per_device / updates
        return min(max(step_s / 20, POLL_S), MAX_POLL_S)

    def set_phase(self, progress: float) -> None:
        """LPP-SGD: switch the workers to alternating partitioned updates once T_st is passed."""
        if self.partition_start is not None and progress >= self.partition_start:
            self.state.set(SharedState.PARTITIONED, 1)

    def average(self, since: int | None = None) -> None:
        """One averaging round, counting the updates the workers made while it ran; `since` is the
        S to count the next round's updates from (default: S as the round starts)."""
        before = self.state.get(SharedState.UPDATES)
        started = time.perf_counter()
        average_round(self.params, self.ctx.world)
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
        extra = dict(self.metrics, updates=float(self.state.get(SharedState.UPDATES)))
        extra["partitioned"] = float(self.state.get(SharedState.PARTITIONED))
        if ctx.world > 1:
            extra["replica_drift"] = replica_drift(ctx.model)
            extra["update_spread_mean"] = self.spread_sum / max(1.0, self.metrics["averager_polls"])
            extra["update_spread_max"] = self.spread_max
        # The authors' workers train on while rank 0 evaluates: the clock runs (theirs test inside the
        # training loop, on the clock: lines 162-169, 183-185).
        ctx.end_epoch(meter, ctx.model, extra=extra, clock_runs=self.reading.clock_runs_while_evaluating)
        self.state.release_slot(self.epoch)
        self.metrics = dict.fromkeys(self.metrics, 0.0)
        self.spread_sum, self.spread_max = 0.0, 0.0


@register_method("lapsgd")
class LocallyAsynchronousSGD(Method):
    """LAP-SGD (002 Alg. 1): U Hogwild! worker processes per device, asynchronous non-blocking averaging."""

    summary = "LAP-SGD: U lock-free worker processes per device, non-blocking model averaging every K updates"
    Config = LapConfig
    max_devices = None
    partitioned = False  # lppsgd: alternate partitioned and full updates after partition_start

    def train(self, ctx: TrainContext) -> None:
        partition_start = ctx.method_config.partition_start if self.partitioned else None
        averager = Averager(ctx, partition_start)
        try:
            averager.start_workers()
            for epoch in ctx.epochs():
                averager.run_epoch(epoch)
                averager.end_epoch()
        finally:
            averager.stop_workers()
