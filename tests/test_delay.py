"""Delay corrections (methods/common/delay.py): each formula against its paper, the settings on
every optimiser, and their wiring into a delayed bp and the async engine."""

import pytest
import torch
from torch import nn

from benchmarks.engine.build import build_job
from benchmarks.engine.runner import run_job
from benchmarks.engine.tracking import NullTracker
from core.config import TrainConfig
from methods.common.delay import DelayCorrections, ExpectedStaleness, pipemare_lr, raised_momentum, tune
from methods.common.optim import make_optimizer
from methods.common.param_updates import ParameterUpdater

from .conftest import run_cli


def test_the_momentum_rises_with_the_staleness_as_in_ajanthan_et_al():
    """Their code: β1 + (versions − 1)(0.99 − β1) / stages, with τ = versions − 1 and N = stages."""
    assert raised_momentum(0.9, 0, 4) == 0.9
    assert raised_momentum(0.9, 1, 4) == pytest.approx(0.9 + 0.09 / 4)
    assert raised_momentum(0.9, 3, 4) == pytest.approx(0.9 + 3 * 0.09 / 4)
    assert raised_momentum(0.9, 10, 4) == pytest.approx(0.99)  # capped at N: never beyond 0.99
    assert raised_momentum(0.0, 2, 2) == pytest.approx(0.99)
    assert raised_momentum(0.995, 3, 4) == 0.995  # a momentum already above the cap is kept


def test_the_learning_rate_is_pipemares_over_its_warm_up():
    """PipeMare's T1: lr / τ^(1 − min(t/K, 1)); no change where τ ≤ 1 or K = 0."""
    assert pipemare_lr(0.01, 4, 0.0, 8) == pytest.approx(0.01 / 4)
    assert pipemare_lr(0.01, 4, 4.0, 8) == pytest.approx(0.01 / 2)  # half way: 4^(1/2)
    assert pipemare_lr(0.01, 4, 8.0, 8) == 0.01 and pipemare_lr(0.01, 4, 20.0, 8) == 0.01
    assert pipemare_lr(0.01, 0.6, 0.0, 8) == 0.01 and pipemare_lr(0.01, 4, 0.0, 0) == 0.01


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "nadamw", "muon"])
def test_tune_sets_each_optimizers_own_momentum_and_learning_rate(optimizer):
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 4)), nn.Linear(4, 2))
    cfg = TrainConfig(optimizer=optimizer, momentum=0.9, beta1=0.8)
    built = make_optimizer(model.parameters(), cfg, [model[0][0].weight])
    tune(built, DelayCorrections(delay_momentum=True, delay_lr_epochs=2), cfg, 0.1, 2.0, 4.0, 1.0)
    for group in built.param_groups:
        assert group["lr"] == pytest.approx(0.1 / 2**0.5)
        if "betas" in group:  # Adam family, Muon's AdamW part: β1 from beta1
            assert group["betas"] == (pytest.approx(0.8 + 0.5 * 0.19), cfg.beta2)
        else:  # SGD, Muon: its momentum
            assert group["momentum"] == pytest.approx(0.9 + 0.5 * 0.09)
    assert {"betas" in g for g in built.param_groups} == {
        "sgd": {False}, "adamw": {True}, "nadamw": {True}, "muon": {True, False}
    }[optimizer]  # fmt: skip


def test_the_expected_staleness_is_a_running_mean_of_the_measured():
    expected = ExpectedStaleness(2)
    assert expected.observe(0, 2.0) == 2.0  # the first measurement starts it
    assert expected.observe(0, 0.0) == pytest.approx(0.99 * 2.0)
    assert expected.values[1] is None


def test_the_engines_updates_are_tuned_by_each_modules_measured_staleness():
    """An update whose tensors were read 3 updates ago: PipeMare's lr from that staleness at its
    point in training, and the momentum raised by it, over N = the in-flight horizon."""
    param = nn.Parameter(torch.zeros(3))
    cfg = TrainConfig(lr=0.1, momentum=0.9, weight_decay=0.0)
    updater = ParameterUpdater([param], cfg)
    updater.corrections, updater.horizon = DelayCorrections(delay_momentum=True, delay_lr_epochs=4), 6.0
    for _ in range(3):
        updater.apply({0: torch.ones(3)}, 0.1, [updater.versions[0]], 0.0)  # fresh: staleness 0
    updater.apply({0: torch.ones(3)}, 0.1, [0], 2.0)  # read before the 3 updates above
    (group,) = updater.optimizers()[0][0].param_groups
    expected = 0.99 * 0.0 + 0.01 * 3  # the running mean after 0, 0, 0, 3
    assert group["lr"] == pytest.approx(0.1)  # expected staleness below 1: PipeMare leaves it
    assert group["momentum"] == pytest.approx(raised_momentum(0.9, expected, 6.0))
    updater.expected.values[0] = 4.0
    updater.apply({0: torch.ones(3)}, 0.1, [updater.versions[0] - 4], 2.0)
    assert group["lr"] == pytest.approx(0.1 / 4.0**0.5)


def delayed_bp_losses(**settings) -> tuple[float | None, float | None]:
    """The final train and test losses of a smoke bp on the GPT (AdamW), with these settings."""
    base = {"device": "cpu", "threads": 1}
    job = build_job("test", "imdb-lm", "gpt", "bp", "smoke", settings={**base, **settings})
    result = run_job(job, None, NullTracker(), progress=False)
    return result.final_train_loss, result.final_test_loss


