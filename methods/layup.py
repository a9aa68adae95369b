"""`layup`: LayUp (arXiv 2410.05985 v4, the newest version of 000), the suite's reading of its abstract.

`--devices N` worker processes, each training its replica on its shard with async_lu's engine (one
forward thread, B backward threads, each module updated the moment its gradient exists). Every
update a worker applies is also gossiped: the module's increment goes to `peers` peers drawn at
random, point to point, and a peer applies it the moment it arrives (methods/common/gossip.py): no
all-reduce, no barrier inside an epoch, no buffer of whole models. The abstract leaves open how an
arriving update is applied, to how many peers, in what messages and which model is evaluated; each
is a setting, with its default's reason in docs/fidelity.md ("LayUp"):
- `mix`: how an arriving message is applied (methods/common/gossip.py has each rule's arithmetic):
  `pushsum` (default: SGP's push-sum, the network's weighted mean kept exactly, one message per
  exchange), `pairwise` (AD-PSGD's symmetric pairwise average: a request and a reply), `add` (the
  increment added: the abstract's "incremental layer-wise updates ... applied as soon as they are
  available"; replicas drift apart for N > 2) or `average` (the receiver alone moves half-way: the
  network mean is not kept; earlier runs' rule);
- `peers`: peers per message (1: the abstract's randomized gossip; N-1: every update to every
  worker, as async_lu's exchange);
- `bundle`: `layer` sends one message per module, `all` every module waiting in one message;
- `evaluate`: `own` evaluates rank 0's replica (as every method here), `mean` the replicas' mean
  (weighted by the push-sum weights under `pushsum`: the network's mean).
At an epoch end each worker sends what waits and waits for every peer's end mark (the epoch's one
sync point, as async_lu's), then the replicas' drift is measured.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from core.config import TrainConfig, added_setting
from core.context import TrainContext
from core.errors import UserError
from core.runtime.straggler import Straggler, straggler_for
from core.runtime.wire import Wire

from .async_backprop import AsyncBackprop
from .common.async_engine import AsyncConfig, AsyncEngine
from .common.base import register_method
from .common.gossip import MIXES, GossipExchange

BUNDLES = ("layer", "all")
EVALUATES = ("own", "mean")
BATCHES = ("shared", "shard")


@dataclass(frozen=True)
class LayupConfig(AsyncConfig):
    """async_lu's thread layout and corrections, and how updates are gossiped."""

    mix: str = "pushsum"
    peers: int = 1
    bundle: str = "layer"
    evaluate: str = "own"
    batches: str = "shared"
    # True: a worker's forward waits, before each pass, until every message that reached it is
    # applied (held ones included): a gossip that waits for its messages, the ablation that shows
    # what LayUp's asynchrony does under a wire delay (tests/test_wire.py).
    wait_for_held: bool = added_setting("wait_for_held", False, "2026-11-28")

    def validate(self) -> None:
        """Reject unknown choices and a peer count below 1, with one line naming the key."""
        super().validate()
        choices = (("mix", MIXES), ("bundle", BUNDLES), ("evaluate", EVALUATES), ("batches", BATCHES))
        for key, valid in choices:
            if getattr(self, key) not in valid:
                raise UserError(f"{key} must be one of {', '.join(valid)}, got {getattr(self, key)!r}")
        if self.peers < 1:
            raise UserError(f"peers must be >= 1, got {self.peers}")
        if self.mix == "pairwise" and self.peers > 1:
            # AD-PSGD's average is of two: the replies of several peers would move the sender by the
            # sum of their halves, past the mean (a negative weight on its own replica).
            raise UserError(f"mix=pairwise averages a pair: set peers=1, not {self.peers}")
        if self.lock_free:
            # The mixing reads and writes a module under its lock; without it push-sum's and pairwise's
            # mean is lost and mix=add loses increments.
            raise UserError("layup mixes each module under its lock: set lock_free=false")


