"""Model FLOPs utilisation (004 reports 53.8 % for PD-ASGD, 35.1 % for DDP).

MFU = FLOPs per sample (forward + backward, counted) x samples/s / the hardware's peak FLOP/s.
- FLOPs per sample: `torch.utils.flop_counter.FlopCounterMode` over one forward and backward of the
  model built on the meta device (no memory, no compute), for a batch of the dataset's input shape;
  the optimiser's arithmetic is not model FLOPs and is not counted (the usual MFU definition).
  Token models are counted at the training set's mean review length: length-bucketed batches pad
  little, so that is about the length the LSTM runs over. A language model's sample is a token
  (its meters count positions): one window's FLOPs over its length, attention's matmuls included.
- Peak: measured once per machine by a GEMM probe in float32 (the dtype every run uses) on all the
  CPU's cores, or on one GPU with the TF32 setting of the run; both counts are cached on disk
  (`$BENCH_CACHE_DIR`). `perf peak` measures it again and prints it. A GPU's datasheet peak is
  logged beside the measured one where we know it.
A job's peak is one CPU's (its processes share the cores) or one GPU's x its devices.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from core.inputs import InputSpec
from datasets.cache import cache_dir
from models import build_model

log = logging.getLogger(__name__)

PROBE_SIZE = {"cpu": 2048, "cuda": 8192}  # GEMMs large enough to reach the peak, small enough for seconds
PROBE_REPS = 5
# ... and products for at least this long: a shared machine's speed swings within seconds (2-core
# CPU, 2026-11-24: 127-193 GFLOP/s over 15 products, ~2 s), and a probe that fell in a slow second
# put a run's MFU above 1.
PROBE_S = {"cpu": 3.0, "cuda": 1.0}

# Dense (no sparsity) datasheet peaks, FLOP/s: (float32 without TF32, float32 through TF32 tensor cores).
DATASHEET = {
    "H100 PCIe": (51e12, 378e12),
    "H100": (67e12, 494.7e12),  # SXM
    "H200": (67e12, 494.7e12),
    "A100": (19.5e12, 156e12),
    "L4": (30.3e12, 60e12),
}


def _cache_file(name: str) -> Path:
    return cache_dir() / f"{name}.json"


def _read_cache(name: str) -> dict:
    try:
        return json.loads(_cache_file(name).read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(name: str, key: str, value: dict) -> None:
    """Add one entry to a JSON cache file; a cache that cannot be written only costs a re-count."""
    entries = {**_read_cache(name), key: value}
    path = _cache_file(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError as err:
        log.warning("cannot write %s (%s)", path, err)


def sample_inputs(spec: InputSpec, tokens_per_sample: int, batch: int = 2):
    """A meta-device batch in the dataset's input shape."""
    with torch.device("meta"):
        if spec.image_size:
            return torch.zeros(batch, 3, spec.image_size, spec.image_size)
        if spec.context:
            return torch.zeros(batch, spec.context, dtype=torch.long)
        tokens = torch.zeros(batch, tokens_per_sample, dtype=torch.long)
        return tokens, torch.full((batch,), tokens_per_sample)


def tokens_per_sample(dataset) -> int:
    """The mean training length of a token dataset (0 for images)."""
    lengths = getattr(dataset, "train_len", None)
    return max(1, round(float(lengths.float().mean()))) if lengths is not None else 0


def flops_per_sample(
    model_name: str, spec: InputSpec, width: float, tokens: int = 0, depth: int = 0
) -> float:
    """Forward + backward FLOPs of one sample (a language model's: one token), counted once per
    (model, width, depth, input shape) and cached."""
    key = f"{model_name}|{width}|{spec.num_classes}|{spec.image_size}|{spec.vocab_size}|{tokens}"
    if spec.context or depth:
        key += f"|{spec.context}|{depth}"
    cached = _read_cache("flops").get(key)
    if cached:
        return float(cached["flops_per_sample"])
    batch = 2
    with torch.device("meta"):
        model = build_model(model_name, spec, width, depth)
    inputs = sample_inputs(spec, tokens, batch)
    samples = batch * (spec.context or 1)  # a language model's targets: every position of its windows
    targets = torch.zeros(samples, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(inputs), targets).backward()
    flops = counter.get_total_flops() / samples
    _write_cache("flops", key, {"flops_per_sample": flops})
    return flops


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name, for caches and logs."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _tf32(device: torch.device) -> bool:
    return device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32


def _probe_key(device: torch.device) -> str:
    threads = os.cpu_count() if device.type == "cpu" else 0
    return f"{platform.node()}|{device_name(device)}|float32|tf32={_tf32(device)}|cpu_threads={threads}"


def measure_peak(device: torch.device) -> float:
    """The best GEMM rate of float32 multiplications (at least PROBE_REPS, for at least PROBE_S
    seconds), FLOP/s (all cores on a CPU)."""
    n = PROBE_SIZE[device.type]
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    try:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        best, rep, probe_start = float("inf"), 0, time.perf_counter()
        while rep < PROBE_REPS + 2 or time.perf_counter() - probe_start < PROBE_S[device.type]:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            torch.mm(a, b)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if rep >= 2:  # two warm-ups
                best = min(best, time.perf_counter() - start)
            rep += 1
    finally:
        torch.set_num_threads(threads)
    return 2 * n**3 / best


def store_peak(device: torch.device, flops: float) -> None:
    """Cache `flops` as this machine's peak for `device`'s kind."""
    entry = {"flops": flops, "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    _write_cache("peak_flops", _probe_key(device), entry)


def peak_flops(device: torch.device) -> float:
    """This machine's measured float32 peak for `device`'s kind (one GPU, or the whole CPU), cached."""
    cached = _read_cache("peak_flops").get(_probe_key(device))
    if cached:
        return float(cached["flops"])
    flops = measure_peak(device)
    store_peak(device, flops)
    return flops


def datasheet_peak(device: torch.device) -> float | None:
    """The GPU's datasheet float32 peak (through TF32 where the run allows it), where we know it."""
    if device.type != "cuda":
        return None
    name = device_name(device)
    for model, (fp32, tf32) in DATASHEET.items():  # "H100 PCIe" is tried before "H100"
        if model in name:
            return tf32 if _tf32(device) else fp32
    return None


def job_peak(device: torch.device, devices: int) -> float:
    """The peak of the hardware a job runs on: the whole CPU, or one GPU's x the GPUs."""
    return peak_flops(device) * (devices if device.type == "cuda" else 1)
