"""The engine of `async_lu` and `async_bu` (methods/async_backprop.py describes the method): the
backward threads, their passes in flight, the per-pass streams on CUDA, and the epoch's statistics."""

from __future__ import annotations

import os
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from queue import Queue, SimpleQueue

import torch

from core.config import TrainConfig, added_setting
from core.context import EpochMeter
from core.errors import UserError
from core.runtime.straggler import Straggler, straggler_for

from .delay import DelayCorrections
from .param_updates import ParameterUpdater, guard_forward_reads, module_groups

POLL_S = 0.05  # how often blocked threads look for an error or a stop request


class EngineStopped(Exception):
    """The engine is closing: a waiting forward thread gives up its batch."""


@dataclass(frozen=True)
class AsyncConfig(DelayCorrections):
    """The thread layout of PD-ASGD (the paper: 1 forward, 2 backward threads), and the delay
    corrections (off by default: the paper has none)."""

    forward_threads: int = 1
    backward_threads: int = 2
    # Passes alive at once, the one being forwarded included; 0 = forward_threads + backward_threads.
    max_in_flight: int = 0
    lock_free: bool = False  # pure Hogwild!: no per-module lock, updates can be lost
    # OS niceness added to the backward threads (Linux): where cores are short (a CPU), the forward
    # thread, the pipeline's one producer, runs first and fills the in-flight slots; with equal
    # shares it gets 2/3 of a core beside two backward threads (measured: docs/performance.md,
    # "Constants"). 0 = equal priority.
    backward_nice: int = 5
    # PipeDream's weight stashing (Narayanan et al. 2019), a correction: a pass's backward reads the
    # weights its forward read (autograd keeps a copy of each parameter it saves), so its gradient is
    # the exact gradient of its stale weights. Off: the paper's semantics (the backward may read
    # weights newer than its forward: a stale and inconsistent gradient).
    weight_stashing: bool = added_setting("weight_stashing", False, "2026-11-26")

    def validate(self) -> None:
        """Reject thread layouts that cannot run, with one line naming the key."""
        self.validate_corrections()
        for key in ("forward_threads", "backward_threads"):
            if getattr(self, key) < 1:
                raise UserError(f"{key} must be >= 1, got {getattr(self, key)}")
        if not 0 <= self.backward_nice <= 19:
            raise UserError(f"backward_nice must be in [0, 19], got {self.backward_nice}")
        for name in ("predict_weights", "delay_compensation"):
            if getattr(self, name) and self.lock_free:
                raise UserError(f"{name} needs the per-module locks: set lock_free=false")
        if self.max_in_flight < 0:
            limit = self.max_in_flight
            raise UserError(f"max_in_flight must be >= 0 (0 = forward + backward threads), got {limit}")

    @property
    def in_flight_limit(self) -> int:
        return self.max_in_flight or self.forward_threads + self.backward_threads


@dataclass
class Pass:
    """A forward pass's loss on its way to a backward thread."""

    loss: torch.Tensor | None
    lr: float
    read_versions: list[int]  # updates each tensor had received when the forward read the parameters
    queued_at: float
    stream: torch.cuda.Stream | None = None  # the pass's own CUDA stream (forward and backward)
    epochs_done: float = 0.0  # the pass's point in training (the delay corrections' warm-up)
    staleness: list[int] = field(default_factory=list)
    pending: dict[int, dict[int, torch.Tensor]] = field(default_factory=dict)  # LU: group -> grads so far
    ready: dict[int, float] = field(default_factory=dict)  # when each tensor's gradient was computed
    delay_s: float = 0.0  # summed over tensors: from its gradient's computation to its update


class EpochStats:
    """Per-epoch instrumentation, written by the backward threads under one lock."""

    def __init__(self, n_params: int):
        self.lock = threading.Lock()
        self.stale_sum = [0] * n_params
        self.stale_max = [0] * n_params
        self.updates = 0  # passes whose updates were all applied
        self.queue_wait_s = 0.0
        self.backward_busy_s = 0.0
        self.forward_idle_s = 0.0
        self.delay_s = 0.0

    def add_pass(self, staleness: list[int], queue_wait_s: float, busy_s: float, delay_s: float) -> None:
        with self.lock:
            self.delay_s += delay_s
            for i, s in enumerate(staleness):
                self.stale_sum[i] += s
                if s > self.stale_max[i]:
                    self.stale_max[i] = s
            self.updates += 1
            self.queue_wait_s += queue_wait_s
            self.backward_busy_s += busy_s


