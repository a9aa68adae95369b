"""Gossip of layer-wise updates between worker processes, point to point, with no barrier during an
epoch (the exchange of `layup`; methods/layup.py says what the method is, docs/fidelity.md
"LayUp" why each mixing rule is written as it is).

Every ordered pair of processes (src, dst) has a two-rank gloo process group of its own, a channel
that only src's sending thread and dst's receiving thread for src use, created (and connected) by
every rank together before training. On CUDA the messages are staged through host memory over
these gloo channels, never NCCL: a posted NCCL receive is a kernel that waits for its peer, so a
device-wide synchronize (an epoch end's, an evaluation's) would wait for a send no rank can issue;
NCCL's communicators are not safe to drive from several threads at once, and are created lazily
on first use. A gloo receive blocks only its thread; the device sees a copy in and an addition, on
the receiving thread's stream, which `flush` waits for by that stream alone (docs/fidelity.md,
"LayUp"). Headers are host tensors: reading one syncs nothing on the device.
The compute threads only mark an updated module as waiting (and, with `mix=add`, add the increment
into a buffer under the module's buffer lock); they never wait for the network. The sending thread
takes the waiting modules in the order they were first updated (one message per module, or every
waiting module in one message: `bundle`), draws `peers` peers at random, and sends each a header
(the kind, the modules, how many updates each carries, the send time, the wire's delay) and the
payload, at once: the payload is the state as of its send time. Per peer a receiving thread takes
each message off the channel as it comes and an applying thread applies them in order, each no
earlier than its send time plus its delay (a wire straggler's latency, core/runtime/wire.py: held
messages pipelined, none delaying the next one's clock), module by module under the module's lock,
and logs its age at arrival. The mixing rules (`mix`):
- `pushsum` (SGP, Assran et al. 2019): each module carries a push-sum weight w (1 at the start).
  A sender sends its module's weights and half its w, keeping the other half; a receiver with
  weight w_r takes z ← z + m (z_peer − z), m = w_s / (w_r + w_s), and w_r ← w_r + w_s. The
  parameters are the de-biased z = x / w; a local step Δ on the numerator x moves z by Δ / w
  (`scale_steps`). Mixing keeps Σ_i w_i z_i, the network's mean, exactly.
- `pairwise` (AD-PSGD, Lian et al. 2018: both sides of a pair move to their average): a sender
  sends its module's weights; the receiver moves half-way, z_r ← z_r + d with d = (z_s − z_r)/2,
  and replies −d, which the sender adds. Mixing keeps Σ_i z_i exactly, with updates between the
  request and the reply.
- `add`: the summed increments since the module was last sent are added (every update applied by
  its sender and by `peers` others; replicas drift apart for N > 2 with one peer).
- `average`: the receiver alone moves half-way to the sender's weights (no reply, no weight): the
  network mean shifts toward the workers that send more. Kept to read earlier runs by.
Increments made while a module waits to be sent join its waiting message: memory stays bounded
however slow the network is.

At an epoch end (`flush`) the sending thread sends everything waiting, then an end mark to every
peer; with `pairwise` it then sends the replies it owes and, once every peer's end mark has arrived
(so every request is answered), a second mark. The epoch ends on a process once every peer's last
mark has arrived: per channel messages arrive in order, so every message sent to it in the epoch
has then been applied, and the network's mean is whole.
"""

from __future__ import annotations

import random
import struct
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.distributed as dist

from core.runtime.wire import Wire

from .param_updates import ParameterUpdater
from .update_exchange import by_group, fenced

POLL_S = 0.05  # how often a waiting thread looks for an error or a request
UPDATE, END, CLOSE, REPLY, REPLIED = 0, 1, 2, 3, 4  # a message's kind (the header's first number)
MIXES = ("pushsum", "pairwise", "add", "average")
SENDS_WEIGHTS = ("pushsum", "pairwise", "average")  # the rules whose messages carry the module's weights


