"""`lapsgd`: locally-asynchronous parallel SGD (002, Algorithm 1), a baseline of the paper under study.

Per device (a rank of `--devices N`), U worker processes share one model in shared memory and
update it lock-free, Hogwild! style (Algorithm 1a): each leases the next batch of the epoch's
seeded permutation from a shared counter, does `s := read-and-inc(S)` on the shared update
counter S, computes its gradient on the model as it reads it, and updates the model in place with
its own SGD state. The rank's own process is the averager a_q (Algorithm 1b): it watches S, and
when any device has made K updates since the last round it snapshots the live model, all-reduces
the snapshots to their mean across devices, and adds (mean - snapshot) to the live model while
the workers go on updating it, so that updates made during the round survive.

Choices where 002 is silent (the authors' code, `bapi/LPP-SGD`, decides; docs/fidelity.md):
- Momentum and weight decay are private to each worker (a torch.optim.SGD per worker over the
  shared parameters); BatchNorm buffers are shared but not averaged.
- "Any device has K new updates" is decided on an all-reduced MAX, so every averager enters the
  same rounds; the schedule's progress (K = 1 before `average_switch`, then `average_every`) is
  the fraction of the budget used: epochs over max_epochs or the training clock over the time
  budget, whichever is further.
- Epochs end as in every other method: the workers drain, the averager evaluates (rank 0), and
  the next epoch starts; the authors' code has no epoch barrier (`reading=authors_code` below).
- Worker start-up (a spawned interpreter each) is not on the training clock, like process spawn
  for `--devices N`.

`reading=authors_code` runs LAP-SGD as the authors' code runs it where that differs from the
paper's text (bapi/LPP-SGD at commit bd4cb78, `train/LAPSGD.py`; docs/fidelity.md):
- the trigger: each poll all-reduces (S, -s_pre) with MAX and averages when max S - min s_pre >= K,
  s_pre being each device's own S when it last averaged (lines 35-52). While two devices are K or
  more updates apart, every poll averages, not every K updates;
- the averager polls in a busy loop, without sleeping (the `while True` of line 35), and reads S
  under the counter's lock (lines 36-37), which the workers need to count their updates;
- S is incremented after the gradient, just before the update (lines 154-173), not when a batch
  is leased;
- averaging ends for good once any device has made all the updates of the run (max S >= L x
  epochs, lines 42-45): the slower devices' last updates are never averaged;
- the partial last batch of each shard is trained on (their DataLoader keeps drop_last=False,
  `dataloaders/data_loader_CIFAR.py` lines 23-28), so an epoch has ceil(shard / B) updates;
- no device waits for another between epochs: the workers are let go once and run through the
  epochs (each of theirs loops over its DataLoader epochs, lines 110-118), nor at the start: a
  device's workers train once they are up, and its averager meets the others at its first poll
  (their averager's only barrier, line 34, is not the workers'), so the devices are as far apart
  as their start-ups and speeds make them.
  Each device's workers lease the run's batches from one counter (epoch = lease // L). The
  averagers keep polling across epoch ends; an epoch is reported (rank 0 evaluates the live model)
  once every device has trained it, and the clock keeps running meanwhile, as the workers do.
  Theirs gives each of U > 1 workers a whole epoch of its own; ours share an epoch's batches.
"""

from __future__ import annotations

from core.context import TrainContext

from ..common.base import Method, register_method
from .averager import Averager, average_round, round_due
from .config import LapConfig
from .leases import Leases, RunLeases
from .state import SharedState
from .worker import hogwild_step, parameter_blocks

__all__ = [
    "Averager",
    "LapConfig",
    "Leases",
    "LocallyAsynchronousSGD",
    "RunLeases",
    "SharedState",
    "average_round",
    "hogwild_step",
    "parameter_blocks",
    "round_due",
]


@register_method("lapsgd")
class LocallyAsynchronousSGD(Method):
    """LAP-SGD (002 Alg. 1): U Hogwild! worker processes per device, asynchronous non-blocking averaging."""

    summary = "LAP-SGD: U lock-free worker processes per device, non-blocking model averaging every K updates"
    cost_vs_bp = 1.3  # run claims' prior: wall time / bp's
    Config = LapConfig
    max_devices = None
    wire_delays = True  # the last device's averager holds each round (methods/lapsgd/averager.py)
    partitioned = False  # lppsgd: alternate partitioned and full updates after partition_start

    def train(self, ctx: TrainContext) -> None:
        partition_start = ctx.method_config.partition_start if self.partitioned else None
        averager = Averager(ctx, partition_start)
        try:
            averager.start_workers()
            for epoch in ctx.epochs():
                averager.run_epoch(epoch)
                averager.end_epoch()
        finally:
            averager.stop_workers()