class AsyncEngine:
    """B backward threads, the in-flight limit (and on CUDA a stream per pass), the per-module
    updates, and error propagation."""

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: TrainConfig,
        acfg: AsyncConfig,
        layerwise: bool,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
        slow_backward: bool = True,
    ):
        """`slow_backward`: an asked straggler delay falls on backward thread 0 of the last rank
        (False: the method slows another unit itself)."""
        self.model, self.acfg, self.layerwise, self.device = model, acfg, layerwise, device
        self.names, self.params = zip(
            *[(n, p) for n, p in model.named_parameters() if p.requires_grad], strict=True
        )
        groups = module_groups(model, list(self.params))
        self.updater = ParameterUpdater(list(self.params), cfg, groups, acfg.lock_free, model)
        if acfg.corrects:
            self.updater.correct(acfg, acfg.in_flight_limit)
        self.queue: Queue[Pass | None] = Queue()
        limit = acfg.in_flight_limit
        self.slots = threading.BoundedSemaphore(limit)
        self.cuda = device.type == "cuda"
        # One stream per pass that can be alive, for the whole job: a stream made per epoch (or per
        # pass) leaves the caching allocator's blocks of the old ones unused, and memory grows.
        self.streams: list[torch.cuda.Stream | None] = (
            [torch.cuda.Stream(device) for _ in range(limit)] if self.cuda else [None]
        )
        self.free_streams: SimpleQueue = SimpleQueue()
        if self.cuda:
            for stream in self.streams:
                self.free_streams.put(stream)
        self.meters: dict[torch.cuda.Stream | None, EpochMeter] = {}
        self.idle = threading.Condition()
        self.in_flight = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.local = threading.local()
        self.stats = EpochStats(len(self.params))
        self.remove_guards = guard_forward_reads(
            model, self.updater, lambda: getattr(self.local, "stream", None)
        )
        # LU updates a module from these hooks; BU only notes when each gradient was computed.
        self.hooks = [p.register_hook(self._hook(i)) for i, p in enumerate(self.params)]
        self.threads = [
            threading.Thread(
                target=self._backward_loop,
                # backward thread 0 of the last rank
                args=(straggler_for(cfg, rank, world, unit=k) if slow_backward else None,),
                name=f"backward-{k}",
                daemon=True,
            )
            for k in range(acfg.backward_threads)
        ]
        for thread in self.threads:
            thread.start()

    # --- forward side ------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise the first error of any other thread, in the calling (forward) thread."""
        if self.error is not None:
            raise self.error

    def fail(self, err: BaseException) -> None:
        """Record a thread's error (the first one wins) and stop every thread."""
        if self.error is None:
            self.error = err
        self.stop.set()

    def acquire_slot(self) -> torch.cuda.Stream | None:
        """Block until fewer than max_in_flight passes are alive (time counted as forward idle);
        returns the pass's CUDA stream (None on the CPU)."""
        start = time.perf_counter()
        while not self.slots.acquire(timeout=POLL_S):
            self.check()
            if self.stop.is_set():
                raise EngineStopped
        self.stats.forward_idle_s += time.perf_counter() - start
        return self.free_streams.get_nowait() if self.cuda else None

    def release_slot(self, stream: torch.cuda.Stream | None) -> None:
        """Give back a slot (and its stream) that no pass used, or whose pass is done."""
        if stream is not None:
            self.free_streams.put(stream)
        self.slots.release()

    def read_versions(self) -> list[int]:
        """Each tensor's update count now: the 'read' of this forward pass, for staleness."""
        return list(self.updater.versions)

    def new_meters(self) -> None:
        """Fresh per-epoch accumulators, one per stream: passes on different streams may run at
        once on the GPU, and two streams adding into one tensor would lose counts."""
        self.meters = {stream: EpochMeter(self.device) for stream in self.streams}

    def count(self, stream, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a forward pass's loss and predictions to its stream's accumulator."""
        self.meters[stream].add(loss, logits, targets)

    def epoch_meter(self) -> EpochMeter:
        """The epoch's loss and accuracy over every stream (after `drain`)."""
        total = EpochMeter(self.device)
        for meter in self.meters.values():
            total.add_totals(meter.loss_sum, meter.correct, meter.samples)
        return total

    def submit(
        self,
        loss: torch.Tensor,
        lr: float,
        read_versions: list[int],
        stream: torch.cuda.Stream | None = None,
        epochs_done: float = 0.0,
    ) -> None:
        """Hand a loss to a free backward thread (a slot, and its stream, must have been acquired)."""
        with self.idle:
            self.in_flight += 1
        self.queue.put(Pass(loss, lr, read_versions, time.perf_counter(), stream, epochs_done))

    def drain(self) -> None:
        """Wait until every submitted pass has been applied (at epoch ends, before evaluating); on
        CUDA until the GPU has run them too."""
        start = time.perf_counter()
        with self.idle:
            while self.in_flight:
                self.idle.wait(timeout=POLL_S)
                self.check()
        if self.cuda:
            torch.cuda.synchronize(self.device)
        self.stats.forward_idle_s += time.perf_counter() - start
        self.check()

    def epoch_metrics(self, epoch_time_s: float) -> tuple[dict[str, float], dict[str, list]]:
        """The epoch's instrumentation: MLflow metrics, and the staleness of each parameter tensor
        as a table (in the model's order, input first); then a fresh accumulator."""
        s, self.stats = self.stats, EpochStats(len(self.params))
        passes = max(s.updates, 1)
        metrics = {
            "staleness_mean": sum(s.stale_sum) / (passes * len(self.params)),
            "staleness_max": max(s.stale_max),
            # 000 §3.4's τ: from a gradient's computation to its update (host clock), mean over the
            # tensors, and summed over them per pass (§3.4's τ = Σ_m τ_m, which the depth claim reads).
            "update_delay_s_mean": s.delay_s / (passes * len(self.params)),
            "update_delay_s_sum": s.delay_s / passes,
            "backward_queue_wait_s": s.queue_wait_s / passes,
            "forward_idle_frac": s.forward_idle_s / max(epoch_time_s * self.acfg.forward_threads, 1e-9),
            "backward_busy_frac": s.backward_busy_s / max(epoch_time_s * self.acfg.backward_threads, 1e-9),
        }
        per_tensor = dict(
            tensor=list(self.names),
            depth=list(range(len(self.names))),
            staleness_mean=[total / passes for total in s.stale_sum],
            staleness_max=list(s.stale_max),
        )
        return metrics, per_tensor

    def close(self) -> None:
        """Stop the backward threads (pending passes are dropped), remove the hooks, re-raise errors."""
        self.stop.set()
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join(timeout=30)
        for handle in self.hooks:
            handle.remove()
        self.remove_guards()
        self.check()

    def __enter__(self) -> AsyncEngine:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:  # the forward side's error wins; a backward error is already what it re-raised
            try:
                self.close()
            except BaseException:
                pass

    # --- backward side -----------------------------------------------------------------------------
    def _hook(self, index: int):
        """LU: collect parameter `index`'s gradient of this pass; once its module's gradients are all
        in (they come out of one backward node together), update the module at once."""
        group = self.updater.group_of[index]
        size = len(self.updater.groups[group])

        def on_gradient(grad: torch.Tensor) -> None:
            current: Pass | None = getattr(self.local, "current", None)
            if current is not None:
                current.ready[index] = time.perf_counter()
                if not self.layerwise:
                    return
                grads = current.pending.setdefault(group, {})
                grads[index] = grad
                if len(grads) == size:
                    del current.pending[group]
                    self._apply(current, grads)

        return on_gradient

    def _apply(self, item: Pass, grads: dict[int, torch.Tensor]) -> None:
        before = self.updater.apply(grads, item.lr, item.read_versions, item.epochs_done)
        now = time.perf_counter()
        for index, count in before.items():
            item.staleness[index] = count - item.read_versions[index]
            item.delay_s += now - item.ready.get(index, now)

    def _backward_loop(self, straggler: Straggler | None) -> None:
        lower_priority(self.acfg.backward_nice)
        if self.cuda:
            # Run this thread's backward passes here: autograd's one worker thread per device would
            # otherwise launch every concurrent pass's kernels itself, one pass after another.
            torch.autograd.set_multithreading_enabled(False)
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    return
                if not self.stop.is_set():
                    busy = self._backward(item)
                    if straggler is not None:  # a slow thread holds its pass (and slot) the longer
                        if item.stream is not None:
                            item.stream.synchronize()  # the device idles for the delay too
                        straggler.after_step(busy)
                stream, item = item.stream, None  # the pass's graph is freed (on its own stream)
                with self.idle:
                    self.in_flight -= 1
                    self.idle.notify_all()
                self.release_slot(stream)
        except BaseException as err:  # noqa: BLE001  (any error ends the job, in the forward thread)
            self.fail(err)

    def _backward(self, item: Pass) -> float:
        """The pass's backward and updates, launched on its own stream; host seconds it took."""
        start = time.perf_counter()
        item.staleness = [0] * len(self.params)
        with torch.cuda.stream(item.stream) if item.stream is not None else nullcontext():
            self.local.current = item
            try:
                grads = torch.autograd.grad(item.loss, self.params, allow_unused=True)
            finally:
                self.local.current = None
            if self.layerwise:
                del grads  # applied module by module in the hooks: hold no whole set of gradients
                for pending in item.pending.values():  # a module with a tensor outside the graph
                    self._apply(item, pending)
            else:
                self._apply(item, {i: g for i, g in enumerate(grads) if g is not None})
        busy = time.perf_counter() - start
        self.stats.add_pass(item.staleness, start - item.queued_at, busy, item.delay_s)
        return busy


def lower_priority(nice: int) -> None:
    """Add `nice` to the calling thread's OS niceness, where the OS has per-thread niceness (Linux);
    an unprivileged process may lower its threads' priority, never raise it."""
    if nice and hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
        except OSError:  # not permitted here: run at equal priority
            pass
