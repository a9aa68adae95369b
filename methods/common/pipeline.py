"""What the pipeline-parallel methods (`gpipe`, `pipe_1f1b`) share: the model cut into stages
balanced by measured time, a stage that clocks its own compute, the tied weights' gradients summed,
and the stages' weights gathered for rank 0's evaluation (docs/design.md, "Pipeline methods").

A model that a pipeline can cut defines `pipeline_blocks()`: a chain of modules whose composition
is its forward, sharing its parameters (models/resnet.py, models/gpt.py).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from core.errors import UserError

BALANCES = ("time", "params")


class _EnterChannelsLast(torch.autograd.Function):
    """Identity into channels_last; the gradient leaves in the standard layout (a sent tensor)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous()


class Boundary(nn.Module):
    """Between two stages: activations (and, going back, their gradients) cross contiguous in the
    standard layout, the only one gloo and NCCL send; a stage computes in the model's memory format
    (channels_last where the job trains in it)."""

    def __init__(self, channels_last: bool):
        super().__init__()
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return _EnterChannelsLast.apply(x)
        return x.contiguous()


def stage_modules(blocks: Sequence[nn.Module], bounds: Sequence[int], channels_last: bool) -> list[nn.Module]:
    """The stages: blocks[bounds[s]:bounds[s + 1]] each, with a Boundary where activations cross."""
    stages = []
    for index, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        enter = [Boundary(channels_last)] if index > 0 else []
        leave = [Boundary(False)] if b < len(blocks) else []
        stages.append(nn.Sequential(*enter, *blocks[a:b], *leave))
    return stages


def split_points(costs: Sequence[float], stages: int) -> list[int]:
    """Where to cut a chain of blocks with these costs into `stages` contiguous non-empty stages so
    that the costliest stage costs least: the first block index of every stage after the first."""
    n = len(costs)
    if not 1 <= stages <= n:
        raise UserError(f"a pipeline of {stages} stages needs at least {stages} blocks; this model has {n}")
    prefix = [0.0]
    for cost in costs:
        prefix.append(prefix[-1] + cost)
    # best[s][i]: the least possible cost of the costliest stage when blocks[:i] form s stages.
    best = [[float("inf")] * (n + 1) for _ in range(stages + 1)]
    cut = [[0] * (n + 1) for _ in range(stages + 1)]
    best[0][0] = 0.0
    for s in range(1, stages + 1):
        for i in range(s, n + 1):
            for j in range(s - 1, i):
                worst = max(best[s - 1][j], prefix[i] - prefix[j])
                if worst < best[s][i]:
                    best[s][i], cut[s][i] = worst, j
    points, i = [], n
    for s in range(stages, 1, -1):
        i = cut[s][i]
        points.append(i)
    return sorted(points)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def block_costs(blocks: Sequence[nn.Module], sample: torch.Tensor, by: str, repeats: int = 3) -> list[float]:
    """Each block's cost: its forward and backward seconds on `sample` (one micro-batch passed down
    the chain; the median of `repeats` after a warm-up), or its parameter count (`by="params"`).
    Timing leaves the blocks as it found them: buffers (BatchNorm's running statistics) restored,
    no gradients kept."""
    if by == "params":
        return [float(sum(p.numel() for p in block.parameters())) for block in blocks]
    buffers = [(b, b.detach().clone()) for block in blocks for b in block.buffers()]
    device = sample.device
    costs, x = [], sample
    for block in blocks:
        x_in = x.detach().requires_grad_(x.is_floating_point())
        times = []
        for _ in range(repeats + 1):
            _sync(device)
            start = time.perf_counter()
            out = block(x_in)
            out.backward(torch.ones_like(out))
            _sync(device)
            times.append(time.perf_counter() - start)
        costs.append(statistics.median(times[1:]))
        x = out.detach()
    with torch.no_grad():
        for buffer, saved in buffers:
            buffer.copy_(saved)
    for block in blocks:
        block.zero_grad(set_to_none=True)
    return costs


def agreed_split(costs: list[float], stages: int, device: torch.device) -> list[int]:
    """Rank 0's split points, adopted by every rank (timings differ between processes)."""
    points = torch.tensor(split_points(costs, stages), dtype=torch.int64, device=device)
    dist.broadcast(points, src=0)
    return points.tolist()


