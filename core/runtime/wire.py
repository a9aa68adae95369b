"""The wire between processes: one latency model for every multi-process method, and what each
epoch measured on it (docs/design.md, "The wire").

A delay on the wire is a latency: state a rank sends at time t is usable by its receiver at
t + delay, and it is the state as of t. A wire straggler (`straggler_kind=wire`) puts its delay on
the last rank's outgoing messages (core/runtime/straggler.py draws each one):
- a point-to-point message (layup's gossip) is sent at once, stamped with its send time and its
  delay; the receiver holds it until then (methods/common/gossip.py);
- a collective (an all-reduce) waits for every rank's part, so the delayed rank joins it `delay`
  after its stamp with the state of its stamp (`collective`), or, inside DDP's backward, a thread
  of the rank launches each bucket's all-reduce at its due time while the backward goes on
  (`ddp_hook`): the result is usable by every rank no earlier than the delayed part's stamp plus
  the delay.
Control messages (a poll's few numbers, end marks) carry no delay of their own.

Every rank measures what reaches it: a message's age at arrival (arrival minus its send stamp),
and each other rank's part of a collective (the delay with which it joined, plus the collective's
transfer from its last part's joining to the result's arrival: the wire's age of that part,
without the wait for slower ranks; every rank's stamp and joining time shared by a small
all-reduce). Stamps are `time.time()`: on one host the clocks agree; across hosts their offset
enters a message's age, and a collective part's through its transfer. The bytes are
the model state a rank puts on the wire: a gossip message's payload, or for an all-reduce the
ring algorithm's 2 (N - 1) / N times the tensor's bytes per rank. Control messages are not counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..config import TrainConfig
from .straggler import Straggler, straggler_for

# Ages in a log-spaced histogram (a fixed-size tensor, summed over the ranks at an epoch end): from
# 1 µs to 1000 s, BINS_PER_DECADE a decade (each bin 4.9 % wide, a quantile interpolated inside it).
LOWEST_MS, DECADES, BINS_PER_DECADE = 1e-3, 9, 48
BINS = DECADES * BINS_PER_DECADE + 1  # bin 0: below LOWEST_MS


def age_bin(age_ms: float) -> int:
    """The histogram bin of an age in ms."""
    if age_ms <= LOWEST_MS:
        return 0
    return min(BINS - 1, 1 + int(math.log10(age_ms / LOWEST_MS) * BINS_PER_DECADE))


def bin_edge(index: int) -> float:
    """The lower edge (ms) of a bin above bin 0."""
    return LOWEST_MS * 10 ** ((index - 1) / BINS_PER_DECADE)


def quantile(counts: list[float], q: float) -> float:
    """The q-quantile (ms) of the ages a histogram counts, interpolated within its bin on the log
    scale (as if a bin's ages were spread evenly over it); NaN if it counts none."""
    total = sum(counts)
    if total == 0:
        return float("nan")
    wanted, seen = q * total, 0.0
    for index, count in enumerate(counts):
        if count and seen + count >= wanted:
            if index == 0:
                return 0.0
            inside = (wanted - seen) / count  # the part of the bin's ages below the quantile
            return bin_edge(index) * 10 ** (inside / BINS_PER_DECADE)
        seen += count
    return bin_edge(len(counts) - 1)


@dataclass
class Delayed:
    """A collective the delivery thread launches at `due` (time.time())."""

    due: float
    launch: Callable[[], None]


class Wire:
    """One rank's end of the wire: the delays a wire straggler puts on what this rank sends, and the
    epoch's ages at arrival and bytes sent (`epoch_metrics`, a collective)."""

    def __init__(self, straggler: Straggler | None, rank: int, world: int, device: torch.device):
        self.straggler = straggler if straggler is not None and straggler.wire else None
        self.rank, self.world, self.device = rank, world, device
        self.slowed_rank = world - 1  # where a wire straggler falls: its link's ages are logged apart
        self.lock = threading.Lock()  # ages and bytes come from communication threads too
        self.slowed_ages = [0.0] * BINS  # of what the slowed rank sent
        self.all_ages = [0.0] * BINS  # of everything that arrived
        self.sent_bytes = 0.0
        self.delivery: deque[Delayed] = deque()
        self.wake = threading.Condition()
        self.thread: threading.Thread | None = None

    @classmethod
    def of(cls, cfg: TrainConfig, rank: int, world: int, device: torch.device,
           straggler: Straggler | None = None) -> Wire:  # fmt: skip
        """The wire of this rank (`straggler`: the rank's own, when it has one already)."""
        return cls(straggler or straggler_for(cfg, rank, world), rank, world, device)

    # --- delays --------------------------------------------------------------------------------------
    def delay_s(self, step_s: float | None = None) -> float:
        """The delay of one message this rank sends (0 where no wire delay falls on it)."""
        return self.straggler.draw(step_s) if self.straggler is not None else 0.0

    # --- what arrives --------------------------------------------------------------------------------
    def arrived(self, sent_at: float, sender: int, usable_at: float) -> None:
        """A message sent at `sent_at` by `sender` is usable at `usable_at` (both time.time())."""
        self._age(usable_at - sent_at, sender)

    def _age(self, age_s: float, sender: int) -> None:
        index = age_bin(max(0.0, age_s * 1000))
        with self.lock:
            self.all_ages[index] += 1
            if sender == self.slowed_rank:
                self.slowed_ages[index] += 1

    def sent(self, nbytes: float) -> None:
        """`nbytes` of model state left this rank."""
        with self.lock:
            self.sent_bytes += nbytes

    def all_reduce_bytes(self, tensor: torch.Tensor) -> float:
        """What a ring all-reduce of `tensor` puts on the wire per rank."""
        return 2 * (self.world - 1) / self.world * tensor.numel() * tensor.element_size()

    # --- collectives ---------------------------------------------------------------------------------
    def collective(self, run: Callable[[], None], nbytes: float, step_s: float | None = None) -> None:
        """Run a synchronous collective of this rank's state as of now: the delayed rank joins it its
        delay late (the caller leaves the state as it is meanwhile); every rank logs the others' parts'
        ages (`parts_arrived`)."""
        stamp = time.time()
        delay = self.delay_s(step_s)
        if delay:
            time.sleep(delay)
        launched = time.time()
        run()
        if self.device.type == "cuda":  # the host's clock sees the result only once the stream has it
            torch.cuda.current_stream(self.device).synchronize()
        done = time.time()
        times = self.times(stamp, launched, self.device)
        dist.all_reduce(times)
        self.parts_arrived(times.tolist(), done)
        self.sent(nbytes)

    def times(self, stamp: float, launched: float, device: torch.device) -> torch.Tensor:
        """This rank's slots of a collective's times, summed over the ranks by an all-reduce: each
        rank's stamp (its state's time) and when its part joined (after its delay)."""
        times = torch.zeros(2 * self.world, dtype=torch.float64)
        times[2 * self.rank], times[2 * self.rank + 1] = stamp, launched
        return times.to(device)

    def parts_arrived(self, times: list[float], done: float) -> None:
        """A collective's result is here at `done`: each other rank's part arrived as old as its delay
        (joined minus stamp) plus the collective's own transfer (from when its last part joined to
        `done`): the wire's age of that part, without the wait for slower ranks' parts."""
        launches = times[1::2]
        transfer = max(0.0, done - max(launches))
        for sender in range(self.world):
            if sender != self.rank:
                self._age(launches[sender] - times[2 * sender] + transfer, sender)

    def all_reduce(self, tensor: torch.Tensor, step_s: float | None = None) -> None:
        """`dist.all_reduce(tensor)` (a sum) on the wire (`collective`)."""
        self.collective(lambda: dist.all_reduce(tensor), self.all_reduce_bytes(tensor), step_s)

    def later(self, due: float, launch: Callable[[], None]) -> None:
        """Launch a collective at `due` from this rank's delivery thread, after every earlier one."""
        with self.wake:
            if self.thread is None:
                self.thread = threading.Thread(target=self._deliver, name="wire-delivery", daemon=True)
                self.thread.start()
            self.delivery.append(Delayed(due, launch))
            self.wake.notify_all()

    def _deliver(self) -> None:
        while True:
            with self.wake:
                while not self.delivery:
                    self.wake.wait()
                item = self.delivery.popleft()
            wait = item.due - time.time()
            if wait > 0:
                time.sleep(wait)
            item.launch()  # its errors go to its future (ddp_hook)

    # --- the epoch's record --------------------------------------------------------------------------
    def epoch_metrics(self, batches: float) -> dict[str, float]:
        """The epoch's ages at arrival (median and p95 of what the slowed rank sent, the median of
        everything), MiB sent and bytes per step (per batch a worker trained), over every rank (a
        collective); the counts start again."""
        with self.lock:
            values = [*self.slowed_ages, *self.all_ages, self.sent_bytes, float(batches)]
            self.slowed_ages, self.all_ages, self.sent_bytes = [0.0] * BINS, [0.0] * BINS, 0.0
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(totals)
        totals = totals.tolist()
        slowed, every, (sent, steps) = totals[:BINS], totals[BINS : 2 * BINS], totals[2 * BINS :]
        return {
            "wire_age_median_ms": quantile(slowed, 0.5),
            "wire_age_p95_ms": quantile(slowed, 0.95),
            "wire_age_all_median_ms": quantile(every, 0.5),
            # What the other ranks sent: the age the wire adds nothing to (transfer, queueing).
            "wire_age_others_median_ms": quantile([a - b for a, b in zip(every, slowed, strict=True)], 0.5),
            "wire_mib": sent / 2**20,
            "wire_bytes_per_step": sent / steps if steps else float("nan"),
        }


class DdpHookState:
    """What DDP's communication hook (`ddp_hook`) reads: the wire, and PL-SGD's switch to local steps."""

    def __init__(self, wire: Wire, start_local: int | None = None):
        self.wire, self.start_local = wire, start_local
        self.iteration = 0  # steps whose gradients were all-reduced (the last bucket counts one)
        # On NCCL a bucket's completion is not seen by the host without a sync: ages are not measured.
        self.measures = dist.get_backend() == "gloo"

    def local(self) -> bool:
        """Whether the step's gradients stay local (PL-SGD after its switch)."""
        return self.start_local is not None and self.iteration >= self.start_local


def ddp_hook(state: DdpHookState, bucket):  # no return annotation: DDP checks it, strings fail
    """DDP's gradient all-reduce (the mean, as DDP's default hook) on the wire: a delayed rank's
    bucket is all-reduced its delay after it was ready, from the wire's delivery thread, while the
    backward goes on; the bucket's age is logged (on gloo). After PL-SGD's switch: no communication."""
    tensor = bucket.buffer()
    if state.local():
        done = torch.futures.Future()
        done.set_result(tensor)
        return done
    if bucket.is_last():
        state.iteration += 1
    wire = state.wire
    stamp = time.time()
    delay = wire.delay_s()
    wire.sent(wire.all_reduce_bytes(tensor))

    def launch() -> torch.futures.Future:
        launched = time.time()
        reduced = dist.all_reduce(tensor.div_(wire.world), async_op=True).get_future()
        if not state.measures:
            return reduced.then(lambda fut: fut.value()[0])
        times = wire.times(stamp, launched, torch.device("cpu"))
        shared = dist.all_reduce(times, async_op=True).get_future()

        def arrived(both) -> torch.Tensor:
            both.value()  # raises a failed collective's error
            wire.parts_arrived(times.tolist(), time.time())
            return tensor

        return torch.futures.collect_all([reduced, shared]).then(arrived)

    if wire.straggler is None:
        return launch()
    # The slowed rank launches every bucket from its delivery thread, delayed or not: a bucket with
    # no delay drawn must not overtake a held one (every rank's collectives go in one order).
    result = torch.futures.Future(devices=[wire.device] if wire.device.type == "cuda" else None)

    def relay() -> None:
        try:
            launch().add_done_callback(lambda fut: _settle(result, fut))
        except BaseException as err:  # noqa: BLE001  (DDP's wait raises it on the training thread)
            result.set_exception(err)

    wire.later(stamp + delay, relay)
    return result


def _settle(result: torch.futures.Future, source: torch.futures.Future) -> None:
    try:
        result.set_result(source.value())
    except BaseException as err:  # noqa: BLE001
        result.set_exception(err)
