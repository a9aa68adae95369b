"""Delay corrections (methods/common/delay.py): each formula against its paper, the settings on
every optimiser, and their wiring into a delayed bp and the async engine."""

import pytest
import torch
from torch import nn

from benchmarks.engine.build import build_job
from benchmarks.engine.runner import run_job
from benchmarks.engine.tracking import NullTracker
from core.config import TrainConfig
from core.errors import UserError
from core.job import Row
from methods.common.delay import (
    DelayCorrections,
    ExpectedStaleness,
    compensate,
    pipemare_lr,
    raised_momentum,
    tune,
)
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


def dc_asgd(grad, drift, mean_square, strength):
    """Zheng et al. 2017, eq. 8 with §6's adaptive λ, one tensor written out: (g̃, MS)."""
    mean_square = 0.95 * mean_square + 0.05 * grad * grad
    return grad + strength / mean_square.sqrt() * grad * grad * drift, mean_square


def test_the_compensation_is_dc_asgds():
    """MS ← 0.95 MS + 0.05 g ⊙ g; g + λ0 g ⊙ g ⊙ (w_now − w_read) / sqrt(MS); a coordinate whose
    gradients were all zero stays zero, and no drift leaves the gradient as it was."""
    grad, drift, mean_square = (
        torch.tensor([0.5, -2.0, 0.0]),
        torch.tensor([0.1, 0.3, 1.0]),
        torch.tensor([1.0, 0, 0]),
    )
    expected, expected_ms = dc_asgd(grad, drift, mean_square, 2.0)
    grads, mean_squares = [grad.clone()], [mean_square.clone()]
    compensate(grads, [drift], mean_squares, 2.0)
    torch.testing.assert_close(mean_squares[0], expected_ms)
    torch.testing.assert_close(grads[0][:2], expected[:2])
    assert grads[0][2] == 0.0 and grads[0][0] == pytest.approx(0.5 + 2 * 0.25 * 0.1 / (0.95 + 0.0125) ** 0.5)
    still = [grad.clone()]
    compensate(still, [torch.zeros(3)], [mean_square.clone()], 2.0)
    assert torch.equal(still[0], grad)


def test_a_delayed_bps_gradient_is_compensated_towards_the_weights_it_updates():
    """bp with grad_delay=1 and compensation: the gradient taken on w_(t-1) gets DC-ASGD's term with
    drift w_t − w_(t-1) before the step (none at the first step: both are the initial weights)."""
    from methods.bp import DelayedWeights

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    params = list(model.parameters())
    delayed = DelayedWeights(params, 1, compensation=2.0)
    optimizer = torch.optim.SGD(params, lr=0.5)
    inputs = torch.randn(8, 3)
    history = [[p.detach().clone() for p in params]]
    mean_squares = [torch.zeros_like(p) for p in params]
    for step in range(4):
        delayed.stale()
        read = [p.detach().clone() for p in params]
        assert all(torch.equal(a, b) for a, b in zip(read, history[max(0, step - 1)], strict=True))
        optimizer.zero_grad()
        model(inputs).pow(2).mean().backward()
        raw = [p.grad.clone() for p in params]
        delayed.current()
        for i, p in enumerate(params):
            expected, mean_squares[i] = dc_asgd(raw[i], p.detach() - read[i], mean_squares[i], 2.0)
            torch.testing.assert_close(p.grad, expected)
            assert step == 0 or not torch.equal(p.grad, raw[i])
        optimizer.step()
        history.append([p.detach().clone() for p in params])


def test_the_engines_gradients_are_compensated_by_the_drift_since_their_forward():
    """An update whose pass read the weights two updates ago: its gradient gets DC-ASGD's term with
    the drift w_now − w_read, the sum of the two updates since (the fresh ones get none, but their
    gradients join the mean square)."""
    param = nn.Parameter(torch.zeros(3))
    cfg = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=0.0)
    updater = ParameterUpdater([param], cfg)
    updater.correct(DelayCorrections(delay_compensation=2.0), 3)
    read, read_version = param.detach().clone(), updater.versions[0]
    fresh = [torch.tensor([1.0, 2.0, -1.0]), torch.tensor([0.5, -1.0, 3.0])]
    mean_square = torch.zeros(3)
    for grad in fresh:
        _, mean_square = dc_asgd(grad, torch.zeros(3), mean_square, 2.0)
        updater.apply({0: grad.clone()}, 0.1, [updater.versions[0]], 0.0)
    now = param.detach().clone()
    torch.testing.assert_close(now, read - 0.1 * (fresh[0] + fresh[1]))  # no drift, no term
    grad = torch.tensor([1.0, -1.0, 2.0])
    updater.apply({0: grad.clone()}, 0.1, [read_version], 0.0)
    expected, _ = dc_asgd(grad, now - read, mean_square, 2.0)
    torch.testing.assert_close(param.detach(), now - 0.1 * expected)


