"""`diloco`: the outer step against Algorithm 1 of Douillard et al. (2023) written out by hand, on
one process and on three (where a sum of the pseudo-gradients would pass for their mean on one),
and two processes whose replicas start every round from the same outer parameters."""

import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mlflow.tracking import MlflowClient
from torch import nn

from benchmarks.engine.distributed import free_port
from core.runtime.wire import Wire
from datasets.synthetic import SMOKE_TRAIN
from methods.diloco import DilocoConfig, OuterStep, inner_steps_for

from .conftest import run_cli
from .test_local_sgd import smoke2


def test_the_outer_step_is_nesterov_sgd_on_the_mean_pseudo_gradient():
    """One process, H = 3, SGD inside: θ_i takes 3 inner steps; Δ = θ − θ_i; the outer momentum
    buffer v ← μ v + Δ; θ ← θ − lr (Δ + μ v) (torch's Nesterov form); θ_i ← θ. Two rounds."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    inputs, targets = torch.randn(8, 4), torch.randint(0, 3, (8,))
    settings = DilocoConfig(inner_steps=3, outer_lr=0.7, outer_momentum=0.9)
    optimizer = OuterStep(torch.optim.SGD(model.parameters(), lr=0.1), model, settings, world=1, every=3)

    theta = [p.detach().clone() for p in model.parameters()]  # the hand loop's outer parameters
    replica = [p.detach().clone().requires_grad_() for p in model.parameters()]
    velocity = [torch.zeros_like(p) for p in theta]
    for _ in range(2):
        for _ in range(3):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
            loss = nn.functional.cross_entropy(nn.functional.linear(inputs, *replica), targets)
            grads = torch.autograd.grad(loss, replica)
            with torch.no_grad():
                for r, g in zip(replica, grads, strict=True):
                    r -= 0.1 * g
        with torch.no_grad():
            for t, r, v in zip(theta, replica, velocity, strict=True):
                delta = t - r
                v.mul_(0.9).add_(delta)
                t -= 0.7 * (delta + 0.9 * v)
                r.copy_(t)
        for p, t in zip(model.parameters(), theta, strict=True):
            torch.testing.assert_close(p.detach(), t)
    assert optimizer.rounds == 2 and optimizer.steps == 6


def _three_replicas(rank: int, world: int, port: int) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    data = []  # each rank's own batch; every rank knows them all, to run the whole network by hand
    for r in range(world):
        gen = torch.Generator().manual_seed(r)
        data.append((torch.randn(8, 4, generator=gen), torch.randint(0, 3, (8,), generator=gen)))
    settings = DilocoConfig(inner_steps=3, outer_lr=0.7, outer_momentum=0.9)
    wire = Wire(None, rank, world, torch.device("cpu"))
    inner = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer = OuterStep(inner, model, settings, world=world, every=3, wire=wire)
    theta = [p.detach().clone() for p in model.parameters()]
    replicas = [[t.clone() for t in theta] for _ in range(world)]
    velocity = [torch.zeros_like(t) for t in theta]
    for _ in range(2):
        for _ in range(3):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(data[rank][0]), data[rank][1]).backward()
            optimizer.step()
            for replica, (inputs, targets) in zip(replicas, data, strict=True):
                weights = [w.requires_grad_() for w in replica]
                loss = nn.functional.cross_entropy(nn.functional.linear(inputs, *weights), targets)
                with torch.no_grad():
                    for w, g in zip(weights, torch.autograd.grad(loss, weights), strict=True):
                        w -= 0.1 * g
        with torch.no_grad():  # Algorithm 1: Δ = (1/N) Σ_i (θ − θ_i); Nesterov; every θ_i ← θ
            for k, (t, v) in enumerate(zip(theta, velocity, strict=True)):
                delta = sum(t - replica[k] for replica in replicas) / world
                v.mul_(0.9).add_(delta)
                t -= 0.7 * (delta + 0.9 * v)
            replicas = [[t.clone() for t in theta] for _ in range(world)]
        for p, t in zip(model.parameters(), theta, strict=True):
            torch.testing.assert_close(p.detach(), t)
    metrics = wire.epoch_metrics(batches=6)
    assert optimizer.rounds == 2 and metrics["wire_mib"] > 0
    dist.destroy_process_group()


@pytest.mark.ci
@pytest.mark.slow  # ~5 s: 3 processes
def test_on_three_processes_the_outer_step_uses_the_mean_of_the_replicas_pseudo_gradients():
    """3 ranks, each its own batch, H = 3, two rounds: every rank's θ is Algorithm 1's, computed by
    hand from all three replicas (a sum of the pseudo-gradients, or one rank's alone, would not be)."""
    mp.start_processes(_three_replicas, args=(3, free_port()), nprocs=3, start_method="spawn")


def test_the_evaluated_model_is_theta_with_the_tail_merged_and_training_goes_on_unchanged():
    """H = 3, 5 inner steps: one outer step, then a tail of 2. The evaluated copy holds θ after an
    outer step on the tail (v' = μ v + Δ; θ' = θ − lr (Δ + μ v')); the replica, θ, the momentum and
    the next outer step are as if nothing had been evaluated. With no tail, the copy is θ."""
    torch.manual_seed(0)
    model, copy_ = nn.Linear(4, 3), nn.Linear(4, 3)
    inputs, targets = torch.randn(8, 4), torch.randint(0, 3, (8,))
    settings = DilocoConfig(inner_steps=3)
    optimizer = OuterStep(torch.optim.SGD(model.parameters(), lr=0.1), model, settings, world=1, every=3)

    def inner_steps(n: int) -> None:
        for _ in range(n):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs), targets).backward()
            optimizer.step()

    inner_steps(3)
    optimizer.merged(copy_)  # no tail: θ itself
    for c, t in zip(copy_.parameters(), optimizer.outer_params, strict=True):
        torch.testing.assert_close(c.detach(), t)
    inner_steps(2)
    replica = [p.detach().clone() for p in model.parameters()]
    theta = [t.clone() for t in optimizer.outer_params]
    velocity = [v.clone() for v in optimizer.velocity]
    optimizer.merged(copy_)
    for c, t, r, v in zip(copy_.parameters(), theta, replica, velocity, strict=True):
        delta = t - r
        merged = t - 0.7 * (delta + 0.9 * (0.9 * v + delta))
        torch.testing.assert_close(c.detach(), merged)
    for p, r in zip(model.parameters(), replica, strict=True):
        torch.testing.assert_close(p.detach(), r)  # the replica trains on from where it was
    for t, t0, v, v0 in zip(optimizer.outer_params, theta, optimizer.velocity, velocity, strict=True):
        assert torch.equal(t, t0) and torch.equal(v, v0)
    assert optimizer.rounds == 1 and optimizer.tail == 2


