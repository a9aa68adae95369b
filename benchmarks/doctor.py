"""`doctor`: what this machine offers and whether the suite works on it, in one table.

Each check says what it found and, where it failed, the fix. Needed pieces (Python, torch, a
process-group backend, the store, CIFAR-10 for the default workload, a short async_lu run) decide
the exit code; the rest (other datasets, GPUs) is information. `--gpu` runs the GPU acceptance
(docs/performance.md, "On a GPU") where CUDA is available.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import shutil
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import AccessRefused, DataMissingError, ServerAway, StorageError, UserError

GiB = 2**30


@dataclass
class Check:
    """One line of the table: what was checked, what was found, whether it works, and the fix."""

    name: str
    found: str
    ok: bool | None = True  # None: information, never a failure
    fix: str = ""
    needed: bool = True


def timed(check) -> tuple[Check, float]:
    """(the check's result, seconds it took)."""
    started = time.perf_counter()
    result = check()
    return result, time.perf_counter() - started


def check_python() -> Check:
    version = platform.python_version()
    ok = sys.version_info[:2] == (3, 11)
    return Check("python", version, ok, "" if ok else "use Python 3.11 (make PYTHON=/path/to/python3.11)")


def check_torch() -> Check:
    import torch

    cuda = f", CUDA build {torch.version.cuda}" if torch.version.cuda else ", CPU build"
    return Check("torch", f"{torch.__version__}{cuda}")


def check_devices() -> Check:
    import torch

    cores = os.cpu_count() or 1
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return Check(
            "devices", f"{cores} CPU cores; {len(names)} GPU(s): {', '.join(names)}", None, needed=False
        )
    return Check("devices", f"{cores} CPU cores; no GPU (CUDA not available)", None, needed=False)


def check_backends() -> Check:
    import torch
    import torch.distributed as dist

    gloo = dist.is_available() and dist.is_gloo_available()
    nccl = dist.is_available() and dist.is_nccl_available() and torch.cuda.is_available()
    found = f"gloo {'yes' if gloo else 'no'}, NCCL {'yes' if nccl else 'no (needs CUDA)'}"
    return Check("process groups", found, gloo, "" if gloo else "a torch build with torch.distributed (gloo)")


def check_memory(paths: dict[str, Path]) -> Check:
    available = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024 / GiB
    except OSError:
        pass
    disks = []
    for label, path in paths.items():
        existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
        disks.append(f"{label} {shutil.disk_usage(existing).free / GiB:.0f} GiB free")
    low = available and available < 4
    return Check(
        "memory, disk",
        f"{available:.1f} GiB memory available; " + ", ".join(disks),
        None if not low else False,
        "free memory: the quick profile needs about 4 GiB" if low else "",
        needed=False,
    )


def check_datasets(data_dir: Path) -> list[Check]:
    """Each dataset found (loaded once: caches are built here) or how to get it; CIFAR-10 is needed."""
    from datasets import DATASETS
    from datasets.registry import looking_only

    with looking_only():  # look, do not fetch: `run` downloads where the network allows
        return [check_dataset(name, data_dir) for name in DATASETS if name != "synthetic"]


def check_dataset(name: str, data_dir: Path) -> Check:
    """One dataset loaded (its cache built on the first look) or why not."""
    from datasets import load_dataset

    started = time.perf_counter()
    try:
        dataset = load_dataset(name, data_dir)
    except DataMissingError as err:
        return Check(f"data: {name}", "not found", False, str(err), needed=name == "cifar10")
    seconds = time.perf_counter() - started
    contents = getattr(dataset, "contents", f"{dataset.num_train} train, {dataset.num_test} test")
    found = f"{contents} ({seconds:.0f} s)"
    return Check(f"data: {name}", found, True, needed=name == "cifar10")


def check_store(uri: str | None) -> Check:
    from .engine.tracking import Tracker

    try:
        tracker = Tracker(uri)
    except AccessRefused as err:
        return Check("MLflow store", "refused this user", False, str(err))
    except (StorageError, UserError) as err:
        fix = server_fix(uri, err) if isinstance(err, ServerAway) else str(err)
        return Check("MLflow store", "cannot be used", False, fix)
    if tracker.remote:
        return check_server(tracker)
    return Check("MLflow store", f"{tracker.uri} (writable)")


def server_fix(uri: str, err: Exception) -> str:
    """The fix of a tracking server that does not answer: how to start one, then the error."""
    return f"start it: python -m benchmarks server (then --tracking-uri {uri}); {err}"


def check_server(tracker) -> Check:
    """A tracking server: its MLflow version (GET /version), and a write (a tag on the Default
    experiment: nothing left behind but the time of the check)."""
    import urllib.request

    from mlflow.exceptions import MlflowException

    from .engine.store import access_refused

    request = urllib.request.Request(f"{tracker.uri.rstrip('/')}/version", headers=basic_auth_header())
    try:
        with urllib.request.urlopen(request, timeout=5, context=tls_context()) as reply:
            version = reply.read().decode().strip()
        default = tracker.client.get_experiment_by_name("Default")
        if default is None:
            raise StorageError("the server's store has no Default experiment to write a tag on")
        tracker.client.set_experiment_tag(
            default.experiment_id, "doctor_wrote_at", time.strftime("%Y-%m-%dT%H:%M:%S")
        )
    except (OSError, MlflowException, StorageError) as err:
        if refused := access_refused(err, tracker.uri):
            return Check("MLflow store", f"{tracker.uri}: not writable by this user", False, refused)
        return Check(
            "MLflow store", f"{tracker.uri}: unreachable or not writable", False, server_fix(tracker.uri, err)
        )
    return Check("MLflow store", f"{tracker.uri} (MLflow server {version}, writable)")


def tls_context() -> ssl.SSLContext:
    """How an HTTPS server's certificate is checked, as MLflow's client checks it: against
    MLFLOW_TRACKING_SERVER_CERT_PATH where set (a self-signed one), else the system's authorities;
    not at all under MLFLOW_TRACKING_INSECURE_TLS=true."""
    context = ssl.create_default_context(cafile=os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def basic_auth_header() -> dict[str, str]:
    """The Authorization header MLflow's client sends from MLFLOW_TRACKING_USERNAME/PASSWORD."""
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not (user and password):
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def check_spools() -> Check:
    """Runs this host logged while their server was away, waiting to be sent (`sync`)."""
    from .engine.spool import spool_dir, waiting_spools

    waiting = waiting_spools()
    if not waiting:
        return Check("spools", f"none waiting in {spool_dir()}", None, needed=False)
    fix = "python -m benchmarks sync (once the server answers; the next command on its store also sends them)"
    return Check("spools", f"{len(waiting)} run(s) waiting in {spool_dir()}", False, fix, needed=False)


def check_peak() -> Check:
    """The peak MFU divides by (theoretical where known) and the GEMM probe beside it (cached, with
    its date, else measured now)."""
    from .engine.mfu import peak_flops, probe_entry, theoretical_peak
    from .engine.rank import resolve_device

    device = resolve_device("auto")
    cached = probe_entry(device)
    if cached:
        probe = f"{cached['flops'] / 1e9:.0f} GFLOP/s (measured {cached.get('measured', '?')})"
    else:
        probe = f"{peak_flops(device) / 1e9:.0f} GFLOP/s (measured now)"
    theoretical = theoretical_peak(device)
    peak = (
        f"{theoretical[0] / 1e9:.0f} GFLOP/s, {theoretical[1]}"
        if theoretical
        else "none known: MFU uses the probe"
    )
    return Check("float32 peak (MFU)", f"{peak}; GEMM probe {probe}", None, needed=False)


def check_beta() -> Check:
    """β (backward / forward) of the quick ResNet-18, measured in seconds on the default device."""
    from core.config import TrainConfig
    from methods.timing import TimingConfig

    from .engine.build import build_job
    from .engine.runner import run_job
    from .engine.tracking import NullTracker

    job = build_job(
        "doctor", "cifar10", "resnet18", "fwd_bwd_timing", "quick",
        config=TrainConfig(batch_size=128, width=0.25, max_epochs=10**6),
        method_config=TimingConfig(batches=10, warmup=2), synthetic=True,
    )  # fmt: skip
    measured = run_job(job, None, NullTracker(), progress=False).measured
    found = (
        f"{measured['beta']:.2f} (forward {measured['forward_s'] * 1e3:.1f} ms, backward "
        f"{measured['backward_s'] * 1e3:.1f} ms per batch of 128, ResNet-18 width 0.25)"
    )
    return Check("β of the default model", found, None, needed=False)


def check_async(device_kind: str) -> Check:
    """A short async_lu run (one smoke epoch: 16 steps of 1 forward and 2 backward threads)."""
    from .engine.build import build_job
    from .engine.runner import run_job
    from .engine.tracking import NullTracker

    job = build_job(
        "doctor", "cifar10", "resnet18", "async_lu", "smoke", settings={"device": device_kind}, epochs=1
    )
    try:
        result = run_job(job, None, NullTracker(), progress=False)
    except Exception as err:  # noqa: BLE001  (reported as the check's failure, with its message)
        return Check(f"async_lu on {device_kind}", "failed", False, f"{type(err).__name__}: {err}")
    ok = result.status == "finished"
    found = f"{result.status}, {result.samples_per_s:.0f} samples/s"
    return Check(f"async_lu on {device_kind}", found, ok, "" if ok else f"the run ended {result.status}")


def run_checks(data_dir: Path, uri: str | None) -> list[tuple[Check, float]]:
    """Every check of `doctor`, in the table's order, each with its seconds."""
    import torch

    from .engine.store import PROJECT_ROOT

    checks = [check_python, check_torch, check_devices, check_backends]
    checks.append(lambda: check_memory({"data": data_dir, "results": PROJECT_ROOT / "results"}))
    results = [timed(check) for check in checks]
    started = time.perf_counter()
    for dataset_check in check_datasets(data_dir):
        results.append((dataset_check, 0.0))
    results[-1] = (results[-1][0], time.perf_counter() - started)
    results += [timed(lambda: check_store(uri)), timed(check_spools), timed(check_peak), timed(check_beta)]
    kinds = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    results += [timed(lambda kind=kind: check_async(kind)) for kind in kinds]
    return results


def table(results: list[tuple[Check, float]]) -> str:
    """The checks as a Markdown table."""
    lines = ["| check | found | works | fix |", "| --- | --- | --- | --- |"]
    for check, _ in results:
        works = "–" if check.ok is None else ("yes" if check.ok else "NO" if check.needed else "no")
        lines.append(f"| {check.name} | {check.found} | {works} | {check.fix.replace('|', '/')} |")
    return "\n".join(lines)


def doctor(data_dir: Path, uri: str | None) -> int:
    """Print the table; 0 when every needed piece works, 1 otherwise."""
    started = time.perf_counter()
    results = run_checks(data_dir, uri)
    print(table(results))
    failed = [c for c, _ in results if c.needed and c.ok is False]
    print(f"\n{len(results)} checks in {time.perf_counter() - started:.0f} s: ", end="")
    print("the suite works here." if not failed else f"{len(failed)} needed piece(s) missing: see the fixes.")
    return 1 if failed else 0


# --- doctor --gpu: the GPU acceptance in one command -------------------------------------------------
GPU_STEPS = [
    ("tests on CUDA", [sys.executable, "-m", "pytest", "-rs", "-q", "-p", "no:cacheprovider", "tests"]),
    ("perf async", [sys.executable, "-m", "benchmarks", "perf", "async", "--json"]),
    ("perf overhead", [sys.executable, "-m", "benchmarks", "perf", "overhead", "--json"]),
    (
        "async_lu memory over 40 epochs",
        [
            sys.executable,
            "-m",
            "benchmarks",
            "train",
            "--method",
            "async_lu",
            "--profile",
            "smoke",
            "--epochs",
            "40",
            "--set",
            "patience=40",
            "--set",
            "time_budget_s=0",
            "--json",
        ],
    ),  # fmt: skip
    (
        "--devices 2 on one GPU",
        [sys.executable, "-m", "benchmarks", "train", "--method", "ddp", "--devices", "2"],
    ),
]


def doctor_gpu(out_dir: Path, uri: str | None, budget_s: float = 900.0) -> int:
    """Every GPU acceptance item (docs/performance.md, "On a GPU") in one command, within 15 minutes:
    a table printed and written as JSON and Markdown. Exit 2 without CUDA."""
    import torch

    if not torch.cuda.is_available():
        raise UserError("doctor --gpu needs CUDA, which this machine does not have (`doctor` checks the CPU)")
    env = {**os.environ, **({"MLFLOW_TRACKING_URI": uri} if uri else {})}
    rows, started = [], time.monotonic()
    for name, command in GPU_STEPS:
        left = budget_s - (time.monotonic() - started)
        if left <= 0:
            rows.append(dict(item=name, result="not run: the 15 minutes were used", code=None))
            continue
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=left, env=env)
            tail = (proc.stdout.strip().splitlines() or [""])[-1][:500]
            rows.append(dict(item=name, result=tail, code=proc.returncode))
        except subprocess.TimeoutExpired:
            rows.append(dict(item=name, result="timed out", code=None))
    expected = {"--devices 2 on one GPU": 2}  # must be refused with exit 2 on a 1-GPU machine
    lines = [f"# doctor --gpu: {torch.cuda.get_device_name(0)}, {time.strftime('%Y-%m-%d')}", ""]
    lines += ["| item | exit | as expected | last line |", "| --- | --- | --- | --- |"]
    for row in rows:
        want = expected.get(row["item"], 0)
        if row["item"] == "--devices 2 on one GPU" and torch.cuda.device_count() > 1:
            want = 0
        row["as_expected"] = row["code"] == want
        lines.append(
            f"| {row['item']} | {row['code']} | {row['as_expected']} | {row['result'].replace('|', '/')} |"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "doctor-gpu.md").write_text("\n".join(lines) + "\n")
    (out_dir / "doctor-gpu.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))
    return 0 if all(r["as_expected"] for r in rows) else 1
