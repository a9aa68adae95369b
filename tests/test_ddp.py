"""`ddp`: identical replicas, one step = backprop on the concatenated batch, torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mlflow.tracking import MlflowClient
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from benchmarks.engine.distributed import free_port

from .conftest import ON_CPU, ROOT, run_cli


def test_ddp_replicas_stay_bit_identical(store):
    proc = run_cli(
        "train", "--method", "ddp", "--devices", "2", "--profile", "smoke", "--json", "--tracking-uri", store,
        *ON_CPU,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    drift = MlflowClient(tracking_uri=store).get_metric_history(result["run_id"], "system/replica_drift")
    assert [m.step for m in drift] == [0, 1] and all(m.value == 0.0 for m in drift)


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))  # no BatchNorm


def full_batch():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(16, 20, generator=gen), torch.randint(0, 5, (16,), generator=gen)


def _one_ddp_step(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model = DistributedDataParallel(small_model())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, y = full_batch()
    half = slice(rank * 8, rank * 8 + 8)
    nn.functional.cross_entropy(model(x[half]), y[half]).backward()
    optimizer.step()
    if rank == 0:
        torch.save([p.detach() for p in model.module.parameters()], out)
    dist.destroy_process_group()


# PyTorch's DDP alone, no code of the suite's: the property its `ddp` baseline relies on (gradients
# averaged, so one step is bp's on the whole batch), checked with -m slow.
@pytest.mark.slow
def test_one_ddp_step_equals_backprop_on_the_whole_batch(tmp_path):
    out = str(tmp_path / "ddp.pt")
    mp.start_processes(_one_ddp_step, args=(free_port(), out), nprocs=2, start_method="spawn")
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, y = full_batch()
    nn.functional.cross_entropy(model(x), y).backward()  # the mean over 16 = the mean of two means over 8
    optimizer.step()
    for ours, theirs in zip(torch.load(out), model.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
@pytest.mark.ci
def test_ddp_under_torchrun(store):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    proc = subprocess.run(
        [
            torchrun,
            "--nproc-per-node",
            "2",
            "-m",
            "benchmarks",
            "train",
            "--method",
            "ddp",
            "--profile",
            "smoke",
            "--json",
            "--tracking-uri",
            store,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1 and results[0]["status"] == "finished"  # rank 0 alone reports and logs
    run = MlflowClient(tracking_uri=store).get_run(results[0]["run_id"])
    assert run.data.tags["devices"] == "2" and run.data.tags["method"] == "ddp"


def test_the_rendezvous_listens_on_loopback_only():
    """Spawned ranks' store: only 127.0.0.1 may connect (TCPStore's own server takes every interface)."""
    from benchmarks.engine.distributed import loopback_store

    port = free_port()
    store = loopback_store(0, 1, port)
    store.set("ready", "1")
    listening = [
        line.split()[1]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for line in Path(table).read_text().splitlines()[1:]
        if line.split()[3] == "0A"  # LISTEN
    ]
    assert [address for address in listening if int(address.rsplit(":", 1)[1], 16) == port] == [
        f"0100007F:{port:04X}"  # 127.0.0.1, in /proc's byte order
    ]
