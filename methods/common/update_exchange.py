"""Sending every update a process applies to the other processes, without blocking the compute threads.

A communication thread per process repeatedly all-reduces the sum of the updates its process
applied since the last round (a flat buffer in a fixed parameter order, on a process group of its
own) and adds the others' share (total − own) to its parameters. Compute threads only add their
deltas into the buffer under the tensor's lock; they never wait for the network. No barrier, no
averaging: each replica receives each update exactly once (the exchange of 000's multi-GPU runs).
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext

import torch
import torch.distributed as dist

ROUND_MIN_S = 0.005  # at most 200 rounds/s: an idle round costs a full buffer's all-reduce


class UpdateExchange:
    """The communication thread, its buffer of own updates, and the epoch-end flush."""

    def __init__(self, params: list[torch.nn.Parameter], locks: list[threading.Lock], device: torch.device):
        self.params, self.locks, self.device = params, locks, device
        self.world = dist.get_world_size()
        sizes = [p.numel() for p in params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self.own = torch.zeros(self.offsets[-1], device=device, dtype=params[0].dtype)
        self.group = dist.new_group(backend=dist.get_backend())  # its own collective order
        self.drained = False  # set by the compute side at an epoch end
        self.closing = False
        self.flushed = threading.Event()
        self.error: BaseException | None = None
        self.rounds = 0
        self.thread = threading.Thread(target=self._loop, name="update-exchange", daemon=True)
        self.thread.start()

    def record(self, index: int, delta: torch.Tensor) -> None:
        """Add an applied update of parameter `index` (caller holds that tensor's lock)."""
        self.own[self.offsets[index] : self.offsets[index + 1]].add_(delta.reshape(-1))

    def flush(self) -> None:
        """Block until a round has carried every rank's updates up to its epoch end: replicas agree then."""
        self.flushed.clear()
        self.drained = True
        while not self.flushed.wait(timeout=0.05):
            self._check()
        self.drained = False

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

    def _loop(self) -> None:
        n = self.offsets[-1]
        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        try:
            with torch.cuda.stream(stream) if stream is not None else nullcontext():
                while True:
                    started = time.perf_counter()
                    mine = torch.empty(n + 2, device=self.device, dtype=self.own.dtype)
                    drained, closing = self.drained, self.closing  # read before the deltas: they are all in
                    for i, lock in enumerate(self.locks):
                        lo, hi = self.offsets[i], self.offsets[i + 1]
                        with lock:
                            mine[lo:hi].copy_(self.own[lo:hi])
                            self.own[lo:hi].zero_()
                    mine[n], mine[n + 1] = float(drained), float(closing)
                    total = mine.clone()
                    dist.all_reduce(total, group=self.group)
                    if stream is not None:
                        stream.synchronize()
                    others = total[:n] - mine[:n]
                    for i, lock in enumerate(self.locks):
                        lo, hi = self.offsets[i], self.offsets[i + 1]
                        with lock:
                            self.params[i].data.add_(others[lo:hi].view_as(self.params[i]))
                    self.rounds += 1
                    flags = total[n:].tolist()
                    if flags[0] == self.world:
                        self.flushed.set()
                    if flags[1] == self.world:
                        return
                    pause = ROUND_MIN_S - (time.perf_counter() - started)
                    if pause > 0:
                        time.sleep(pause)
        except BaseException as err:  # noqa: BLE001  (re-raised in the compute thread)
            self.error = err


def replica_drift(model: torch.nn.Module) -> float:
    """Largest relative L2 distance of a rank's parameters from the ranks' mean (a collective)."""
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()
    mean = flat.clone()
    dist.all_reduce(mean)
    mean /= dist.get_world_size()
    drift = ((flat - mean).norm() / mean.norm().clamp_min(1e-30)).reshape(1)
    dist.all_reduce(drift, op=dist.ReduceOp.MAX)
    return float(drift.item())
