"""What a job measures of its machine each epoch, beside its learning curve (as torchtitan's
metrics processor): throughput, model FLOPs utilisation, peak memory, other processes' share of
the CPU, and their end-of-run values. The training context (core/context.py) keeps the clock,
evaluation and stopping, and hands this the epoch's numbers."""

from __future__ import annotations

import logging

import torch

from .runtime.contention import CONTENDED_SHARE, OthersMeter

log = logging.getLogger(__name__)


class EpochMetrics:
    """One process's per-epoch machine metrics and their end-of-run values (rank 0 logs them)."""

    def __init__(self, device: torch.device, rank: int):
        self.device, self.rank = device, rank
        self.flops_per_sample = self.peak_flops = 0.0  # set by the runner where it could count them
        self._peak_warned = False
        self.mem_peak_gib = 0.0  # the highest epoch peak of the job's memory so far (all processes)
        # Other processes' share of the machine's CPU per epoch (core/runtime/contention.py).
        self._others = OthersMeter() if rank == 0 else None
        self.others_cpu_max = 0.0

    def epoch(self, samples: int, seconds: float, memory_bytes: float) -> dict[str, float]:
        """The epoch's throughput, peak memory (GiB, the job's processes summed) and MFU where known."""
        values = dict(samples_per_s=samples / max(seconds, 1e-9), mem_peak_gib=memory_bytes / 2**30)
        self.mem_peak_gib = max(self.mem_peak_gib, values["mem_peak_gib"])
        mfu = self.mfu(values["samples_per_s"])
        return values if mfu is None else {**values, "mfu": mfu}

    def diagnostics(self) -> dict[str, float]:
        """The epoch's diagnostics: GPU memory (on CUDA) and other processes' CPU share (rank 0)."""
        return {**self.gpu_memory(), **self.contention()}

    def mfu(self, samples_per_s: float) -> float | None:
        """Model FLOPs over the peak; None where unknown or above 1 (then a warning, once a run)."""
        if not (self.flops_per_sample and self.peak_flops):
            return None
        model_flops = self.flops_per_sample * samples_per_s
        if model_flops <= self.peak_flops:
            return model_flops / self.peak_flops
        if self.rank == 0 and not self._peak_warned:
            # Not logged: a utilisation above 1 says the peak was not an upper bound (a probe
            # where no theoretical peak is known, or a clock boosted past the one read).
            self._peak_warned = True  # once a run: the peak is the same for every epoch
            log.warning(
                "mfu not logged: this epoch's model FLOPs (%.0f GFLOP/s) exceed the peak it divides "
                "by (%.0f GFLOP/s, the run's param peak_source); `python -m benchmarks perf peak` "
                "shows the machine's peaks",
                model_flops / 1e9,
                self.peak_flops / 1e9,
            )
        return None

    def contention(self) -> dict[str, float]:
        """Other processes' share of the machine's CPU since the last reading (rank 0), as a diagnostic."""
        others = self._others.share() if self._others is not None else None
        if others is None:
            return {}
        self.others_cpu_max = max(self.others_cpu_max, others)
        return {"others_cpu_frac": others}

    def gpu_memory(self) -> dict[str, float]:
        """On CUDA: the epoch's peak of allocated memory and what the caching allocator holds, GiB
        (a run whose memory grows shows it epoch by epoch); then a fresh peak for the next epoch."""
        if self.device.type != "cuda":
            return {}
        memory = dict(
            gpu_mem_peak_gib=torch.cuda.max_memory_allocated(self.device) / 2**30,
            gpu_mem_reserved_gib=torch.cuda.memory_reserved(self.device) / 2**30,
        )
        torch.cuda.reset_peak_memory_stats(self.device)
        return memory

    def end_of_run(self) -> dict[str, object]:
        """The job's values of these metrics for its RunResult."""
        return dict(
            mem_peak_gib=self.mem_peak_gib or None,
            others_cpu_max=round(self.others_cpu_max, 4),
            contended=self.others_cpu_max > CONTENDED_SHARE,
        )
