"""Optimiser updates for methods that apply updates themselves (async, Hogwild!), a group of tensors
at a time.

A group is the parameter tensors of one module (a conv's weight; a BatchNorm's weight and bias; the
LSTM's eight tensors): its gradients come out of one backward node together, so a layer-wise update
of the group is the same update as tensor by tensor, in one optimiser call: torch's foreach
arithmetic on the CPU (bit-identical to torch.optim's default there, tested) and its fused kernels
on CUDA (one launch per group instead of four per tensor). SGD calls those ops itself, in
torch.optim's order: `torch.optim.sgd.sgd` spends ~5.5 µs of Python per call sorting tensors by device
and dtype, which a group never needs, and this runs ~40 times per pass on the backward threads,
holding the GIL that the forward thread needs (measured on a CPU: 13.5 -> 5.9 µs per group with the
fused kernel, whose call alone takes 2.7). Updates go through `param.data` (which
does not bump the version counter that in-flight backward passes check), under the group's lock
unless `lock_free`. On CUDA, `GpuFences` orders each group's writes against the forward passes'
reads on the other streams.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, ExitStack, nullcontext

import torch
from torch import nn
from torch.optim.adam import adam

from core.config import TrainConfig


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
    """Applies the updates of one or more groups in one optimiser call; counts each tensor's updates."""

    def __init__(
        self,
        params: list[nn.Parameter],
        cfg: TrainConfig,
        groups: list[list[int]] | None = None,
        lock_free: bool = False,
    ):
        self.params, self.cfg, self.lock_free = list(params), cfg, lock_free
        self.groups = groups if groups is not None else [[i] for i in range(len(self.params))]
        self.group_of = {i: g for g, members in enumerate(self.groups) for i in members}
        self.locks = [threading.Lock() for _ in self.groups]
        self.cuda = bool(self.params) and self.params[0].is_cuda
        # Lock-free (pure Hogwild!) updates are not ordered on the GPU either: no fences.
        self.fences = GpuFences(len(self.groups)) if self.cuda and not lock_free else None
        self.fused = self.cuda  # torch's fused kernels (which also run on the CPU, not bit-identically)
        self.momentum: list[torch.Tensor | None] = [None] * len(self.params)  # SGD state
        adam_state = cfg.optimizer in ("adam", "adamw")
        self.exp_avg = [torch.zeros_like(p) for p in self.params] if adam_state else []
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params] if adam_state else []
        # As torch.optim.Adam keeps them: on the CPU for foreach, on the device for the fused kernel.
        step_device = self.params[0].device if self.cuda else "cpu"  # (the CPU's fused Adam takes CPU steps)
        self.steps = [torch.zeros((), device=step_device) for _ in self.params] if adam_state else []
        self.versions = [0] * len(self.params)  # updates applied to each tensor so far (any rank's)
        self.exchange = None  # an UpdateExchange on several processes: every applied update is also sent

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

    def apply(self, grads: dict[int, torch.Tensor], lr: float) -> dict[int, int]:
        """Update the tensors named by `grads`' keys (whole groups: one hook's, or a whole pass's) in
        one optimiser call; returns how many updates each tensor had received before."""
        groups = sorted({self.group_of[i] for i in grads})
        with self.locked(groups):
            return self._apply(groups, grads, lr)

    def add_remote(self, group: int, deltas: list[torch.Tensor], counts: list[int]) -> None:
        """Add another rank's updates of `group` (one delta per tensor) and count them, for staleness."""
        with self.locked([group]):
            if self.fences is not None:
                self.fences.before(group)
            for i, delta, count in zip(self.groups[group], deltas, counts, strict=True):
                self.params[i].data.add_(delta.view_as(self.params[i]))
                self.versions[i] += count
            if self.fences is not None:
                self.fences.after_write(group)

    def _apply(self, groups: list[int], grads: dict[int, torch.Tensor], lr: float) -> dict[int, int]:
        if self.fences is not None:
            for g in groups:
                self.fences.before(g)
        indices = sorted(grads)
        params = [self.params[i].data for i in indices]
        if self.exchange is None:
            self._step(indices, params, [grads[i] for i in indices], lr)
        else:
            # The update is computed on a copy and its delta sent on: reading `param - previous` after
            # an in-place update would also send what the exchange thread added meanwhile (lock_free).
            before = [p.clone() for p in params]
            after = [p.clone() for p in before]
            self._step(indices, after, [grads[i] for i in indices], lr)
            deltas = torch._foreach_sub(after, before)
            torch._foreach_add_(params, deltas)
            self.exchange.record(indices, deltas)
        if self.fences is not None:
            for g in groups:
                self.fences.after_write(g)
        counts = {}
        for i in indices:
            counts[i] = self.versions[i]
            self.versions[i] += 1
        return counts

    def _step(self, indices: list[int], params: list[torch.Tensor], grads: list[torch.Tensor], lr: float):
        """torch.optim's arithmetic on these tensors: foreach on the CPU, fused on CUDA."""
        cfg, fused = self.cfg, self.fused
        if cfg.optimizer in ("adam", "adamw"):
            adam(
                params,
                grads,
                [self.exp_avg[i] for i in indices],
                [self.exp_avg_sq[i] for i in indices],
                [],
                [self.steps[i] for i in indices],
                foreach=not fused,
                fused=fused,
                amsgrad=False,
                beta1=0.9,
                beta2=0.999,
                lr=lr,
                weight_decay=cfg.weight_decay,
                eps=1e-8,
                maximize=False,
                decoupled_weight_decay=cfg.optimizer == "adamw",  # torch.optim.AdamW's arithmetic
            )
            return
        self._sgd(indices, params, grads, lr)

    def _sgd(self, indices: list[int], params: list[torch.Tensor], grads: list[torch.Tensor], lr: float):
        """torch.optim.SGD's step (dampening 0, not maximising) on these tensors: its fused kernel,
        or its foreach ops in the order `torch.optim.sgd._multi_tensor_sgd` runs them."""
        cfg = self.cfg
        momentum, weight_decay, nesterov = cfg.momentum, cfg.weight_decay, cfg.nesterov
        buffers = [self.momentum[i] for i in indices]
        fresh = [b is None for b in buffers]
        if self.fused:
            first = momentum != 0 and any(fresh)
            if first and not all(fresh):
                # The kernel takes one first-step flag per call: tensors updating for the first time
                # (a tensor that had no gradient in earlier passes) go in a call of their own.
                for is_first in (True, False):
                    part = [k for k, f in enumerate(fresh) if f == is_first]
                    self._sgd(
                        [indices[k] for k in part], [params[k] for k in part], [grads[k] for k in part], lr
                    )
                return
            if first:
                buffers = [torch.empty_like(g) for g in grads]  # the kernel fills them on the first step
            torch._fused_sgd_(
                params,
                grads,
                buffers if momentum else [],
                weight_decay=weight_decay,
                momentum=momentum,
                lr=lr,
                dampening=0.0,
                nesterov=nesterov,
                maximize=False,
                is_first_step=first,
                grad_scale=None,
                found_inf=None,
            )
        else:
            if weight_decay:
                grads = torch._foreach_add(grads, params, alpha=weight_decay)
            if momentum:
                if any(fresh):
                    for k, buffer in enumerate(buffers):
                        if buffer is None:
                            buffers[k] = grads[k].detach().clone()
                        else:
                            buffer.mul_(momentum).add_(grads[k], alpha=1.0)
                else:
                    torch._foreach_mul_(buffers, momentum)
                    torch._foreach_add_(buffers, grads, alpha=1.0)
                if nesterov:
                    torch._foreach_add_(grads, buffers, alpha=momentum)  # (fresh tensors or this pass's own)
                else:
                    grads = buffers
            torch._foreach_add_(params, grads, alpha=-lr)
        if momentum:
            for i, buffer in zip(indices, buffers, strict=True):
                self.momentum[i] = buffer


