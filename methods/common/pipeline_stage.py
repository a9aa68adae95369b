"""A pipeline stage that clocks its own compute (its own module: torch.distributed.pipelining takes
a second to import, which only pipeline jobs should pay)."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.pipelining import PipelineStage


class TimedStage(PipelineStage):
    """A PipelineStage that clocks its own compute (forward and backward of each micro-batch,
    without the waits for its neighbours) with `busy` (a BusyClock): what the pipeline's idle
    fraction is measured from."""

    def __init__(self, submodule: nn.Module, stage_index: int, num_stages: int, device: torch.device, busy):
        super().__init__(submodule, stage_index, num_stages, device)
        self.busy = busy

    def forward_one_chunk(self, *args, **kwargs):
        with self.busy:
            return super().forward_one_chunk(*args, **kwargs)

    def backward_one_chunk(self, *args, **kwargs):
        with self.busy:
            return super().backward_one_chunk(*args, **kwargs)
