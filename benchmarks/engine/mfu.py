"""Model FLOPs utilisation (004 reports 53.8 % for PD-ASGD, 35.1 % for DDP).

MFU = FLOPs per sample (forward + backward, counted) x samples/s / the hardware's peak FLOP/s.
- FLOPs per sample: `torch.utils.flop_counter.FlopCounterMode` over one forward and backward of the
  model built on the meta device (no memory, no compute), for a batch of the dataset's input shape;
  the optimiser's arithmetic is not model FLOPs and is not counted (the usual MFU definition).
  Token models are counted at the training set's mean review length: length-bucketed batches pad
  little, so that is about the length the LSTM runs over. A language model's sample is a token
  (its meters count positions): one window's FLOPs over its length, attention's matmuls included.
- Peak: the hardware's theoretical float32 peak, an upper bound (MFU's usual denominator): a CPU's
  cores x the FLOPs per cycle its vector units can issue (two FMA pipes of the widest vector its
  flags name) x its clock; a GPU's datasheet peak (through TF32 where the run allows it). Beside it,
  and the denominator only where no theoretical peak is known (another architecture, an unknown
  GPU), a GEMM probe in float32 measured on all the CPU's cores or one GPU, cached on disk
  (`$BENCH_CACHE_DIR`) with when and under what load it ran, measured again when stale; `perf peak`
  measures it again and prints both.
A job's peak is one CPU's (its processes share the cores) or one GPU's x its devices.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from core.inputs import InputSpec
from core.runtime.processes import usable_cores
from datasets.cache import keep_entry, read_entries
from models import build_model

log = logging.getLogger(__name__)

PROBE_SIZE = {"cpu": 2048, "cuda": 8192}  # GEMMs large enough to reach the peak, small enough for seconds
PROBE_REPS = 5
# ... and products for at least this long: a shared machine's speed swings within seconds, and a
# probe that fell in a slow second put a run's MFU above 1 (docs/performance.md, "Constants").
PROBE_S = {"cpu": 3.0, "cuda": 1.0}

# Dense (no sparsity) datasheet peaks, FLOP/s: (float32 without TF32, float32 through TF32 tensor cores).
DATASHEET = {
    "H100 PCIe": (51e12, 378e12),
    "H100": (67e12, 494.7e12),  # SXM
    "H200": (67e12, 494.7e12),
    "A100": (19.5e12, 156e12),
    "L4": (30.3e12, 60e12),
}


# Float32 FLOPs per cycle and core that a CPU with these flags can issue at most: two FMA pipes of
# the widest vector (an FMA is 2 FLOPs per lane). AVX-512: 16 lanes; AVX2 with FMA: 8; AVX alone:
# 8 lanes through a multiply and an add pipe; SSE2: 4; Arm's NEON (`asimd`): 4 lanes, up to 4 pipes.
FLOPS_PER_CYCLE = (("avx512f", 64), ("fma", 32), ("avx", 16), ("asimd", 32), ("sse2", 8))
PROBE_MAX_AGE_S = 7 * 24 * 3600  # a cached probe older than this is measured again
PROBE_BUSY_LOAD = 0.5  # ... as is one taken while other work loaded over half the cores, when it is quieter


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
    cached = read_entries("flops").get(key)
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
    keep_entry("flops", key, {"flops_per_sample": flops})
    return flops


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name, for caches and logs."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_info().get("model name") or platform.processor() or platform.machine()


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
    """Cache `flops` as this machine's probed peak for `device`'s kind, with when and the load then."""
    entry = {
        "flops": flops,
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        "measured_s": time.time(),
        "load": os.getloadavg()[0],
    }
    keep_entry("peak_flops", _probe_key(device), entry)


def peak_flops(device: torch.device) -> float:
    """This machine's measured float32 GEMM peak for `device`'s kind (one GPU, or the whole CPU),
    cached; measured again when the cached probe is stale (older than PROBE_MAX_AGE_S, or taken under
    load while the machine is quieter now)."""
    cached = read_entries("peak_flops").get(_probe_key(device))
    if cached and not _stale(cached):
        return float(cached["flops"])
    flops = measure_peak(device)
    if cached:  # a busy machine measures low, never high: keep the better of the two
        flops = max(flops, float(cached["flops"]))
    store_peak(device, flops)
    return flops


def probe_entry(device: torch.device) -> dict:
    """The cached probe's entry (flops, when measured, the load then), {} where there is none."""
    return read_entries("peak_flops").get(_probe_key(device), {})


def _stale(entry: dict) -> bool:
    measured = entry.get("measured_s")
    if measured is None or time.time() - float(measured) > PROBE_MAX_AGE_S:
        return True
    cores = os.cpu_count() or 1
    busy_then = float(entry.get("load", 0.0)) > PROBE_BUSY_LOAD * cores
    return busy_then and os.getloadavg()[0] < float(entry["load"]) / 2


def _cpu_info() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_clock_hz() -> tuple[float, str] | None:
    """(the CPU's highest clock, where it was read), or None."""
    try:
        khz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
        return khz * 1e3, "cpufreq's maximum"
    except (OSError, ValueError):
        pass
    try:
        mhz = [
            float(line.split(":", 1)[1])
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("cpu MHz")
        ]
    except (OSError, ValueError):
        mhz = []
    if mhz:  # a VM's (no cpufreq): the nominal clock; a boost above it is not counted
        return max(mhz) * 1e6, "the clock /proc/cpuinfo shows; without cpufreq a boost above it is uncounted"
    return None


def cpu_peak() -> tuple[float, str] | None:
    """(the theoretical float32 peak of the cores this process may use, how it was derived), or
    None where the CPU's vector units or clock are unknown."""
    info = _cpu_info()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    widest = next(((flag, n) for flag, n in FLOPS_PER_CYCLE if flag in flags), None)
    clock = cpu_clock_hz()
    if widest is None or clock is None:
        return None
    flag, per_cycle = widest
    cores = usable_cores()
    text = f"theoretical: {cores} cores x {per_cycle} FLOP/cycle ({flag}) x {clock[0] / 1e9:.2f} GHz"
    text += f"; {clock[1]}"
    return cores * per_cycle * clock[0], text


def datasheet_peak(device: torch.device) -> float | None:
    """The GPU's datasheet float32 peak (through TF32 where the run allows it), where we know it."""
    if device.type != "cuda":
        return None
    name = device_name(device)
    for model, (fp32, tf32) in DATASHEET.items():  # "H100 PCIe" is tried before "H100"
        if model in name:
            return tf32 if _tf32(device) else fp32
    return None


def theoretical_peak(device: torch.device, devices: int = 1) -> tuple[float, str] | None:
    """(the job's theoretical peak, its source): the CPU's (cpu_peak), or the GPU's datasheet x the
    GPUs; None where it is not known."""
    if device.type == "cuda":
        datasheet = datasheet_peak(device)
        if datasheet is None:
            return None
        return datasheet * devices, f"datasheet: {device_name(device)} x {devices}"
    return cpu_peak()


def job_peak(device: torch.device, devices: int) -> tuple[float, str]:
    """(the peak a job's MFU divides by, its source): the theoretical peak where known, else the
    measured GEMM probe (one CPU, or one GPU's x the GPUs)."""
    theoretical = theoretical_peak(device, devices)
    if theoretical is not None:
        return theoretical
    gpus = f" x {devices}" if device.type == "cuda" else ""
    probe = peak_flops(device) * (devices if device.type == "cuda" else 1)
    return probe, f"float32 GEMM probe, {device_name(device)}{gpus} (no theoretical peak known)"