def test_h_from_the_run_length_gives_at_least_20_outer_steps():
    """inner_steps=0: H = steps // 32, at least 1 and at most the paper's 500: every run of 20 or
    more steps per worker holds at least 20 outer steps (table layup's quick ResNet-18, 1 epoch of
    CIFAR-10 on 3 workers: 130 steps, H = 4, 32 outer steps)."""
    for steps in range(20, 200_000, 7):
        h = inner_steps_for(steps)
        assert 1 <= h <= 500 and (steps // h >= 20 or h == 500)
    assert inner_steps_for(50_000 // (128 * 3)) == 4
    assert inner_steps_for(10**7) == 500


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("inner_steps", "-1", "inner_steps must be >= 0"),
        ("outer_momentum", "1", "must be in [0, 1)"),
        ("eval_on", "mean", "eval_on must be one of outer, replica"),
        ("cpu_denormals", "computed", "cpu_denormals=computed names DiLoCo's runs before 2026-11-28"),
    ],
)
def test_bad_settings_are_one_line(key, value, needle):
    proc = run_cli("train", "--method", "diloco", "--profile", "smoke", "--set", f"{key}={value}")
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


def test_two_processes_start_each_round_from_the_same_parameters(store):
    """Smoke: 8 steps per rank and epoch; H = 4 puts an outer step at each epoch's end, after which
    the replicas are one (drift 0), and each epoch counts two rounds."""
    assert SMOKE_TRAIN // 2 // 64 == 8
    proc = run_cli(*smoke2("diloco", store), "--set", "inner_steps=4")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["epochs"] == 2
    client = MlflowClient(tracking_uri=store)
    drift = [m.value for m in client.get_metric_history(result["run_id"], "system/replica_drift")]
    rounds = [m.value for m in client.get_metric_history(result["run_id"], "system/outer_steps")]
    assert drift == [0.0, 0.0] and rounds == [2.0, 4.0], (drift, rounds)


def test_on_adamw_the_inner_optimiser_is_the_papers_and_clipping_is_refused_where_not_applied():
    """DiLoCo on the GPT (AdamW): β2 0.95, weight decay 0.1, clipping at 1.0 (the paper's and
    OpenDiLoCo's inner AdamW); on the ResNet (SGD) the workload's own; a method whose loop does not
    clip refuses grad_clip in one line."""
    from benchmarks.engine.build import build_job
    from core.errors import UserError

    gpt = build_job("layup", "imdb-lm", "gpt", "diloco", "quick", devices=2).config
    assert (gpt.beta2, gpt.weight_decay, gpt.grad_clip) == (0.95, 0.1, 1.0)
    resnet = build_job("layup", "cifar10", "resnet18", "diloco", "quick", devices=2).config
    assert resnet.grad_clip == 0.0 and resnet.optimizer == "sgd"
    with pytest.raises(UserError, match="grad_clip is applied by bp's loop"):
        build_job("x", "cifar10", "resnet18", "async_lu", "quick", settings={"grad_clip": 1.0})


def test_runs_stored_before_the_change_read_as_their_own_row():
    """A run logged before 2026-11-26 (H = 50, no eval_on: rank 0's replica evaluated; no
    cpu_denormals: its CPU backward on denormal floats) is the row
    diloco[inner_steps=50,eval_on=replica,cpu_denormals=computed], never the default row, whose job
    key differs too; a run of 2026-11-26/27 names only the denormals."""
    from benchmarks.engine.build import build_job
    from core.job import Row

    old = {"inner_steps": "50", "outer_lr": "0.7", "outer_momentum": "0.9"}
    assert (
        Row("diloco").extended(old).label == "diloco[inner_steps=50,eval_on=replica,cpu_denormals=computed]"
    )
    before_flush = {**old, "inner_steps": "0", "eval_on": "outer"}
    assert Row("diloco").extended(before_flush).label == "diloco[cpu_denormals=computed]"
    assert not Row("diloco").extended({**before_flush, "cpu_denormals": "flushed"}).settings
    job = build_job("layup", "cifar10", "resnet18", "diloco", "quick", devices=2)
    assert job.params()["eval_on"] == "outer" and "eval_on" in job.keyed_params()
    assert job.params()["cpu_denormals"] == "flushed" and "cpu_denormals" in job.keyed_params()