@register_method("layup")
class LayUp(AsyncBackprop):
    """async_lu on each worker; every applied module update gossiped to random peers."""

    summary = "LayUp (000 v4): async_lu workers gossiping layer-wise updates to random peers, no barrier"
    Config = LayupConfig
    layerwise = True
    parallel = "processes"  # workers are processes that gossip (async_lu's threads within each)
    wire_delays = True  # each gossip message carries the wire's delay; its receiver holds it

    @classmethod
    def check_job(cls, config: TrainConfig, method_config: LayupConfig, devices: int) -> None:
        """LayUp is a method of several workers: at least 2 processes, and peers among them."""
        if devices < 2:
            raise UserError(f"layup gossips between workers: run it with --devices 2 or more, not {devices}")
        if method_config.peers > devices - 1:
            raise UserError(f"peers must be at most devices - 1 = {devices - 1}, got {method_config.peers}")

    def epoch_batches(self, ctx: TrainContext, epoch: int) -> Iterator[tuple[float, object]]:
        """batches=shared: the whole epoch's batches, each worker taking the next one from a counter
        the workers share (the rendezvous store's): a slow worker takes fewer, none waits for it.
        The step is the batch's position over the workers (the learning rate's point in the epoch)."""
        if ctx.method_config.batches == "shard":
            numbered = super().epoch_batches(ctx, epoch)
        else:
            total = ctx.dataset.steps_per_epoch(ctx.config.batch_size, 1)
            store = dist.distributed_c10d._get_default_store()
            counter = SharedPositions(store, f"layup/epoch{epoch}", total)
            batches = ctx.train_batches(epoch, positions=counter)
            numbered = ((counter.position / ctx.world, batch) for batch in batches)
        return self._after_held(numbered) if ctx.method_config.wait_for_held else numbered

    def _after_held(self, numbered: Iterator[tuple[float, object]]) -> Iterator[tuple[float, object]]:
        """wait_for_held: each batch once every message that reached this worker is applied."""
        for item in numbered:
            self.exchange.wait_held()
            yield item

    def forward_straggler(self, ctx: TrainContext) -> Straggler | None:
        """A delay slows a whole worker, the last: its forward thread, which feeds its passes."""
        return straggler_for(ctx.config, ctx.rank, ctx.world)

    def make_exchange(self, engine: AsyncEngine, ctx: TrainContext) -> GossipExchange:
        settings = ctx.method_config
        self.mean_model: torch.nn.Module | None = None
        self.exchange = GossipExchange(
            engine.updater,
            ctx.device,
            mix=settings.mix,
            peers=settings.peers,
            bundle=settings.bundle,
            seed=ctx.job.seed,
            on_error=engine.fail,
            wire=Wire.of(ctx.config, ctx.rank, ctx.world, ctx.device, self.slowed_forward),
        )
        return self.exchange

    def evaluated_model(self, ctx: TrainContext) -> torch.nn.Module | None:
        """With evaluate=mean, a copy holding the network's mean (Σ w z / Σ w over the replicas, w
        the push-sum weights, 1 under the other rules; BatchNorm statistics their plain mean; a
        collective): the replicas themselves train on unchanged."""
        if ctx.method_config.evaluate == "own":
            return None
        if self.mean_model is None:
            self.mean_model = copy.deepcopy(ctx.model)
        with torch.no_grad():
            params, masses = list(ctx.model.parameters()), self.exchange.masses()
            buffers = [b for b in ctx.model.buffers() if b.is_floating_point()]
            weighted = [p.detach().reshape(-1) * mass for p, mass in zip(params, masses, strict=True)]
            flat = torch.cat([*weighted, *(b.reshape(-1) for b in buffers)])
            totals = torch.tensor(masses, dtype=flat.dtype, device=flat.device)
            dist.all_reduce(flat)
            dist.all_reduce(totals)
            parts = flat.split([t.numel() for t in (*params, *buffers)])
            targets = [
                *self.mean_model.parameters(),
                *(b for b in self.mean_model.buffers() if b.is_floating_point()),
            ]
            divisors = [*totals.tolist(), *[float(ctx.world)] * len(buffers)]
            for target, part, divisor in zip(targets, parts, divisors, strict=True):
                target.copy_(part.view_as(target) / divisor)
        return self.mean_model


class SharedPositions:
    """The epoch's batch positions, each taken by one worker from a counter in the rendezvous store
    (an atomic add: a round trip to rank 0's store, ~0.1 ms, per batch); `position` is the last."""

    def __init__(self, store: dist.Store, key: str, total: int):
        self.store, self.key, self.total = store, key, total
        self.position = -1

    def __iter__(self) -> Iterator[int]:
        while (position := self.store.add(self.key, 1) - 1) < self.total:
            self.position = position
            yield position