def test_compensation_is_refused_where_it_cannot_run():
    from methods.common.async_engine import AsyncConfig

    for config, message in (
        (AsyncConfig(delay_compensation=-1.0), "delay_compensation must be >= 0"),
        (AsyncConfig(delay_compensation=2.0, predict_weights=True), "exclude each other"),
        (
            AsyncConfig(delay_compensation=2.0, lock_free=True),
            "delay_compensation needs the per-module locks",
        ),
    ):
        with pytest.raises(UserError, match=message):
            config.validate()


def test_a_setting_added_later_keeps_the_keys_and_rows_of_stored_runs():
    """delay_compensation was added after runs were stored: at its default it stays out of the job
    key (this pinned key is that of stored quick runs: a change orphans them), an older run's
    params without it read as its default, and set it makes a job and a row of its own."""
    import dataclasses

    from benchmarks.tables import TABLES

    jobs = {j.label: j for j in TABLES["pd-transformer-remedies"].jobs("quick")}
    control = jobs["async_lu"]
    assert control.key == "ee427e3603f77560"
    assert "delay_compensation" in control.params() and "delay_compensation" not in control.keyed_params()
    compensated = dataclasses.replace(
        control, method_config=dataclasses.replace(control.method_config, delay_compensation=2.0)
    )
    assert compensated.key != control.key and compensated.keyed_params()["delay_compensation"] == 2.0
    rows = {c.row.label: c.row for c in TABLES["pd-transformer-remedies"].cells("quick")}
    older = {k: str(v) for k, v in control.params().items() if k != "delay_compensation"}
    assert rows["async_lu"].matches("async_lu", older)
    assert rows["async_lu"].matches(
        "async_lu", {**older, "delay_compensation": float("nan")}
    )  # a frame's gap
    compensated_row = Row.of("async_lu", delay_compensation=2.0)
    assert not compensated_row.matches("async_lu", older)
    assert compensated_row.matches("async_lu", jobs[compensated_row.label].params())
    spec = TABLES["pd-transformer-remedies"]
    assert spec.run_row("async_lu", older) == Row("async_lu")
    assert spec.run_row("async_lu", {k: str(v) for k, v in compensated.params().items()}) == compensated_row


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
    updater.correct(DelayCorrections(delay_momentum=True, delay_lr_epochs=4), 6)
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
    updater.correct(DelayCorrections(predict_weights=True), 3)
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


@pytest.mark.slow  # not in CI: its rows run there in test_chaos.py's claims loop (the remedies' plan)
def test_the_remedies_table_runs_at_smoke_and_reports_every_row(tmp_path):
    """`run pd-transformer-remedies --profile smoke` then its report: every row, named as its runs
    are, with bits per byte, tokens/s and memory; its runs are the rows' settings."""
    import pandas as pd

    from benchmarks.tables import TABLES

    from .conftest import empty_store

    store = empty_store(tmp_path / "mlflow.db")
    spec = TABLES["pd-transformer-remedies"]
    labels = [cell.row.label for cell in spec.cells("smoke")]
    assert len(labels) == len(set(labels)) == 18
    proc = run_cli("run", "pd-transformer-remedies", "--profile", "smoke", "--tracking-uri", store)
    assert proc.returncode == 0 and "18 run, 0 already finished, 0 failed" in proc.stdout, proc.stderr
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
            for name in ("", "delay_momentum=true", f"delay_lr_epochs={1 if profile != 'paper' else 10}",
                         "predict_weights=true", "delay_compensation=2",
                         *(["optimizer=muon,momentum=0.95"] if m == "lstm" else []))
        }  # fmt: skip
        for job in jobs:  # as MLflow keeps them: strings
            assert spec.run_row(job.method, {k: str(v) for k, v in job.params().items()}) == job.row