class BusyClock:
    """Seconds between start() and stop() (or inside `with`), summed: CUDA events on a GPU (no host
    sync until `take`), the host clock on a CPU, where the work is done when the call returns."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.seconds, self._events, self._started = 0.0, [], 0.0

    def start(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self._events.append([event, None])
        else:
            self._started = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self._events[-1][1] = event
        else:
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> BusyClock:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def take(self) -> float:
        """The seconds summed since the last `take` (synchronises on a GPU)."""
        if self._events:
            self._events[-1][1].synchronize()
            self.seconds += sum(start.elapsed_time(end) for start, end in self._events) / 1e3
            self._events = []
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class TiedGradients:
    """Parameters held by several stages (the GPT's token embedding, in its first and last link):
    their gradients summed over those stages after every step, as Megatron-LM does, so the copies
    take the same steps and stay equal. Every rank builds it (creating groups is collective)."""

    def __init__(self, stage_params: Sequence[Sequence[nn.Parameter]], rank: int):
        holders: dict[int, list[int]] = {}
        by_id: dict[int, nn.Parameter] = {}
        for stage, params in enumerate(stage_params):
            for p in params:
                holders.setdefault(id(p), []).append(stage)
                by_id[id(p)] = p
        self.mine: list[tuple[nn.Parameter, dist.ProcessGroup]] = []
        for key, stages in holders.items():  # the same order on every rank: the model's order
            if len(stages) < 2:
                continue
            group = dist.new_group(stages)
            if rank in stages:
                self.mine.append((by_id[key], group))

    def sum(self) -> None:
        """Sum each shared parameter's gradient over the stages that hold it."""
        for param, group in self.mine:
            if param.grad is not None:
                dist.all_reduce(param.grad, group=group)


class Pipeline:
    """This process's stage of a model cut at `bounds` into one stage per rank, run by a schedule of
    torch.distributed.pipelining (`schedule_name`, e.g. "ScheduleGPipe") over `microbatches`."""

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        bounds: Sequence[int],
        rank: int,
        world: int,
        device: torch.device,
        channels_last: bool,
        schedule_name: str,
        microbatches: int,
    ):
        self.rank, self.first, self.last = rank, rank == 0, rank == world - 1
        self.stages = stage_modules(blocks, bounds, channels_last)
        self.tied = TiedGradients([list(m.parameters()) for m in self.stages], rank)
        release_others(self.stages, rank)
        self.module = self.stages[rank]
        # torch.distributed.pipelining takes a second to import: only pipeline jobs pay for it.
        import torch.distributed.pipelining as pipelining

        from .pipeline_stage import TimedStage

        self.stage = TimedStage(self.module, rank, world, device, BusyClock(device))
        schedule_class = getattr(pipelining, schedule_name)
        self.schedule = schedule_class(self.stage, microbatches, loss_fn=F.cross_entropy)

    def step(self, inputs, targets: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Forward and backward of one batch (every rank passes the same batch): this stage's
        gradients set (summed with the other holders' where a parameter is shared); on the last
        stage, (the batch's mean loss, its logits), elsewhere (None, None)."""
        losses: list[torch.Tensor] = []
        output = self.schedule.step(
            *((inputs,) if self.first else ()),
            target=targets if self.last else None,
            losses=losses if self.last else None,
        )
        self.tied.sum()
        return (torch.stack(losses).mean(), output) if self.last else (None, None)

    def gather(self) -> None:
        """Every stage's weights into rank 0's model (a collective of the stages)."""
        gather_to_rank0(self.stages, self.rank)


def gather_to_rank0(stage_modules: Sequence[nn.Module], rank: int) -> None:
    """Copy every stage's parameters and buffers into rank 0's (whole) model, point to point, so
    that rank 0 evaluates the weights the stages trained. Tensors rank 0 holds itself stay."""
    own = {id(t) for t in _tensors(stage_modules[0])}
    for stage in range(1, len(stage_modules)):
        for tensor in _tensors(stage_modules[stage]):
            if id(tensor) in own:
                continue
            if rank == stage:
                dist.send(tensor.detach().contiguous(), dst=0)
            elif rank == 0:
                received = torch.empty(tensor.shape, dtype=tensor.dtype, device=tensor.device)
                dist.recv(received, src=stage)
                with torch.no_grad():
                    tensor.copy_(received)


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


def release_others(stage_modules: Sequence[nn.Module], rank: int) -> None:
    """On a rank other than 0, free the weights of the stages it does not run (rank 0 keeps the
    whole model, which it evaluates): a stage's memory is its own blocks'."""
    if rank == 0:
        return
    keep = {id(t) for t in _tensors(stage_modules[rank])}
    for stage, module in enumerate(stage_modules):
        if stage == rank:
            continue
        for tensor in _tensors(module):
            if id(tensor) not in keep:
                tensor.data = torch.empty(0, dtype=tensor.dtype, device=tensor.device)