def fence_forward_reads(
    model: nn.Module, updater: ParameterUpdater, pass_stream: Callable[[], torch.cuda.Stream | None]
) -> Callable[[], None]:
    """On CUDA, make every forward of a parameter-owning module wait for its group's last write and
    record its read (GpuFences), under the group's lock so that no update is launched in between;
    `pass_stream()` is the stream the calling thread forwards on (None: the current one). Returns a
    function that removes the hooks. Nothing to do on the CPU (docs/methods.md, async_lu).

    The hooks are on the forward thread's path, the pipeline's one producer: they cost ~6 µs of
    host time per module (41 in ResNet-18; measured on a CPU, without the event calls) before the
    two event waits and one record, which are not yet measured on a GPU."""
    if updater.fences is None:
        return lambda: None
    fences, handles = updater.fences, []  # (no fences: lock-free, so every group has its lock here)
    for module, owned in owners(model, updater.params):
        group = updater.group_of[owned[0]]
        lock = updater.locks[group]

        def before(_module, _inputs, group=group, lock=lock):
            lock.__enter__()
            fences.before(group, pass_stream())

        def after(_module, _inputs, _outputs, group=group, lock=lock):
            fences.after_read(group, pass_stream())
            lock.__exit__(None, None, None)

        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after, always_call=True))

    def remove() -> None:
        for handle in handles:
            handle.remove()

    return remove
