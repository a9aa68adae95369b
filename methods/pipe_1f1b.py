"""`pipe_1f1b`: synchronous pipeline parallelism with the 1F1B schedule (PipeDream-Flush,
Narayanan et al. 2021) through torch.distributed.pipelining: the suite's extension.

As `gpipe` (the stages, balancing, micro-batches, update and evaluation are its), but after a warm-up
of one forward per later stage each stage alternates one forward and one backward, so a stage holds
the activations of at most `--devices` micro-batches instead of all of them: the same gradients and
the same bubble in theory, less memory. torch requires at least as many micro-batches as stages.
"""

from __future__ import annotations

from core.config import TrainConfig
from core.errors import UserError

from .common.base import register_method
from .gpipe import GPipe, PipelineConfig


@register_method("pipe_1f1b")
class OneForwardOneBackward(GPipe):
    """The model in `--devices` stages; after the warm-up, one forward then one backward per stage."""

    summary = "pipeline parallel (1F1B): stages on --devices processes, one forward one backward, one step"
    cost_vs_bp = 1.45  # run claims' prior: wall time / bp's
    schedule_name = "Schedule1F1B"

    @classmethod
    def check_job(cls, config: TrainConfig, method_config: PipelineConfig, devices: int) -> None:
        super().check_job(config, method_config, devices)
        if method_config.microbatches < devices:
            raise UserError(
                f"pipe_1f1b needs microbatches >= its {devices} stages (--devices), got "
                f"{method_config.microbatches}; use --set microbatches={devices}"
            )
