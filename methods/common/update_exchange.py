"""Sending every update a process applies to the other processes, without blocking the compute threads.

A communication thread per process repeatedly all-reduces the sum of the updates its process
applied since the last round (a flat buffer in a fixed parameter order, on a process group of its
own), with how many updates each tensor received, and adds the others' share (total − own) to its
parameters, counting their updates in the tensors' versions (staleness counts every rank's
updates). Compute threads only add their deltas into the buffer under the group's buffer lock
(taken even when updates are lock-free); they never wait for the network. No barrier, no averaging:
each replica receives each update exactly once (the exchange of 000's multi-GPU runs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.distributed as dist

from .param_updates import ParameterUpdater

ROUND_MIN_S = 0.005  # at most 200 rounds/s: an idle round costs a full buffer's all-reduce


class UpdateExchange:
    """The communication thread, its buffer of own updates, and the epoch-end flush."""

    def __init__(self, updater: ParameterUpdater, device: torch.device):
        self.updater, self.device = updater, device
        params = updater.params
        self.world = dist.get_world_size()
        sizes = [p.numel() for p in params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self.own = torch.zeros(self.offsets[-1], device=device, dtype=params[0].dtype)
        self.own_counts = [0] * len(params)  # own updates per tensor since the last round
        self.locks = [threading.Lock() for _ in updater.groups]  # the buffer's, per group
        # On CUDA the buffer is written on the passes' streams and read on this thread's: one event
        # per group chains every buffer operation of that group (each waits for it, then records it).
        self.events = [torch.cuda.Event() for _ in updater.groups] if device.type == "cuda" else None
        self.group = dist.new_group(backend=dist.get_backend())  # its own collective order
        self.drained = False  # set by the compute side at an epoch end
        self.closing = False
        self.flushed = threading.Event()
        self.error: BaseException | None = None
        self.rounds = 0
        self.thread = threading.Thread(target=self._loop, name="update-exchange", daemon=True)
        self.thread.start()

    def record(self, indices: list[int], deltas: list[torch.Tensor]) -> None:
        """Add applied updates of the tensors `indices` (one group or several) to the buffer, under
        each group's buffer lock and fence once."""
        for group, items in by_group(self.updater, indices, deltas).items():

            def add(items=items) -> None:
                for i, delta in items:
                    self._slice(i).add_(delta.reshape(-1))

            with self.locks[group]:
                self._fence(group, add)
                for i, _ in items:
                    self.own_counts[i] += 1

    def scale_steps(self, indices: list[int], deltas: list[torch.Tensor]) -> None:
        """Every update is applied as computed (gossip's push-sum scales its own)."""

    def flush(self) -> None:
        """Block until a round has carried every rank's updates up to its epoch end: replicas agree then."""
        self.flushed.clear()
        self.drained = True
        while not self.flushed.wait(timeout=0.05):
            self._check()
        self.drained = False
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the last round's additions ran on the exchange's stream

    def epoch_metrics(self, batches: int) -> dict[str, float]:
        """The rounds run so far (`batches`, the epoch's passes, is the gossip's measure: unused)."""
        return {"exchange_rounds": float(self.rounds)}

    def close(self) -> None:
        """End the thread once every rank closes (rounds are collective: all ranks stop together)."""
        self.closing = True
        while self.thread.is_alive():
            self.thread.join(timeout=0.05)
            self._check()
        self._check()

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def _slice(self, index: int) -> torch.Tensor:
        return self.own[self.offsets[index] : self.offsets[index + 1]]

    def _fence(self, group: int, operation: Callable[[], None]) -> None:
        fenced(self.events, group, operation)

    def _take_own(self, mine: torch.Tensor, n: int, groups: list[list[int]]) -> None:
        """Move the buffer's updates (and their counts) into `mine`, group by group, leaving it zero."""
        counts = [0] * len(self.own_counts)
        for g, members in enumerate(groups):
            with self.locks[g]:

                def move(members=members) -> None:
                    for i in members:
                        lo, hi = self.offsets[i], self.offsets[i + 1]
                        mine[lo:hi].copy_(self.own[lo:hi])
                        self.own[lo:hi].zero_()

                self._fence(g, move)
                for i in members:
                    counts[i], self.own_counts[i] = self.own_counts[i], 0
        mine[n : n + len(counts)].copy_(torch.tensor(counts, dtype=mine.dtype))

    def _loop(self) -> None:
        n, tensors = self.offsets[-1], len(self.own_counts)
        groups = self.updater.groups
        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        try:
            with torch.cuda.stream(stream) if stream is not None else nullcontext():
                while True:
                    started = time.perf_counter()
                    # [own deltas (n) | own update counts per tensor | drained | closing]
                    mine = torch.empty(n + tensors + 2, device=self.device, dtype=self.own.dtype)
                    drained, closing = self.drained, self.closing  # read before the deltas: they are all in
                    self._take_own(mine, n, groups)
                    mine[n + tensors], mine[n + tensors + 1] = float(drained), float(closing)
                    total = mine.clone()
                    dist.all_reduce(total, group=self.group)
                    others = total[: n + tensors] - mine[: n + tensors]
                    others_counts = [round(c) for c in others[n:].tolist()]  # syncs this stream
                    for g, members in enumerate(groups):
                        deltas = [others[self.offsets[i] : self.offsets[i + 1]] for i in members]
                        self.updater.add_remote(g, deltas, [others_counts[i] for i in members])
                    self.rounds += 1
                    flags = total[n + tensors :].tolist()
                    if flags[0] == self.world:
                        self.flushed.set()
                    if flags[1] == self.world:
                        return
                    pause = ROUND_MIN_S - (time.perf_counter() - started)
                    if pause > 0:
                        time.sleep(pause)
        except BaseException as err:  # noqa: BLE001  (re-raised in the compute thread)
            self.error = err


def by_group(
    updater: ParameterUpdater, indices: list[int], deltas: list[torch.Tensor]
) -> dict[int, list[tuple[int, torch.Tensor]]]:
    """The (tensor index, delta) pairs of an applied update, by the group each tensor belongs to."""
    groups: dict[int, list[tuple[int, torch.Tensor]]] = {}
    for i, delta in zip(indices, deltas, strict=True):
        groups.setdefault(updater.group_of[i], []).append((i, delta))
    return groups


def fenced(events: list[torch.cuda.Event] | None, group: int, operation: Callable[[], None]) -> None:
    """Run `operation` on a group's buffer: on CUDA after the group's last buffer operation (its
    event, on any stream), then record the event; on the CPU just run it."""
    if events is None:
        operation()
        return
    torch.cuda.current_stream().wait_event(events[group])
    operation()
    events[group].record()


def replica_drift(model: torch.nn.Module) -> float:
    """Largest relative L2 distance of a rank's parameters from the ranks' mean (a collective)."""
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()
    mean = flat.clone()
    dist.all_reduce(mean)
    mean /= dist.get_world_size()
    drift = ((flat - mean).norm() / mean.norm().clamp_min(1e-30)).reshape(1)
    dist.all_reduce(drift, op=dist.ReduceOp.MAX)
    return float(drift.item())