@pytest.mark.slow  # 9 smoke jobs and the report, ~12 s
def test_the_paper_models_table_runs_at_smoke_and_reports_every_row(tmp_path):
    import pandas as pd

    from .conftest import empty_store

    store = empty_store(tmp_path / "mlflow.db")
    proc = run_cli("run", "pd-remedies-paper-models", "--profile", "smoke", "--tracking-uri", store)
    assert proc.returncode == 0 and "11 run, 0 already finished, 0 failed" in proc.stdout, proc.stderr
    out = tmp_path / "report"
    proc = run_cli("report", "pd-remedies-paper-models", "--profile", "smoke", "--tracking-uri", store,
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "pd-remedies-paper-models.csv")
    assert len(table) == 11 and table["best_acc_mean"].notna().all()  # 5 rows on ResNet-18, 6 on the LSTM


def test_a_stashed_forwards_backward_reads_the_weights_it_read():
    """Weight stashing: after the parameters change in place (as the async methods' updates do,
    through `.data`), the backward of a stashed forward gives the gradient at the forward's
    weights (a GPT-like stack: a tied embedding, a norm, linears); an unstashed one does not."""
    import torch.nn.functional as F

    from methods.common.delay import stashing_weights

    torch.manual_seed(0)
    embedding, norm, head = nn.Embedding(20, 8), nn.LayerNorm(8), nn.Linear(8, 8)
    params = [embedding.weight, *norm.parameters(), *head.parameters()]

    def loss():
        hidden = head(norm(embedding(tokens))).relu()
        return F.cross_entropy((hidden @ embedding.weight.T).flatten(0, 1), targets.flatten())

    tokens, targets = torch.randint(0, 20, (4, 5)), torch.randint(0, 20, (4, 5))
    at_forward = torch.autograd.grad(loss(), params)
    with stashing_weights(params):
        stashed = loss()
    unstashed = loss()
    with torch.no_grad():
        for p in params:
            p.data.add_(torch.randn_like(p))
    for ours, expected in zip(torch.autograd.grad(stashed, params), at_forward, strict=True):
        torch.testing.assert_close(ours, expected)
    mixed = torch.autograd.grad(unstashed, params)
    assert not all(torch.allclose(a, b) for a, b in zip(mixed, at_forward, strict=True))


def test_the_async_methods_stash_every_forward_when_asked(monkeypatch):
    """`async_lu --set weight_stashing=true` runs every forward under the stash (row
    `async_lu[weight_stashing=true]`); off by default, as the paper's method."""
    import methods.async_backprop as async_backprop
    from benchmarks.engine.rank import get_dataset
    from methods.common.async_engine import AsyncConfig

    stashed = []
    real = async_backprop.stashing_weights
    monkeypatch.setattr(async_backprop, "stashing_weights", lambda params: stashed.append(1) or real(params))
    assert AsyncConfig().weight_stashing is False
    settings = {"device": "cpu", "max_epochs": 1, "weight_stashing": True}
    job = build_job("test", "synthetic", "resnet18", "async_lu", "smoke", settings=settings)
    result = run_job(job, None, NullTracker(), progress=False)
    assert result.status == "finished" and job.row == Row.of("async_lu", weight_stashing=True)
    assert len(stashed) == get_dataset(job, None).steps_per_epoch(job.config.batch_size) > 0


def test_the_delayed_bps_spread_and_inconsistency_are_refused_where_meaningless():
    """A spread needs 0 < grad_delay < grad_delay_max; backward_on_current needs a delay and
    excludes DC-ASGD (whose drift assumes one set of weights); each a row of its own."""
    from methods.bp import BpConfig

    for bad in (dict(grad_delay_max=2), dict(grad_delay=2, grad_delay_max=2), dict(backward_on_current=True),
                dict(grad_delay=1, backward_on_current=True, delay_compensation=2.0)):  # fmt: skip
        with pytest.raises(UserError):
            BpConfig(**bad).validate()
    for settings in (dict(grad_delay=1, grad_delay_max=2), dict(grad_delay=1, backward_on_current=True)):
        job = build_job("test", "synthetic", "resnet18", "bp", "smoke", settings=settings)
        assert job.row == Row("bp", tuple(settings.items())) and job.label == f"bp[{job.row.name}]"