class GossipExchange:
    """The channels, what waits to be sent, the sending thread, a receiving and an applying thread
    per peer, each module's push-sum weight, and the epoch-end flush."""

    def __init__(
        self,
        updater: ParameterUpdater,
        device: torch.device,
        mix: str,
        peers: int,
        bundle: str,
        seed: int,
        on_error: Callable[[BaseException], None],
        wire: Wire | None = None,
    ):
        self.updater, self.device, self.mix, self.bundle = updater, device, mix, bundle
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.others = [r for r in range(self.world) if r != self.rank]
        self.fanout = min(peers, len(self.others))
        self.rng = random.Random(f"gossip:{seed}:{self.rank}")
        self.on_error = on_error
        self.wire = wire  # a wire straggler's delays on what this rank sends; every message's age and bytes
        params = updater.params
        sizes = [p.numel() for p in params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self.dtype = params[0].dtype
        # Increments waiting to be sent (mix=add; the other rules send the weights themselves).
        self.own = torch.zeros(self.offsets[-1] if mix == "add" else 0, device=device, dtype=self.dtype)
        self.own_counts = [0] * len(params)  # updates per tensor waiting to be sent
        self.locks = [threading.Lock() for _ in updater.groups]  # the buffer's and weight's, per group
        self.mass = [1.0] * len(updater.groups)  # push-sum weights (mix=pushsum), under the group's lock
        # On CUDA the buffer is written on the passes' streams and read on the sending thread's: one
        # event per group chains every buffer operation of that group (as UpdateExchange's).
        self.events = [torch.cuda.Event() for _ in updater.groups] if device.type == "cuda" else None
        g = len(updater.groups)
        # [kind, n, groups, counts, push-sum shares (float64 bits), each padded to g; delay, sent at (µs)]
        self.header_size = 4 + 3 * g
        self.channels = pair_channels(self.rank, self.world)
        # Groups with a message to send, in the order they first became ready.
        self.waiting: OrderedDict[int, None] = OrderedDict()
        self.replies: deque[tuple[int, list[int], torch.Tensor]] = deque()  # pairwise's, on the host
        self.wake = threading.Condition()
        self.flush_asked, self.end_sent, self.closing = False, False, False
        self.ends = {peer: 0 for peer in self.others}  # end marks received from each peer
        self.answered = {peer: 0 for peer in self.others}  # mix=pairwise: second marks received
        self.flushes = 0  # epochs flushed
        self.sent_messages, self.sent_bytes, self.received_messages = 0, 0, 0
        self.delay_sum_ms, self.delay_max_ms, self.remote_updates = 0.0, 0.0, 0
        self.applied_min_ms: dict[int, float] = {}  # per sender, the youngest message applied (a run's)
        self.held_s = 0.0  # wire delays put on the messages sent
        # Per peer, the messages received and not yet applied: (due (time.time()), header, host payload).
        self.arrived: dict[int, deque[tuple[float, list[int], torch.Tensor | None]]] = {
            peer: deque() for peer in self.others
        }
        self.pending = 0  # messages received and not yet applied (held ones included), under `wake`
        self.error: BaseException | None = None
        # The applying threads' CUDA streams (their copies in and additions), which `flush` waits for.
        self.streams = [torch.cuda.Stream(device) for _ in self.others] if device.type == "cuda" else []
        self.threads = self._start_threads()

    def _start_threads(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._guard, args=(self._send_loop,), name="gossip-send")]
        for k, peer in enumerate(self.others):  # per peer: one takes messages off its channel, one applies
            loops = (("recv", self._receive_loop, (peer,)), ("apply", self._apply_loop, (k, peer)))
            threads += [
                threading.Thread(target=self._guard, args=(loop, *args), name=f"gossip-{name}-{peer}")
                for name, loop, args in loops
            ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        return threads

    # --- the compute side ----------------------------------------------------------------------------
    def scale_steps(self, indices: list[int], deltas: list[torch.Tensor]) -> None:
        """mix=pushsum: a local step Δ is taken on the numerator x = w z, so z moves by Δ / w (SGP's
        Algorithm 1); called under the groups' locks, before the step is added."""
        if self.mix != "pushsum":
            return
        for i, delta in zip(indices, deltas, strict=True):
            mass = self.mass[self.updater.group_of[i]]
            if mass != 1.0:
                delta.div_(mass)

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
                self.waiting.setdefault(group, None)
            self.wake.notify_all()

    def flush(self) -> None:
        """Send everything waiting and the end marks to every peer, then block until every peer's
        last mark of this epoch has arrived: every message sent to this process in the epoch is applied."""
        with self.wake:
            self.flush_asked = True
            self.flushes += 1
            self.wake.notify_all()
            while self.flush_asked or not self._peers_done():
                self.wake.wait(timeout=POLL_S)
                self._check()
        for stream in self.streams:  # the applying threads' additions ran on these (no device-wide wait)
            stream.synchronize()

    def wait_held(self) -> None:
        """Block until every message that reached this rank is applied (layup's `wait_for_held`)."""
        with self.wake:
            while self.pending:
                self.wake.wait(timeout=POLL_S)
                self._check()

    def epoch_metrics(self, batches: int) -> dict[str, float]:
        """The epoch's messages, MiB, delays and remote updates, over the workers, and the wire's
        ages and bytes per step (`batches`: this worker's passes; collectives, after `flush`); every
        message sent must have been applied by then."""
        sums = torch.tensor(
            [self.sent_messages, self.received_messages, self.sent_bytes / 2**20, self.delay_sum_ms,
             self.remote_updates, self.held_s],
            dtype=torch.float64, device=self.device,
        )  # fmt: skip
        # The largest delay, and the push-sum weights' extremes over the modules and workers (min as -max).
        masses = self.masses() or [1.0]
        extremes = [self.delay_max_ms, max(masses), -min(masses)]
        most = torch.tensor(extremes, dtype=torch.float64, device=self.device)
        self.sent_messages, self.received_messages, self.sent_bytes = 0, 0, 0
        self.delay_sum_ms, self.delay_max_ms, self.remote_updates, self.held_s = 0.0, 0.0, 0, 0.0
        dist.all_reduce(sums)  # on the default group: the epoch end's other collectives' order
        dist.all_reduce(most, op=dist.ReduceOp.MAX)
        sent, received, mib, delay_sum, remote, held = sums.tolist()
        if sent != received:
            raise RuntimeError(f"gossip lost messages: {sent:.0f} sent, {received:.0f} applied in the epoch")
        wire = self.wire.epoch_metrics(batches) if self.wire is not None else {}
        pushsum = {"pushsum_weight_max": most[1].item(), "pushsum_weight_min": -most[2].item()}
        return {
            **wire,
            **(pushsum if self.mix == "pushsum" else {}),
            "gossip_messages": sent,
            "gossip_mib": mib,
            "gossip_delay_ms": delay_sum / max(received, 1.0),
            "gossip_delay_max_ms": most[0].item(),
            "gossip_remote_updates": remote,
            "gossip_held_s": held,
        }

    def masses(self) -> list[float]:
        """Each tensor's push-sum weight (1 under the other rules): the network's mean is Σ w z / Σ w."""
        return [self.mass[self.updater.group_of[i]] for i in range(len(self.updater.params))]

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

    def _peers_done(self) -> bool:
        return self._marked(self.answered if self.mix == "pairwise" else self.ends)

    def _marked(self, marks: dict[int, int]) -> bool:
        """Whether every peer's mark of this kind for the epoch being flushed has arrived."""
        return all(n >= self.flushes for n in marks.values())

    def _next(self) -> tuple[str, object]:
        """Under `wake`: what the sending thread does next (a reply, an update, a mark), or wait."""
        if self.replies:
            return "reply", self.replies.popleft()
        if self.waiting:
            take = 1 if self.bundle == "layer" else len(self.waiting)
            taken = [self.waiting.popitem(last=False) for _ in range(take)]  # the oldest first
            return "update", sorted(g for g, _ in taken)
        if self.flush_asked and not self.end_sent:
            return "mark", END
        if self.flush_asked and self.mix == "pairwise" and self._marked(self.ends):
            return "mark", REPLIED  # every peer's requests of the epoch are in, each one answered
        if self.closing and not self.flush_asked:
            return "mark", CLOSE
        return "wait", None

    def _send_loop(self) -> None:
        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        with torch.cuda.stream(stream) if stream is not None else nullcontext():
            while True:
                with self.wake:
                    while (action := self._next())[0] == "wait":
                        self.wake.wait(timeout=POLL_S)
                what, item = action
                if what == "reply":
                    self._send_reply(*item)
                elif what == "update":
                    self._send_update(item)
                else:
                    header = self._header(item)
                    for peer in self.others:
                        dist.send(header, dst=peer, group=self.channels[(self.rank, peer)])
                    if item == CLOSE:
                        return
                    with self.wake:
                        self.end_sent = True
                        if item == REPLIED or self.mix != "pairwise":
                            self.flush_asked, self.end_sent = False, False
                        self.wake.notify_all()

    def _send_update(self, groups: list[int]) -> None:
        """Take these groups' waiting increments (or weights) and send them to `fanout` random peers."""
        members = [i for g in groups for i in self.updater.groups[g]]
        payload = torch.empty(sum(self._size(i) for i in members), device=self.device, dtype=self.dtype)
        counts, shares, offset = [], [], 0
        for g in groups:
            # The rules that send weights read them between two of the module's updates: the module's
            # lock first, then the buffer's, the order in which an update takes them (no deadlock).
            weights = self.updater.locked([g]) if self.mix in SENDS_WEIGHTS else nullcontext()
            with weights, self.locks[g]:
                if self.mix == "add":
                    self._fence(g, lambda g=g, offset=offset: self._move_increments(g, payload, offset))
                else:
                    self._copy_weights(g, payload, offset)
                if self.mix == "pushsum":  # the weight split evenly: kept, and one share per peer
                    self.mass[g] /= 1 + self.fanout
                    shares.append(self.mass[g])
                # The module's updates: each updates its tensors together (a tensor left without a
                # gradient in a pass counts fewer), so the most any of them had.
                counts.append(max(self.own_counts[i] for i in self.updater.groups[g]))
                for i in self.updater.groups[g]:
                    self.own_counts[i] = 0
            offset += sum(self._size(i) for i in self.updater.groups[g])
        header = self._header(UPDATE, groups, counts, shares)
        staged = payload.cpu()  # on CUDA: once for every peer, after this stream's writes
        for peer in self.rng.sample(self.others, self.fanout):
            self._send(peer, header, staged)

    def _send_reply(self, peer: int, groups: list[int], payload: torch.Tensor) -> None:
        self._send(peer, self._header(REPLY, groups, [0] * len(groups)), payload)

    def _send(self, peer: int, header: torch.Tensor, payload: torch.Tensor) -> None:
        """Send one message, its header and its host payload, to `peer` now, with the wire's delay
        for it in the header (the receiver holds it: core/runtime/wire.py)."""
        delay = self.wire.delay_s() if self.wire is not None else 0.0
        header[-2] = round(delay * 1e6)  # µs; the header is written again for each peer (send blocks)
        channel = self.channels[(self.rank, peer)]
        dist.send(header, dst=peer, group=channel)
        dist.send(payload, dst=peer, group=channel)  # a host tensor (gloo)
        nbytes = payload.numel() * payload.element_size()
        if self.wire is not None:
            self.wire.sent(nbytes)
        with self.wake:
            self.sent_messages += 1
            self.sent_bytes += nbytes
            self.held_s += delay

    def _receive_loop(self, peer: int) -> None:
        """Take each message off `peer`'s channel as it comes, stamped with when it is due."""
        channel = self.channels[(peer, self.rank)]
        while True:
            header = torch.empty(self.header_size, dtype=torch.int64)
            dist.recv(header, src=peer, group=channel)
            values = header.tolist()
            kind, n = values[0], values[1]
            staged = None
            if kind in (UPDATE, REPLY):
                groups = values[2 : 2 + n]
                staged = torch.empty(sum(self._group_size(g) for g in groups), dtype=self.dtype)
                dist.recv(staged, src=peer, group=channel)
            received, (delay_us, sent_us) = time.time(), values[-2:]  # the header's last two numbers
            # Due at the send time plus the delay; never later than the receipt plus the delay (hosts'
            # clocks may disagree).
            due = min(sent_us / 1e6, received) + delay_us / 1e6
            if self.wire is not None and kind in (UPDATE, REPLY):  # delivered (docs/design.md)
                self.wire.arrived(sent_us / 1e6, peer, max(received, due))
            with self.wake:
                self.arrived[peer].append((due, values, staged))
                self.pending += 1
                self.wake.notify_all()
            if kind == CLOSE:
                return

    def _apply_loop(self, k: int, peer: int) -> None:
        """Apply `peer`'s messages in their order, each once it is due; count marks as they come."""
        stream = self.streams[k] if self.streams else None
        queue = self.arrived[peer]
        g_all = len(self.updater.groups)
        with torch.cuda.stream(stream) if stream is not None else nullcontext():
            while True:
                with self.wake:
                    while not queue:
                        self.wake.wait(timeout=POLL_S)
                    due, values, staged = queue.popleft()
                wait = due - time.time()
                if wait > 0:
                    time.sleep(wait)
                kind, n, rest = values[0], values[1], values[2:]
                if kind == CLOSE:
                    return
                if kind in (END, REPLIED):
                    with self.wake:
                        (self.ends if kind == END else self.answered)[peer] += 1
                        self.pending -= 1
                        self.wake.notify_all()
                    continue
                groups, counts, sent_us = rest[:n], rest[g_all : g_all + n], rest[-1]
                shares = [as_float(bits) for bits in rest[2 * g_all : 2 * g_all + n]]
                sizes = [self._group_size(g) for g in groups]
                payload = staged.to(self.device)  # on CUDA: a copy in, on this thread's stream
                parts = zip(groups, payload.split(sizes), counts, shares, strict=True)
                applied = [self._apply(kind, g, part, count, share) for g, part, count, share in parts]
                delay_ms = max(0.0, (time.time_ns() // 1000 - sent_us) / 1000)
                reply = None
                if kind == UPDATE and self.mix == "pairwise":  # answered before the peer's end mark
                    reply = torch.cat([d.reshape(-1) for deltas in applied for d in deltas]).neg_().cpu()
                with self.wake:  # one set of counters, an applying thread per peer
                    self.pending -= 1
                    self.received_messages += 1
                    self.remote_updates += sum(counts)
                    self.delay_sum_ms += delay_ms
                    self.delay_max_ms = max(self.delay_max_ms, delay_ms)
                    self.applied_min_ms[peer] = min(self.applied_min_ms.get(peer, delay_ms), delay_ms)
                    if reply is not None:
                        self.replies.append((peer, groups, reply))
                    self.wake.notify_all()

    def _apply(self, kind: int, g: int, part: torch.Tensor, count: int, share: float) -> list[torch.Tensor]:
        """Apply one module of a message under the module's lock; returns what it added to each tensor."""
        members = self.updater.groups[g]
        values = part.split([self._size(i) for i in members])
        per_tensor = [count] * len(members)  # each tensor of the module had `count` updates
        if kind == REPLY or self.mix == "add":
            mix = None  # an increment (a reply is −d)
        elif self.mix == "pushsum":
            mix = lambda: self._absorb(g, share)  # noqa: E731  (read and changed under the module's lock)
        else:
            mix = 0.5
        return self.updater.add_remote(g, values, per_tensor, mix=mix)

    # --- helpers -------------------------------------------------------------------------------------
    def _absorb(self, group: int, share: float) -> float:
        """mix=pushsum: a peer's weight share joins this module's; the part of the way to move."""
        with self.locks[group]:
            moved = share / (self.mass[group] + share)
            self.mass[group] += share
        return moved

    def _move_increments(self, g: int, payload: torch.Tensor, offset: int) -> None:
        at = offset
        for i in self.updater.groups[g]:
            payload[at : at + self._size(i)].copy_(self._slice(i))
            self._slice(i).zero_()
            at += self._size(i)

    def _copy_weights(self, g: int, payload: torch.Tensor, offset: int) -> None:
        if self.updater.fences is not None:
            self.updater.fences.before(g)
        at = offset
        for i in self.updater.groups[g]:
            payload[at : at + self._size(i)].copy_(self.updater.params[i].data.reshape(-1))
            at += self._size(i)
        if self.updater.fences is not None:
            self.updater.fences.after_read(g)  # no later update overwrites it mid-copy

    def _header(
        self, kind: int, groups: list[int] = (), counts: list[int] = (), shares: list[float] = ()
    ) -> torch.Tensor:
        """The header's numbers (a push-sum share as its float64's bits: exact, in the int64 header)."""
        g = len(self.updater.groups)
        bits = [struct.unpack("<q", struct.pack("<d", share))[0] for share in shares]  # as_float's inverse
        values = [kind, len(groups)]
        for part in (groups, counts, bits):
            values += [*part, *[0] * (g - len(part))]
        values += [0, time.time_ns() // 1000]  # the delay, set per peer by `_send`; the send time
        return torch.tensor(values, dtype=torch.int64)

    def _group_size(self, group: int) -> int:
        return sum(self._size(i) for i in self.updater.groups[group])

    def _size(self, index: int) -> int:
        return self.offsets[index + 1] - self.offsets[index]

    def _slice(self, index: int) -> torch.Tensor:
        return self.own[self.offsets[index] : self.offsets[index + 1]]

    def _fence(self, group: int, operation: Callable[[], None]) -> None:
        fenced(self.events, group, operation)

    def _check(self) -> None:
        if self.error is not None:
            raise self.error


def as_float(bits: int) -> float:
    """The float64 whose bits a header carries as an int64."""
    return struct.unpack("<d", struct.pack("<q", bits))[0]


def pair_channels(rank: int, world: int) -> dict[tuple[int, int], dist.ProcessGroup]:
    """A two-rank gloo group per ordered pair (src, dst) this rank is in, created by every rank
    together and in the same order (new_group is collective), connected before training starts."""
    channels = {}
    for src in range(world):
        for dst in range(world):
            if src != dst:
                group = dist.new_group([src, dst], backend="gloo")
                if rank in (src, dst):
                    channels[(src, dst)] = group
    return channels
