"""`gpipe`: synchronous pipeline parallelism (GPipe, Huang et al. 2019) through
torch.distributed.pipelining: the suite's extension, the comparison 000's reviewers asked for.

The model (its `pipeline_blocks()`) is cut into `--devices` contiguous stages, one per process,
balanced by each block's measured forward and backward time (or its parameters). Every batch of
`batch_size` samples (the whole batch of `bp`, not a per-process one: the stages read the same
epoch) is split into `microbatches`; the first stage feeds them forward one after the other, the
last computes each micro-batch's mean loss, and GPipe runs every forward, then every backward
(fill, drain), before each stage takes one optimiser step on its gradients, divided by the number
of micro-batches: the mean loss of the whole batch, the same update as `bp` up to BatchNorm's
statistics, which are a micro-batch's (tested: equal to `bp` accumulating over the same
micro-batches). The LR schedule, optimiser, stopping and evaluation are every method's; rank 0
gathers the stages' weights for the evaluation at each epoch end. On one process the pipeline is one
stage: the same micro-batches, gradients accumulated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F

from core.config import TrainConfig
from core.context import TrainContext
from core.errors import UserError
from core.schedule import lr_at

from .common.base import Method, register_method
from .common.optim import hidden_matrices, make_optimizer, set_lr
from .common.pipeline import (
    BALANCES,
    BusyClock,
    Pipeline,
    agreed_split,
    block_costs,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """Micro-batches per batch, and what balances the stages."""

    microbatches: int = 4
    balance: str = "time"  # time: measured forward + backward per block | params: parameter counts

    def validate(self) -> None:
        """Reject values that cannot run, with one line naming the key."""
        if self.microbatches < 1:
            raise UserError(f"microbatches must be >= 1, got {self.microbatches}")
        if self.balance not in BALANCES:
            raise UserError(f"balance must be one of {', '.join(BALANCES)}, got {self.balance!r}")


@register_method("gpipe")
class GPipe(Method):
    """The model in `--devices` stages; each batch's micro-batches all forward, then all backward."""

    summary = "pipeline parallel (GPipe): stages on --devices processes, micro-batches fill, drain, one step"
    cost_vs_bp = 1.5  # run claims' prior: wall time / bp's
    Config = PipelineConfig
    max_devices = None
    shards_data = False
    cuts_model = True
    schedule_name: ClassVar[str] = "ScheduleGPipe"  # a schedule class of torch.distributed.pipelining

    @classmethod
    def check_job(cls, config: TrainConfig, method_config: PipelineConfig, devices: int) -> None:
        if config.batch_size % method_config.microbatches:
            raise UserError(
                f"batch_size {config.batch_size} is not a multiple of microbatches "
                f"{method_config.microbatches}: a pipeline's micro-batches are equal"
            )

    @staticmethod
    def bubble(stages: int, microbatches: int) -> float:
        """The schedule's idle fraction in theory (equal stages, free communication): GPipe's and
        1F1B's are the same, (S - 1) / (M + S - 1); 1F1B holds fewer activations."""
        return (stages - 1) / (microbatches + stages - 1)

    def train(self, ctx: TrainContext) -> None:
        if ctx.world == 1:
            self._train_one_stage(ctx)
            return
        cfg, settings = ctx.config, ctx.method_config
        # build_job admitted only models registered `splits=True` (models.check_splits): they have it.
        blocks = ctx.model.pipeline_blocks()
        # Balancing happens before the first epoch, off the training clock (like process start-up).
        micro = cfg.batch_size // settings.microbatches
        sample = next(iter(ctx.dataset.train_batches(0, micro, ctx.job.seed, ctx.device)))[0]
        costs = block_costs(blocks, ctx.model_layout(sample), settings.balance)
        bounds = [0, *agreed_split(costs, ctx.world, ctx.device), len(blocks)]
        stage_costs = [sum(costs[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        log.info("pipeline stages: blocks %s, %s cost %s", bounds, settings.balance, stage_costs)
        pipeline = Pipeline(
            blocks, bounds, ctx.rank, ctx.world, ctx.device, ctx.channels_last, self.schedule_name,
            settings.microbatches,
        )  # fmt: skip
        optimizer = make_optimizer(pipeline.module.parameters(), cfg, hidden_matrices(ctx.model))
        steps, in_steps = ctx.steps_per_epoch, BusyClock(ctx.device)
        # How far the costliest stage is above an even split, by rank 0's measurement (1 = even).
        balance = {"pipeline_balance": max(stage_costs) / (sum(stage_costs) / len(stage_costs))}
        for epoch in ctx.epochs():
            meter = ctx.meter()
            for step, (inputs, targets) in enumerate(ctx.train_batches(epoch, lockstep=True)):
                set_lr(optimizer, lr_at(epoch + step / steps, cfg))
                optimizer.zero_grad(set_to_none=True)
                with in_steps:
                    loss, logits = pipeline.step(inputs, targets)
                    optimizer.step()
                if loss is not None:
                    meter.add(loss, logits, targets)
            pipeline.gather()
            idle = self._idle(ctx, pipeline.stage.busy.take(), in_steps.take(), settings.microbatches)
            ctx.end_epoch(meter, ctx.model, extra={**idle, **balance})

    def _idle(self, ctx: TrainContext, busy_s: float, step_s: float, microbatches: int) -> dict[str, float]:
        """The epoch's idle fraction: the share of the stages' time in steps not spent computing
        (waiting for a neighbour, the bubble), over all stages and at the idlest; and in theory."""
        shares = torch.tensor([busy_s, step_s, busy_s / max(step_s, 1e-9)], dtype=torch.float64)
        shares = shares.to(ctx.device)
        totals, lowest = shares[:2].clone(), shares[2:].clone()
        dist.all_reduce(totals)
        dist.all_reduce(lowest, op=dist.ReduceOp.MIN)
        busy, inside = totals.tolist()
        return dict(
            pipeline_idle_frac=1.0 - busy / max(inside, 1e-9),
            pipeline_idle_frac_max=1.0 - lowest.item(),
            pipeline_bubble_theory=self.bubble(ctx.world, microbatches),
        )

    def _train_one_stage(self, ctx: TrainContext) -> None:
        """One process: the whole model is the one stage; the micro-batches' gradients accumulate."""
        cfg, chunks = ctx.config, ctx.method_config.microbatches
        optimizer = make_optimizer(ctx.model.parameters(), cfg, hidden_matrices(ctx.model))
        steps = ctx.steps_per_epoch
        for epoch in ctx.epochs():
            meter = ctx.meter()
            for step, (inputs, targets) in enumerate(ctx.train_batches(epoch)):
                set_lr(optimizer, lr_at(epoch + step / steps, cfg))
                optimizer.zero_grad(set_to_none=True)
                for part, part_targets in zip(inputs.chunk(chunks), targets.chunk(chunks), strict=True):
                    logits = ctx.model(part)
                    loss = F.cross_entropy(logits, part_targets)
                    (loss / chunks).backward()
                    meter.add(loss, logits, part_targets)
                optimizer.step()
            ctx.end_epoch(meter, ctx.model)
