"""A Hogwild! worker process (002 Algorithm 1a) and LPP-SGD's parameter blocks."""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

from core.inputs import to_model_layout, uses_channels_last
from core.job import Job
from core.runtime.straggler import straggler_for
from core.runtime.supervise import enter_child, reporting
from core.schedule import lr_at

from ..common.optim import hidden_matrices, make_optimizer, set_lr
from .config import POLL_S
from .readings import READING
from .state import SharedState


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


def worker_main(*args) -> None:
    """One Hogwild! updater u of Algorithm 1a, until the averager says stop (or disappears).

    `args`: `HogwildWorker`'s (the averager's pid last), then the pipe to the averager."""
    *work, report = args
    enter_child(parent_pid=work[-1])  # the averager ends its workers
    with reporting(report):
        worker = HogwildWorker(*work)
        state = worker.state
        state.increment(SharedState.READY)
        steps, cfg = worker.steps, worker.job.config
        worker.reading.work(
            state, steps, steps * cfg.max_epochs, worker.parent_pid, worker.train_epoch, worker.wait_for
        )


class HogwildWorker:
    """A worker's work: train the batches it leases, each with its own optimizer state."""

    def __init__(
        self,
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
    ):
        torch.set_num_threads(threads)
        self.index, self.model, self.dataset, self.job, self.state = index, model, dataset, job, state
        self.rank, self.world, self.parent_pid = rank, world, parent_pid
        cfg = job.config
        params = list(model.parameters())
        self.device = params[0].device
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.block = [params[i] for i in block_indices]
        # Momentum (the optimiser's state) private to this worker, as in 002's code.
        self.optimizer = make_optimizer(params, cfg, hidden_matrices(model))
        self.reading = READING[job.method_config.reading]
        self.steps = dataset.steps_per_epoch(cfg.batch_size, world, keep_partial=self.reading.keep_partial)
        self.count_update = self.reading.count_update(state)
        self.channels_last = uses_channels_last(cfg, dataset.spec)
        self.last_full = True  # LPP-SGD's last_iter, initialised FULL
        self.straggler = straggler_for(cfg, rank, world, unit=index)  # worker 0 of the last rank

    def train_epoch(self, epoch: int, leases) -> None:
        """Train the batches `leases` yields from epoch `epoch`, adding to the epoch's stats."""
        cfg, state, device = self.job.config, self.state, self.device
        stats = state.stats[self.index, epoch % SharedState.SLOTS]
        if self.straggler is not None:
            self.straggler.restart()
        batches = self.dataset.train_batches(
            epoch, cfg.batch_size, self.job.seed, device, self.rank, self.world, positions=leases
        )
        for inputs, targets in batches:
            inputs = to_model_layout(inputs, self.channels_last)
            set_lr(self.optimizer, lr_at(epoch + leases.position / self.steps, cfg))
            # LPP-SGD after partition_start: alternate a partitioned update (gradient and update
            # of this worker's block only) with a full one. LAP-SGD never sets the flag.
            partitioned = bool(state.get(SharedState.PARTITIONED)) and self.last_full
            self.last_full = not partitioned
            block = self.block if partitioned else None
            loss, logits = hogwild_step(
                self.model, self.optimizer, inputs, targets, block, after_gradient=self.count_update
            )
            with torch.no_grad():
                stats[0] += loss.detach() * len(targets)
                stats[1] += (logits.argmax(1) == targets).sum()
                stats[2] += len(targets)
            if self.straggler is not None:
                self.straggler.tick(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the epoch's updates and stats are in memory

    def wait_for(self, field: int, above: int) -> bool:
        """Sleep until `field` exceeds `above`; False when told to stop or the averager is gone."""
        state = self.state
        while state.get(field) <= above and not state.get(SharedState.STOP):
            if os.getppid() != self.parent_pid:
                return False
            time.sleep(POLL_S)
        return not state.get(SharedState.STOP)
