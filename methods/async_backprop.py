"""`async_lu` and `async_bu`: decoupled asynchronous backprop (000 §3, Algorithm 1; PD-ASGD in 004).

One forward thread (or F, sharing the epoch's batches) computes losses with the latest parameters
and hands each loss, with its graph, to one of B backward threads; it blocks only when
`max_in_flight` passes are alive (default F + B: the next forward runs while every backward thread
works, as in 000's Figure 1).
A backward thread runs `torch.autograd.grad(loss, params)`:
- LU (layer-wise updates): hooks receive that pass's gradients the moment they are computed and
  apply each module's update at once ("θ_m ← θ_m − η·G" inside the layer loop of Algorithm 1's
  backward thread), one optimiser call per module (its tensors' gradients come out together);
- BU (block updates, §3.4): the pass's updates are applied when its whole backward pass ends.

Gradients stay private to their pass (no shared `.grad`: concurrent passes would lose and
double-count them, see docs/design.md); updates go to the parameters the forward thread reads, in
place through `param.data` (a backward pass may use parameters newer than its forward: the
paper's semantics), each module's update atomic under its own lock unless `lock_free`.
BatchNorm running statistics are updated by the forward thread(s) only.

On CUDA every pass that can be alive has a stream of its own, created once per job: the pass's
forward runs on it, so autograd runs its backward there too (backward ops run on their forward's
stream) and passes overlap on the GPU. Events order each module's updates against the forwards
that read it (methods/common/param_updates.py, GpuFences); nothing waits for the GPU per step.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from core.context import TrainContext
from core.runtime.straggler import Straggler
from core.schedule import lr_at

from .common.async_engine import POLL_S, AsyncConfig, AsyncEngine, EngineStopped
from .common.base import Method, register_method
from .common.delay import stashing_weights
from .common.update_exchange import UpdateExchange, replica_drift


class AsyncBackprop(Method):
    """The shared training loop of async_lu and async_bu: the forward thread is the caller's."""

    Config = AsyncConfig
    max_devices = None  # one process per device, each with its own threads and data shard
    parallel = "threads"  # its backward threads use a profile's cores; several processes where a table asks
    layerwise: bool

    def train(self, ctx: TrainContext) -> None:
        cfg, acfg, model = ctx.config, ctx.method_config, ctx.model
        if cfg.threads == 0 and ctx.device.type == "cpu":
            # The method's parallelism is its threads: share the process's cores among them (the
            # paper's setting is one intra-op thread each) rather than oversubscribe them.
            cores = max(1, (os.cpu_count() or 1) // ctx.world)
            torch.set_num_threads(max(1, cores // (acfg.forward_threads + acfg.backward_threads)))
        # An asked delay falls on backward thread 0 of the last rank, or on its forward thread.
        self.slowed_forward = self.forward_straggler(ctx)
        slow_backward = self.slowed_forward is None
        with AsyncEngine(
            model, cfg, acfg, self.layerwise, ctx.device, ctx.rank, ctx.world, slow_backward=slow_backward
        ) as engine:
            exchange = self.make_exchange(engine, ctx)
            engine.updater.exchange = exchange
            for epoch in ctx.epochs():
                engine.new_meters()
                epoch_start = ctx.train_time_s
                batches = SharedBatches(self.epoch_batches(ctx, epoch))
                helpers = [
                    threading.Thread(
                        target=self._helper,
                        args=(engine, ctx, epoch, batches),
                        name=f"forward-{k}",
                        daemon=True,
                    )
                    for k in range(1, acfg.forward_threads)
                ]
                for thread in helpers:
                    thread.start()
                try:
                    self.forward_thread(engine, ctx, epoch, batches)
                except BaseException:
                    engine.stop.set()  # waiting helpers give up at once (Ctrl-C, an error)
                    raise
                finally:
                    batches.close()
                    for thread in helpers:
                        while thread.is_alive():
                            thread.join(timeout=POLL_S)
                engine.drain()
                passes = engine.stats.updates  # the epoch's, before epoch_metrics starts them again
                extra, per_tensor = engine.epoch_metrics(ctx.train_time_s - epoch_start)
                # 2 x (parameter tensors) numbers an epoch: one artifact table, not metrics in the UI.
                ctx.log_table("staleness.json", {"epoch": [epoch] * len(per_tensor["tensor"]), **per_tensor})
                if exchange is not None:
                    exchange.flush()  # every update sent to this rank in the epoch is now applied
                    extra["replica_drift"] = replica_drift(model)
                    extra.update(exchange.epoch_metrics(passes))
                ctx.end_epoch(engine.epoch_meter(), model=self.evaluated_model(ctx), extra=extra)
            if exchange is not None:
                exchange.close()

    def epoch_batches(self, ctx: TrainContext, epoch: int) -> Iterator[tuple[int, object]]:
        """The epoch's batches of this process, each with its step in the process's share of the
        epoch (the learning rate's point): its shard, in order."""
        return enumerate(ctx.train_batches(epoch))

    def forward_straggler(self, ctx: TrainContext) -> Straggler | None:
        """A straggler delay on the forward thread (None: on backward thread 0 of the last rank)."""
        return None

    def make_exchange(self, engine: AsyncEngine, ctx: TrainContext) -> UpdateExchange | None:
        """What sends each applied update to the other processes: every update to every replica
        (000's multi-GPU runs: an all-reduce of the updates), none on one process."""
        return UpdateExchange(engine.updater, ctx.device) if ctx.world > 1 else None

    def evaluated_model(self, ctx: TrainContext) -> torch.nn.Module | None:
        """The model rank 0 evaluates at an epoch end (None: its own replica, `ctx.model`)."""
        return None

    def forward_thread(
        self, engine: AsyncEngine, ctx: TrainContext, epoch: int, batches: SharedBatches
    ) -> None:
        """Algorithm 1's forward thread: the next batch's loss with the latest parameters, sent on."""
        cfg, model = ctx.config, ctx.model
        stashing = ctx.method_config.weight_stashing
        params = list(model.parameters())
        main = threading.current_thread() is threading.main_thread()  # not an extra forward thread
        straggler = getattr(self, "slowed_forward", None) if main else None
        if straggler is not None:
            straggler.restart()
        while (item := batches.next()) is not None:
            step, (inputs, targets) = item
            stream = engine.acquire_slot()
            epochs_done = epoch + step / ctx.steps_per_epoch
            lr = lr_at(epochs_done, cfg)
            read = engine.read_versions()
            if stream is not None:
                # The batch was made on this thread's stream: the pass waits for it, and the
                # allocator keeps its memory until the pass's stream is done with it.
                stream.wait_stream(torch.cuda.current_stream(ctx.device))
                for tensor in tensors_of(inputs, targets):
                    tensor.record_stream(stream)
            engine.local.stream = stream  # the fences' hooks read it: cheaper than current_stream()
            with torch.cuda.stream(stream) if stream is not None else nullcontext():
                with stashing_weights(params) if stashing else nullcontext():
                    logits = model(inputs)
                    loss = F.cross_entropy(logits, targets)
                with batches.lock:
                    engine.count(stream, loss, logits, targets)
                engine.submit(loss, lr, read, stream, epochs_done)
            engine.local.stream = None
            engine.check()
            if straggler is not None:  # the whole worker slows: it hands on fewer passes
                straggler.tick(ctx.device)

    def _helper(self, engine: AsyncEngine, ctx: TrainContext, epoch: int, batches: SharedBatches) -> None:
        """An extra forward thread (F > 1): its errors end the job like a backward thread's."""
        try:
            self.forward_thread(engine, ctx, epoch, batches)
        except EngineStopped:
            pass
        except BaseException as err:  # noqa: BLE001  (re-raised in the calling thread)
            engine.fail(err)


def tensors_of(*items) -> list[torch.Tensor]:
    """The tensors in a batch: a tensor, or a tuple of them (token batches)."""
    found = []
    for item in items:
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, tuple | list):
            found += tensors_of(*item)
    return found


class SharedBatches:
    """An epoch's numbered batches, handed out one at a time to the forward threads."""

    def __init__(self, numbered):
        self.lock = threading.Lock()
        self.items = iter(numbered)
        self.closed = False

    def next(self):
        """(step, batch), or None at the end of the epoch (or once closed)."""
        with self.lock:
            return None if self.closed else next(self.items, None)

    def close(self) -> None:
        with self.lock:
            self.closed = True


@register_method("async_lu")
class AsyncLU(AsyncBackprop):
    """Decoupled async backprop with layer-wise updates."""

    summary = (
        "decoupled async backprop, layer-wise updates (PD-ASGD, 000 Alg. 1): 1 forward + B backward threads"
    )
    cost_vs_bp = 1.15  # run claims' prior: wall time / bp's
    layerwise = True


@register_method("async_bu")
class AsyncBU(AsyncBackprop):
    """Decoupled async backprop with block updates after each whole backward pass."""

    summary = "decoupled async backprop, block updates after each backward pass (000 §3.4)"
    cost_vs_bp = 1.1  # run claims' prior: wall time / bp's
    layerwise = False
