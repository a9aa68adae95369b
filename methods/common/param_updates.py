"""Optimiser updates for methods that apply updates themselves (async, Hogwild!), a group of tensors
at a time.

A group is the parameter tensors of one module (a conv's weight; a BatchNorm's weight and bias; the
LSTM's eight tensors): its gradients come out of one backward node together, so a layer-wise update
of the group is one torch.optim step of that group's optimiser (any optimiser `make_optimizer`
builds; foreach on the CPU, fused kernels on CUDA where torch has them). Each backward thread has
its own optimisers over views of the parameters (`.data`, which does not bump the version counter
that in-flight backward passes check), sharing each tensor's optimiser state; updates run under the
group's lock unless `lock_free`. On CUDA, `GpuFences` orders each group's writes against the forward
passes' reads on the other streams."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, ExitStack, nullcontext

import torch
from torch import nn

from core.config import TrainConfig

from .delay import DelayCorrections, ExpectedStaleness, compensate, tune
from .optim import hidden_matrices, make_optimizer, set_lr


def owners(model: nn.Module, params: list[nn.Parameter]) -> list[tuple[nn.Module, list[int]]]:
    """Each module that directly owns some of `params`, with their indices (model order, input first)."""
    index = {id(p): i for i, p in enumerate(params)}
    found = []
    for module in model.modules():
        owned = [index.pop(id(p)) for p in module.parameters(recurse=False) if id(p) in index]
        if owned:
            found.append((module, owned))
    return found


def module_groups(model: nn.Module, params: list[nn.Parameter]) -> list[list[int]]:
    """Indices into `params` grouped by the module that owns them (model order, input first); the
    groups of `owners`, in its order, then any parameter no module owns (never in practice)."""
    groups = [owned for _, owned in owners(model, params)]
    grouped = {i for group in groups for i in group}
    return groups + [[i] for i in range(len(params)) if i not in grouped]


class GpuFences:
    """Stream order for one parameter group's tensors on CUDA, where each pass has its own stream.

    `written[g]` is recorded after every write of group g (an update, another rank's update);
    `read[g]` after every forward of its module (the read, and BatchNorm's running statistics).
    A write waits for both (no update overwrites a tensor that a forward launched before it is still
    reading, nor races an earlier update); a forward waits for both too (it reads no half-written
    tensor, and no forward races another's running statistics). Events are reused, never created
    per step; waiting on one never recorded is a no-op.
    """

    def __init__(self, groups: int):
        self.written = [torch.cuda.Event() for _ in range(groups)]
        self.read = [torch.cuda.Event() for _ in range(groups)]

    def before(self, group: int, stream: torch.cuda.Stream | None = None) -> None:
        """`stream` (default: the current one) waits for the group's last read and last write."""
        stream = stream or torch.cuda.current_stream()
        stream.wait_event(self.written[group])
        stream.wait_event(self.read[group])

    def after_write(self, group: int) -> None:
        self.written[group].record()

    def after_read(self, group: int, stream: torch.cuda.Stream | None = None) -> None:
        self.read[group].record(stream)


class ParameterUpdater:
    """Applies the updates of one or more groups through torch.optim, one optimiser per group and
    thread; counts each tensor's updates."""

    def __init__(
        self,
        params: list[nn.Parameter],
        cfg: TrainConfig,
        groups: list[list[int]] | None = None,
        lock_free: bool = False,
        model: nn.Module | None = None,
    ):
        self.params, self.cfg, self.lock_free = list(params), cfg, lock_free
        self.groups = groups if groups is not None else [[i] for i in range(len(self.params))]
        self.group_of = {i: g for g, members in enumerate(self.groups) for i in members}
        self.locks = [threading.Lock() for _ in self.groups]
        self.cuda = bool(self.params) and self.params[0].is_cuda
        # Lock-free (pure Hogwild!) updates are not ordered on the GPU either: no fences.
        self.fences = GpuFences(len(self.groups)) if self.cuda and not lock_free else None
        self.fused = self.cuda  # torch's fused kernels (which also run on the CPU, not bit-identically)
        hidden = {id(p) for p in hidden_matrices(model)} if model is not None else set()
        self.matrices = [id(p) in hidden for p in self.params]  # Muon's tensors (optimizer=muon)
        self.states: list[dict] = [{} for _ in self.params]  # each tensor's optimiser state, for every thread
        if cfg.optimizer == "sgd" and cfg.momentum:
            # torch's fused SGD takes one first-step flag per call, so a group whose tensors first get
            # gradients in different passes fails in it; a zero buffer's step is the first step's
            # (0 x momentum + g = g, bit for bit).
            for state, p in zip(self.states, self.params, strict=True):
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self.local = threading.local()  # each thread's optimisers and tensors (`optimizers`)
        self.versions = [0] * len(self.params)  # updates applied to each tensor so far (any rank's)
        self.exchange = None  # an UpdateExchange on several processes: every applied update is also sent
        # Delay corrections (methods/common/delay.py): set by `correct` where a setting asks for one,
        # with the horizon N (the passes that can be in flight) and each module's expected staleness.
        self.corrections: DelayCorrections | None = None
        self.horizon = 1.0
        self.expected = ExpectedStaleness(len(self.groups))
        # predict_weights: each tensor's last update (any thread's), which the forward extrapolates.
        self.last_step: list[torch.Tensor | None] = [None] * len(self.params)
        # delay_compensation: each tensor's latest updates (its update count before each, the delta)
        # and its gradients' moving mean square.
        self.recent: list[deque[tuple[int, torch.Tensor]]] = []
        self.mean_squares: list[torch.Tensor] = []

    def correct(self, corrections: DelayCorrections, horizon: int) -> None:
        """Apply these delay corrections, with N = `horizon` passes in flight. Compensation keeps each
        tensor's last 2N + 1 updates: the drift of a gradient whose pass saw more updates since its
        forward (never seen at N = 3: staleness peaks at 3 on the GPT) is summed over those alone."""
        self.corrections, self.horizon = corrections, float(horizon)
        if self.compensating:
            self.recent = [deque(maxlen=2 * horizon + 1) for _ in self.params]
            self.mean_squares = [torch.zeros_like(p) for p in self.params]

    def locked(self, groups: Iterable[int]) -> AbstractContextManager:
        """Hold the groups' locks (none if lock_free), taken in index order: no deadlock between callers.
        One group (a layer-wise update, ~40 a pass) is its lock itself: no ExitStack on that path."""
        groups = sorted(groups)
        if self.lock_free:
            return nullcontext()
        if len(groups) == 1:
            return self.locks[groups[0]]
        stack = ExitStack()
        for g in groups:
            stack.enter_context(self.locks[g])
        return stack

    def apply(
        self,
        grads: dict[int, torch.Tensor],
        lr: float,
        read_versions: list[int] | None = None,
        epochs_done: float = 0.0,
    ) -> dict[int, int]:
        """Update the tensors named by `grads`' keys (whole groups: one hook's, or a whole pass's),
        one optimiser step per group; returns how many updates each tensor had received before.
        `read_versions` (each tensor's update count when the pass's forward read it) and
        `epochs_done` (the pass's point in training) feed the delay corrections, where set."""
        groups = sorted({self.group_of[i] for i in grads})
        with self.locked(groups):
            return self._apply(groups, grads, lr, read_versions, epochs_done)

    def add_remote(
        self,
        group: int,
        values: list[torch.Tensor],
        counts: list[int],
        mix: float | Callable[[], float] | None = None,
    ) -> list[torch.Tensor]:
        """Add another rank's updates of `group` (one delta per tensor) and count them, for staleness;
        with `mix`, `values` are that rank's weights and each tensor moves `mix` of the way to them
        (w + mix (w_peer - w), under the same lock: no update of the group lands in between; a
        callable is asked for the part under that lock). Returns what was added to each tensor."""
        added = []
        with self.locked([group]):
            if self.fences is not None:
                self.fences.before(group)
            part = mix() if callable(mix) else mix
            for i, value, count in zip(self.groups[group], values, counts, strict=True):
                weights = self.params[i].data
                delta = (
                    value.view_as(weights) if part is None else (value.view_as(weights) - weights).mul_(part)
                )
                weights.add_(delta)
                added.append(delta)
                if self.compensating:  # another rank's updates are drift too (numbered as the first)
                    self.recent[i].append((self.versions[i], delta.clone()))
                self.versions[i] += count
            if self.fences is not None:
                self.fences.after_write(group)
        return added

    def optimizers(self) -> tuple[list, list[torch.Tensor]]:
        """The calling thread's optimisers (one per group) and the tensors they step: views of the
        parameters (`.data`: a step does not bump the version counter that in-flight backward
        passes check), or private copies where an exchange must send each update's own delta.
        Every thread's optimisers share each tensor's state (a thread has its own `.grad` slots, so
        lock-free updates race on the arithmetic only, as Hogwild!'s do)."""
        made = getattr(self.local, "optimizers", None)
        if made is None:
            private = self.exchange is not None
            tensors = [p.detach().clone() if private else p.data for p in self.params]
            index = {id(t): i for i, t in enumerate(tensors)}
            optimizers = []
            for members in self.groups:
                matrices = [tensors[i] for i in members if self.matrices[i]]
                optimizer = make_optimizer([tensors[i] for i in members], self.cfg, matrices, self.fused)
                for part in getattr(optimizer, "parts", [optimizer]):
                    for tensor in (t for group in part.param_groups for t in group["params"]):
                        part.state[tensor] = self.states[index[id(tensor)]]
                optimizers.append(optimizer)
            made = self.local.optimizers = (optimizers, tensors)
        return made

    @property
    def predicting(self) -> bool:
        """Whether the forward extrapolates the weights (predict_weights): each update's delta is kept."""
        return self.corrections is not None and self.corrections.predict_weights

    @property
    def compensating(self) -> bool:
        """Whether gradients are compensated for the drift since their forward (delay_compensation)."""
        return self.corrections is not None and self.corrections.delay_compensation > 0

    def _apply(
        self,
        groups: list[int],
        grads: dict[int, torch.Tensor],
        lr: float,
        read_versions: list[int] | None = None,
        epochs_done: float = 0.0,
    ) -> dict[int, int]:
        if self.fences is not None:
            for g in groups:
                self.fences.before(g)
        indices = sorted(grads)
        if self.exchange is None and not self.predicting and not self.compensating:
            self._step(groups, grads, lr, read_versions, epochs_done)
        else:
            deltas = self._measured_step(indices, groups, grads, lr, read_versions, epochs_done)
            if self.exchange is not None:
                self.exchange.record(indices, deltas)
            for i, delta in zip(indices, deltas, strict=True):
                if self.predicting:
                    self.last_step[i] = delta
                if self.compensating:
                    self.recent[i].append((self.versions[i], delta))
        if self.fences is not None:
            for g in groups:
                self.fences.after_write(g)
        counts = {}
        for i in indices:
            counts[i] = self.versions[i]
            self.versions[i] += 1
        return counts

    def _measured_step(self, indices: list[int], *step_args) -> list[torch.Tensor]:
        """`_step`, returning what it changed in each of these tensors. Under an exchange the update
        is computed on a private copy and added to the parameter: reading `param - previous` after
        an in-place update would also count what the exchange thread added meanwhile (lock_free)."""
        live = [self.params[i].data for i in indices]
        if self.exchange is None:
            before = [t.clone() for t in live]
            self._step(*step_args)
            return torch._foreach_sub(live, before)
        private = [self.optimizers()[1][i] for i in indices]
        torch._foreach_copy_(private, live)
        before = [t.clone() for t in private]
        self._step(*step_args)
        deltas = torch._foreach_sub(private, before)
        self.exchange.scale_steps(indices, deltas)  # push-sum's step on its numerator
        torch._foreach_add_(live, deltas)
        return deltas

    def _step(
        self,
        groups: list[int],
        grads: dict[int, torch.Tensor],
        lr: float,
        read_versions: list[int] | None = None,
        epochs_done: float = 0.0,
    ) -> None:
        """One torch.optim step of each group's optimiser, with these gradients (a tensor without
        one this pass is left alone, as torch.optim leaves a parameter whose grad is None). With
        delay corrections, each group's learning rate and momentum come from its expected
        staleness, which this update's measured staleness (the mean over its tensors) joins."""
        optimizers, tensors = self.optimizers()
        for g in groups:
            members = [i for i in self.groups[g] if i in grads]
            for i in members:
                tensors[i].grad = grads[i]
            if self.compensating and read_versions is not None:
                self._compensate(members, grads, read_versions)
            if self.corrections is not None and read_versions is not None:
                measured = sum(self.versions[i] - read_versions[i] for i in members) / len(members)
                expected = self.expected.observe(g, measured)
                tune(optimizers[g], self.corrections, self.cfg, lr, expected, self.horizon, epochs_done)
            else:
                set_lr(optimizers[g], lr)
            optimizers[g].step()
            for i in members:
                tensors[i].grad = None

    def _compensate(
        self, members: list[int], grads: dict[int, torch.Tensor], read_versions: list[int]
    ) -> None:
        """DC-ASGD on these tensors' gradients, in place: the drift of each is the sum of the updates
        it received since its pass's forward read it (zero for a fresh one, whose gradient still
        joins the mean square)."""
        drifts = []
        for i in members:
            since = [delta for number, delta in self.recent[i] if number >= read_versions[i]]
            drifts.append(torch.stack(since).sum(0) if since else torch.zeros_like(grads[i]))
        mean_squares = [self.mean_squares[i] for i in members]
        compensate([grads[i] for i in members], drifts, mean_squares, self.corrections.delay_compensation)


def guard_forward_reads(
    model: nn.Module, updater: ParameterUpdater, pass_stream: Callable[[], torch.cuda.Stream | None]
) -> Callable[[], None]:
    """Hooks around every forward of a parameter-owning module, under the module's lock (so that no
    update lands in between): on CUDA its GpuFences (the forward waits for the group's last write,
    and records its read, on `pass_stream()`, the stream the calling thread forwards on; None: the
    current one); with `predict_weights`, the module's weights extrapolated by its expected
    staleness × its last update for the forward, and restored exactly after it. Returns a function
    that removes the hooks. Nothing to do on the CPU without prediction (docs/methods.md, async_lu).

    The hooks are on the forward thread's path, the pipeline's one producer: they cost ~6 µs of
    host time per module (41 in ResNet-18; measured on a CPU, without the event calls) before the
    two event waits and one record, which are not yet measured on a GPU."""
    predicting = updater.predicting
    if updater.fences is None and not predicting:
        return lambda: None
    fences, handles = updater.fences, []  # (lock-free runs neither: every group has its lock here)
    for module, owned in owners(model, updater.params):
        group = updater.group_of[owned[0]]
        lock, members = updater.locks[group], updater.groups[group]
        saved: list[list[torch.Tensor]] = []

        def before(_module, _inputs, group=group, lock=lock, members=members, saved=saved):
            lock.__enter__()
            if fences is not None:
                fences.before(group, pass_stream())
            if predicting:
                saved.append(predict(updater, group, members))

        def after(_module, _inputs, _outputs, group=group, lock=lock, members=members, saved=saved):
            if predicting and saved:
                for i, weights in zip(members, saved.pop(), strict=True):
                    if weights is not None:
                        updater.params[i].data.copy_(weights)
            if fences is not None:
                fences.after_read(group, pass_stream())
            lock.__exit__(None, None, None)

        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after, always_call=True))

    def remove() -> None:
        for handle in handles:
            handle.remove()

    return remove


def predict(updater: ParameterUpdater, group: int, members: list[int]) -> list[torch.Tensor | None]:
    """Put w + τ Δw into the group's tensors (τ its expected staleness, Δw each tensor's last
    update); returns the weights to restore (None: a tensor left as it was)."""
    staleness = updater.expected.values[group] or 0.0
    saved: list[torch.Tensor | None] = []
    for i in members:
        step = updater.last_step[i]
        if step is None or staleness == 0:
            saved.append(None)
            continue
        weights = updater.params[i].data
        saved.append(weights.clone())
        weights.add_(step, alpha=staleness)
    return saved
