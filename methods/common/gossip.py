"""Gossip of layer-wise updates between worker processes, point to point, with no barrier during an
epoch (the exchange of `layup`; methods/layup.py says what the method is).

Every ordered pair of processes (src, dst) has a two-rank process group of its own, a channel that
only src's sending thread and dst's receiving thread for src use: sends and receives of one process
never share a communicator (NCCL's are not thread-safe, and NCCL has no receive from any source).
The compute threads only add each applied update of a module into a buffer of increments waiting
to be sent (under the module's buffer lock) and mark the module as waiting; they never wait for
the network. The sending thread takes the waiting modules in the order they were first updated
(one message per module, or every waiting module in one message: `bundle`), draws `peers` peers
at random, and sends each a header (the kind, the modules, how many updates each carries) and the
payload: the modules' summed increments (`mix=add`) or their current weights (`mix=average`).
Increments made while a module waits to be sent join its waiting message: memory stays bounded
(one buffer the size of the model) however slow the network is. A receiving thread per peer
applies each message on arrival, module by module, under the module's lock: it adds the increment,
or moves the module half-way to the peer's weights.

At an epoch end (`flush`) the sending thread sends everything waiting, then an end mark to every
peer; the epoch ends on a process once every peer's end mark has arrived: per channel messages
arrive in order, so every update sent to it in the epoch has then been applied.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.distributed as dist

from .param_updates import ParameterUpdater
from .update_exchange import by_group, fenced

POLL_S = 0.05  # how often a waiting thread looks for an error or a request
UPDATE, END, CLOSE = 0, 1, 2  # a message's kind (the header's first number)


class GossipExchange:
    """The channels, the buffer of increments waiting to be sent, the sending thread, one receiving
    thread per peer, and the epoch-end flush."""

    def __init__(
        self,
        updater: ParameterUpdater,
        device: torch.device,
        mix: str,
        peers: int,
        bundle: str,
        seed: int,
        on_error: Callable[[BaseException], None],
    ):
        self.updater, self.device, self.mix, self.bundle = updater, device, mix, bundle
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.others = [r for r in range(self.world) if r != self.rank]
        self.fanout = min(peers, len(self.others))
        self.rng = random.Random(f"gossip:{seed}:{self.rank}")
        self.on_error = on_error
        params = updater.params
        sizes = [p.numel() for p in params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self.dtype = params[0].dtype
        # Increments waiting to be sent (mix=add; mix=average sends the weights themselves).
        self.own = torch.zeros(self.offsets[-1] if mix == "add" else 0, device=device, dtype=self.dtype)
        self.own_counts = [0] * len(params)  # updates per tensor waiting to be sent
        self.locks = [threading.Lock() for _ in updater.groups]  # the buffer's, per group
        # On CUDA the buffer is written on the passes' streams and read on the sending thread's: one
        # event per group chains every buffer operation of that group (as UpdateExchange's).
        self.events = [torch.cuda.Event() for _ in updater.groups] if device.type == "cuda" else None
        self.header_size = 2 + 2 * len(updater.groups)  # [kind, n, groups (n), counts (n), padding]
        backend = dist.get_backend()
        self.channels: dict[tuple[int, int], dist.ProcessGroup] = {}
        for src in range(self.world):  # every rank creates every group, in the same order
            for dst in range(self.world):
                if src != dst:
                    group = dist.new_group([src, dst], backend=backend)
                    if self.rank in (src, dst):
                        self.channels[(src, dst)] = group
        self.waiting: OrderedDict[int, None] = OrderedDict()  # groups with a message to send, oldest first
        self.wake = threading.Condition()
        self.flush_asked, self.closing = False, False
        self.ends = {peer: 0 for peer in self.others}  # end marks received from each peer
        self.flushes = 0  # epochs flushed
        self.sent_messages, self.sent_bytes, self.received_messages = 0, 0, 0
        self.error: BaseException | None = None
        self.threads = [threading.Thread(target=self._guard, args=(self._send_loop,), name="gossip-send")]
        self.threads += [
            threading.Thread(target=self._guard, args=(self._receive_loop, peer), name=f"gossip-recv-{peer}")
            for peer in self.others
        ]
        for thread in self.threads:
            thread.daemon = True
            thread.start()

    # --- the compute side ----------------------------------------------------------------------------
    def record(self, indices: list[int], deltas: list[torch.Tensor]) -> None:
        """Add applied updates of the tensors `indices` to what waits to be sent, and mark their
        groups as waiting (the caller holds no network: this only adds into the buffer)."""
        groups = by_group(self.updater, indices, deltas)
        for group, items in groups.items():

            def add(items=items) -> None:
                for i, delta in items:
                    self._slice(i).add_(delta.reshape(-1))

            with self.locks[group]:
                if self.mix == "add":
                    self._fence(group, add)
                for i, _ in items:
                    self.own_counts[i] += 1
        with self.wake:
            for group in groups:
                self.waiting.setdefault(group)
            self.wake.notify_all()

    def flush(self) -> None:
        """Send everything waiting and an end mark to every peer, then block until every peer's end
        mark of this epoch has arrived: every update sent to this process in the epoch is applied."""
        with self.wake:
            self.flush_asked = True
            self.flushes += 1
            self.wake.notify_all()
            while self.flush_asked or any(n < self.flushes for n in self.ends.values()):
                self.wake.wait(timeout=POLL_S)
                self._check()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the receiving threads' additions ran on their streams

    def epoch_metrics(self) -> dict[str, float]:
        """The epoch's messages and MiB, summed over the workers (a collective, after `flush`);
        every message sent must have been applied by then."""
        counts = torch.tensor(
            [self.sent_messages, self.received_messages, self.sent_bytes / 2**20],
            dtype=torch.float64,
            device=self.device,
        )
        self.sent_messages, self.received_messages, self.sent_bytes = 0, 0, 0
        dist.all_reduce(counts)  # on the default group: the epoch end's other collectives' order
        sent, received, mib = counts.tolist()
        if sent != received:
            raise RuntimeError(f"gossip lost messages: {sent:.0f} sent, {received:.0f} applied in the epoch")
        return {"gossip_messages": sent, "gossip_mib": mib}

    def close(self) -> None:
        """Send a close mark to every peer and end the threads once every peer has closed."""
        with self.wake:
            self.closing = True
            self.wake.notify_all()
        for thread in self.threads:
            while thread.is_alive():
                thread.join(timeout=POLL_S)
                self._check()
        self._check()

    # --- the threads ---------------------------------------------------------------------------------
    def _guard(self, loop: Callable, *args) -> None:
        try:
            loop(*args)
        except BaseException as err:  # noqa: BLE001  (re-raised in the compute threads)
            if self.error is None:
                self.error = err
            self.on_error(err)
            with self.wake:
                self.wake.notify_all()

    def _send_loop(self) -> None:
        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        with torch.cuda.stream(stream) if stream is not None else nullcontext():
            while True:
                with self.wake:
                    while not (self.waiting or self.flush_asked or self.closing):
                        self.wake.wait(timeout=POLL_S)
                    if self.waiting:
                        take = 1 if self.bundle == "layer" else len(self.waiting)
                        groups = [self.waiting.popitem(last=False)[0] for _ in range(take)]
                        mark = None
                    else:
                        groups, mark = [], END if self.flush_asked else CLOSE
                if groups:
                    self._send_update(sorted(groups))
                    continue
                header = self._header(mark)
                for peer in self.others:
                    dist.send(header, dst=peer, group=self.channels[(self.rank, peer)])
                if mark == CLOSE:
                    return
                with self.wake:
                    self.flush_asked = False
                    self.wake.notify_all()

    def _send_update(self, groups: list[int]) -> None:
        """Take these groups' waiting increments (or weights) and send them to `fanout` random peers."""
        members = [i for g in groups for i in self.updater.groups[g]]
        payload = torch.empty(sum(self._size(i) for i in members), device=self.device, dtype=self.dtype)
        counts, offset = [], 0
        for g in groups:
            # mix=average reads the module's weights between two of its updates: the module's lock
            # first, then the buffer's, the order in which an update takes them (no deadlock).
            weights = self.updater.locked([g]) if self.mix == "average" else nullcontext()
            with weights, self.locks[g]:
                if self.mix == "add":

                    def move(g=g, offset=offset) -> None:
                        at = offset
                        for i in self.updater.groups[g]:
                            payload[at : at + self._size(i)].copy_(self._slice(i))
                            self._slice(i).zero_()
                            at += self._size(i)

                    self._fence(g, move)
                else:
                    if self.updater.fences is not None:
                        self.updater.fences.before(g)
                    at = offset
                    for i in self.updater.groups[g]:
                        payload[at : at + self._size(i)].copy_(self.updater.params[i].data.reshape(-1))
                        at += self._size(i)
                    if self.updater.fences is not None:
                        self.updater.fences.after_read(g)  # no later update overwrites it mid-copy
                # The module's updates: each updates its tensors together (a tensor left without a
                # gradient in a pass counts fewer), so the most any of them had.
                counts.append(max(self.own_counts[i] for i in self.updater.groups[g]))
                for i in self.updater.groups[g]:
                    self.own_counts[i] = 0
            offset += sum(self._size(i) for i in self.updater.groups[g])
        header = self._header(UPDATE, groups, counts)
        for peer in self.rng.sample(self.others, self.fanout):
            channel = self.channels[(self.rank, peer)]
            dist.send(header, dst=peer, group=channel)
            dist.send(payload, dst=peer, group=channel)
            self.sent_messages += 1
            self.sent_bytes += payload.numel() * payload.element_size()

    def _receive_loop(self, peer: int) -> None:
        channel = self.channels[(peer, self.rank)]
        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        header = torch.empty(self.header_size, dtype=torch.int64, device=self.device)
        with torch.cuda.stream(stream) if stream is not None else nullcontext():
            while True:
                dist.recv(header, src=peer, group=channel)
                kind, n, *rest = header.tolist()
                if kind == CLOSE:
                    return
                if kind == END:
                    with self.wake:
                        self.ends[peer] += 1
                        self.wake.notify_all()
                    continue
                groups, counts = rest[:n], rest[len(self.updater.groups) : len(self.updater.groups) + n]
                sizes = [sum(self._size(i) for i in self.updater.groups[g]) for g in groups]
                payload = torch.empty(sum(sizes), device=self.device, dtype=self.dtype)
                dist.recv(payload, src=peer, group=channel)
                for g, part, count in zip(groups, payload.split(sizes), counts, strict=True):
                    members = self.updater.groups[g]
                    values = part.split([self._size(i) for i in members])
                    per_tensor = [count] * len(members)  # each tensor of the module had `count` updates
                    self.updater.add_remote(g, values, per_tensor, mix=0.5 if self.mix == "average" else None)
                with self.wake:  # one counter, a receiving thread per peer
                    self.received_messages += 1

    # --- helpers -------------------------------------------------------------------------------------
    def _header(self, kind: int, groups: list[int] = (), counts: list[int] = ()) -> torch.Tensor:
        g = len(self.updater.groups)
        values = [kind, len(groups), *groups, *[0] * (g - len(groups)), *counts]
        values += [0] * (self.header_size - len(values))
        return torch.tensor(values, dtype=torch.int64).to(self.device)

    def _size(self, index: int) -> int:
        return self.offsets[index + 1] - self.offsets[index]

    def _slice(self, index: int) -> torch.Tensor:
        return self.own[self.offsets[index] : self.offsets[index + 1]]

    def _fence(self, group: int, operation: Callable[[], None]) -> None:
        fenced(self.events, group, operation)

    def _check(self) -> None:
        if self.error is not None:
            raise self.error