def test_a_delayed_bps_delay_momentum_is_a_beta1_of_its_delay():
    """bp with grad_delay=1 and delay_momentum is bp with grad_delay=1 and β1 = 0.9 + 1/2 (0.99 −
    0.9) (τ = 1, N = 2), bit for bit; and not the uncorrected run."""
    corrected = delayed_bp_losses(grad_delay=1, delay_momentum=True)
    assert corrected == delayed_bp_losses(grad_delay=1, beta1=0.945)
    assert corrected != delayed_bp_losses(grad_delay=1)


def test_a_correction_without_a_delay_is_refused():
    proc = run_cli("train", "--method", "bp", "--profile", "smoke", "--set", "delay_momentum=true")
    assert proc.returncode == 2 and "needs grad_delay > 0" in proc.stderr, proc.stderr
    proc = run_cli("train", "--method", "async_lu", "--profile", "smoke", "--set", "delay_lr_epochs=-1")
    assert proc.returncode == 2 and "delay_lr_epochs must be >= 0" in proc.stderr, proc.stderr


class Recorder(nn.Linear):
    """A linear layer that records the weight its forward reads."""

    seen: list[torch.Tensor]

    def forward(self, x):
        self.seen.append(self.weight.detach().clone())
        return super().forward(x)


def test_the_engines_forward_reads_each_module_extrapolated_by_its_staleness():
    """With predict_weights, a module's forward runs on w + τ Δw (τ its expected staleness, Δw its
    last update), and its weights are exactly w again after the forward."""
    from methods.common.param_updates import guard_forward_reads, module_groups

    torch.manual_seed(0)
    model = nn.Sequential(Recorder(3, 2))
    model[0].seen = []
    params = list(model.parameters())
    cfg = TrainConfig(lr=0.1, momentum=0.0, weight_decay=0.0)
    updater = ParameterUpdater(params, cfg, module_groups(model, params))
    updater.corrections = DelayCorrections(predict_weights=True)
    remove = guard_forward_reads(model, updater, lambda: None)
    grads = {i: torch.randn_like(p) for i, p in enumerate(params)}
    updater.apply(grads, 0.1, [0, 0], 0.0)  # staleness 0: τ = 0, no prediction yet
    model(torch.randn(1, 3))
    assert torch.equal(model[0].seen[-1], model[0].weight.detach())
    before = model[0].weight.detach().clone()
    updater.apply(grads, 0.1, [0, 0], 0.0)  # read before the first update: staleness 1
    step = model[0].weight.detach() - before  # -0.1 g
    tau = updater.expected.values[0]
    assert tau == pytest.approx(0.01)  # the running mean after 0, 1
    after = model[0].weight.detach().clone()
    model(torch.randn(1, 3))
    torch.testing.assert_close(model[0].seen[-1], after + tau * step)
    assert torch.equal(model[0].weight.detach(), after)  # restored exactly
    remove()
    model(torch.randn(1, 3))
    assert torch.equal(model[0].seen[-1], after)


def test_the_remedies_table_runs_at_smoke_and_reports_every_row(tmp_path):
    """`run pd-transformer-remedies --profile smoke` then its report: every row, named as its runs
    are, with bits per byte, tokens/s and memory; its runs are the rows' settings."""
    import pandas as pd

    from benchmarks.tables import TABLES

    from .conftest import empty_store

    store = empty_store(tmp_path / "mlflow.db")
    spec = TABLES["pd-transformer-remedies"]
    labels = [cell.row.label for cell in spec.cells("smoke")]
    assert len(labels) == len(set(labels)) == 17
    proc = run_cli("run", "pd-transformer-remedies", "--profile", "smoke", "--tracking-uri", store)
    assert proc.returncode == 0 and "17 run, 0 already finished, 0 failed" in proc.stdout, proc.stderr
    out = tmp_path / "report"
    proc = run_cli("report", "pd-transformer-remedies", "--profile", "smoke", "--tracking-uri", store,
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "pd-transformer-remedies.csv")
    assert sorted(table["method"]) == sorted(labels)  # each run found its own row, by its params
    assert (table["best_bpb_mean"] < 8).all() and (table["tokens_per_s_mean"] > 0).all()
    assert (table["mem_peak_gib_mean"] > 0).all()


def test_each_run_of_the_paper_models_table_is_found_in_its_own_row():
    """pd-remedies-paper-models: the control and each correction per workload, Muon on the LSTM
    only; the params each job logs match its own row and no other (reports find rows by params)."""
    from benchmarks.tables import TABLES

    spec = TABLES["pd-remedies-paper-models"]
    for profile in ("smoke", "quick", "paper"):
        jobs = spec.jobs(profile)
        assert {(j.model, j.label) for j in jobs} == {
            (m, f"async_lu[{name}]" if name else "async_lu")
            for m in ("resnet18", "lstm")
            for name in ("", "delay_momentum", "delay_lr=1" if profile != "paper" else "delay_lr=10",
                         "predict_weights", *(["muon"] if m == "lstm" else []))
        }  # fmt: skip
        for job in jobs:
            assert [r.label for r in spec.rows if r.matches(job.method, job.params())] == [job.label]


@pytest.mark.slow  # 9 smoke jobs and the report, ~12 s
def test_the_paper_models_table_runs_at_smoke_and_reports_every_row(tmp_path):
    import pandas as pd

    from .conftest import empty_store

    store = empty_store(tmp_path / "mlflow.db")
    proc = run_cli("run", "pd-remedies-paper-models", "--profile", "smoke", "--tracking-uri", store)
    assert proc.returncode == 0 and "9 run, 0 already finished, 0 failed" in proc.stdout, proc.stderr
    out = tmp_path / "report"
    proc = run_cli("report", "pd-remedies-paper-models", "--profile", "smoke", "--tracking-uri", store,
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "pd-remedies-paper-models.csv")
    assert len(table) == 9 and table["best_acc_mean"].notna().all()
