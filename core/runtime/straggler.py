"""Injected straggler delays (004's robustness experiment): one slow thread, rank or worker per job.

004 states that PD-ASGD loses under 2.5 points of accuracy "even under significant straggler
delays" and gives neither the delay's size nor where it falls. The suite's reading (docs/fidelity.md,
"Stragglers"): one unit of the job is slowed, the others run at full speed, so that the methods
differ in who has to wait for it:
- async_lu / async_bu: backward thread 0 of the last rank (the forward thread and the other
  backward threads do not wait for it unless every in-flight slot is held by it);
- ddp, plsgd, bp: the last rank (synchronous methods: every rank waits at the next all-reduce);
- lapsgd, lppsgd: worker 0 of the last rank (Hogwild! workers never wait for one another).
After each of its steps, that unit sleeps `straggler_delay_ms`, or `straggler_delay_frac` times
its own recent step time, with probability `straggler_prob`, drawn from `straggler_seed`.

`straggler_kind=wire` (table `layup`, LayUp's abstract: "injecting delays into the communication
between workers") delays the same rank's outgoing communication instead of its compute: the unit
only measures its step time, and each message the rank sends (`draw`) carries the delay as a
latency, on one model for every method (core/runtime/wire.py): each gossip message (layup), each
gradient bucket's all-reduce (ddp, and plsgd before its switch), each averaging (plsgd, lapsgd,
lppsgd) and each outer all-reduce (diloco). A method whose communication takes no delay refuses
the kind (`Method.wire_delays`).
"""

from __future__ import annotations

import random
import threading
import time

import torch

from ..config import TrainConfig

# An exponential mean over the undelayed step times: recent enough to follow the LR warm-up's
# unchanged cost, smooth enough that one slow step does not double the next delay.
STEP_TIME_DECAY = 0.9


def straggler_for(cfg: TrainConfig, rank: int, world: int, unit: int = 0) -> Straggler | None:
    """The Straggler of this rank's `unit` (backward thread or worker index), or None where no delay falls."""
    if not (cfg.straggler_delay_ms or cfg.straggler_delay_frac) or cfg.straggler_prob == 0:
        return None
    return Straggler(cfg, rank) if rank == world - 1 and unit == 0 else None


class Straggler:
    """Sleeps after a step (compute) or delays the messages it sends (wire), with a probability, for
    a fixed time or a fraction of the step's own time."""

    def __init__(self, cfg: TrainConfig, rank: int):
        self.wire = cfg.straggler_kind == "wire"
        self.lock = threading.Lock()  # a wire delay may be drawn on a communication thread
        self.delay_s = cfg.straggler_delay_ms / 1000.0
        self.fraction = cfg.straggler_delay_frac
        self.probability = cfg.straggler_prob
        self.rng = random.Random(f"straggler:{cfg.straggler_seed}:{rank}")
        self.step_s: float | None = None
        self.injected_s = 0.0
        self.delays = 0
        self.drawn_s = 0.0  # the longest wire delay drawn since the last tick
        self._last: float | None = None

    def after_step(self, step_s: float) -> float:
        """A step that took `step_s` seconds is done: sleep this step's delay, if one falls (compute
        delays; a wire straggler only measures); return it."""
        previous = step_s if self.step_s is None else self.step_s
        self.step_s = STEP_TIME_DECAY * previous + (1 - STEP_TIME_DECAY) * step_s
        return 0.0 if self.wire else self._sleep(self.step_s)

    def draw(self, step_s: float | None = None) -> float:
        """A wire delay: the latency of one outgoing message (a fraction of `step_s`, else of the
        measured step time), if a delay falls on it; 0 for a compute straggler. Nothing sleeps here:
        the wire holds the message (core/runtime/wire.py)."""
        if not self.wire:
            return 0.0
        with self.lock:
            return self._draw(step_s if step_s is not None else (self.step_s or 0.0))

    def _draw(self, step_s: float) -> float:
        if self.rng.random() >= self.probability:
            return 0.0
        delay = self.delay_s or self.fraction * step_s
        self.injected_s += delay
        self.delays += 1
        self.drawn_s = max(self.drawn_s, delay)
        return delay

    def _sleep(self, step_s: float) -> float:
        with self.lock:
            delay = self._draw(step_s)
        time.sleep(delay)
        return delay

    def restart(self) -> None:
        """The loop resumes after a pause (an epoch end, an evaluation): the next step starts now."""
        self._last = time.perf_counter()

    def tick(self, device: torch.device, waits_for_wire: bool = False) -> float:
        """For a training loop: call once per step at the same point; the step's time is the time since
        the last call, less the delay (and, with `waits_for_wire`, less the longest wire delay drawn in
        the step, which a loop that waits for its own collectives spent waiting: the fraction is of
        the step's compute). On CUDA the stream is synchronised first, so the device itself idles for
        the delay (a sleeping host with queued kernels would hide it)."""
        if device.type == "cuda":
            torch.cuda.current_stream(device).synchronize()
        now = time.perf_counter()
        delay = 0.0
        with self.lock:
            waited, self.drawn_s = (self.drawn_s if waits_for_wire else 0.0), 0.0
        if self._last is not None:
            delay = self.after_step(max(0.0, now - self._last - waited))
        self._last = time.perf_counter() if delay else now
        return delay
