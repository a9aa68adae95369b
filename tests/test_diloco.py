"""`diloco`: the outer step against Algorithm 1 of Douillard et al. (2023) written out by hand, and
two processes whose replicas start every round from the same outer parameters."""

import json

import pytest
import torch
from mlflow.tracking import MlflowClient
from torch import nn

from datasets.synthetic import SMOKE_TRAIN
from methods.diloco import DilocoConfig, OuterStep

from .conftest import run_cli
from .test_local_sgd import smoke2


def test_the_outer_step_is_nesterov_sgd_on_the_mean_pseudo_gradient():
    """One process, H = 3, SGD inside: θ_i takes 3 inner steps; Δ = θ − θ_i; the outer momentum
    buffer v ← μ v + Δ; θ ← θ − lr (Δ + μ v) (torch's Nesterov form); θ_i ← θ. Two rounds."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    inputs, targets = torch.randn(8, 4), torch.randint(0, 3, (8,))
    settings = DilocoConfig(inner_steps=3, outer_lr=0.7, outer_momentum=0.9)
    optimizer = OuterStep(torch.optim.SGD(model.parameters(), lr=0.1), model, settings, world=1)

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


@pytest.mark.parametrize(
    "key, value, needle",
    [("inner_steps", "0", "inner_steps must be >= 1"), ("outer_momentum", "1", "must be in [0, 1)")],
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
