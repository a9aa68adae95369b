"""The runner's contract, exercised in-process with small methods registered by the tests."""

import dataclasses
import json
import time

import pytest
import torch.nn.functional as F

from benchmarks.engine.runner import JobFailed, run_job
from benchmarks.engine.tracking import Tracker
from core.result import RunResult
from methods import METHODS, Method, register_method

from .conftest import empty_store, run_cli, smoke_job


@pytest.fixture
def scratch_method():
    """Register a test method for the duration of one test."""
    names = []

    def register(name, train):
        cls = type(name, (Method,), {"train": lambda self, ctx: train(ctx.job, ctx)})
        register_method(name)(cls)
        names.append(name)

    yield register
    for name in names:
        METHODS.pop(name)


def job(method="bp", **config):
    return smoke_job(method, **{"t_max": 3, "max_epochs": 3, "patience": 3, **config})


def plain_epoch(ctx, epoch, model=None, sleep=0.0):
    model = model or ctx.model
    meter = ctx.meter()
    for inputs, targets in ctx.train_batches(epoch):
        logits = model(inputs)
        meter.add(F.cross_entropy(logits, targets), logits, targets)
        time.sleep(sleep)
    return meter


def test_bp_learns_logs_and_is_deterministic(store):
    tracker = Tracker(store)
    first = run_job(job(), None, tracker, progress=False)
    second = run_job(job(), None, tracker, progress=False)
    assert first.status == "finished" and first.stop_reason == "max_epochs" and first.epochs == 3
    assert first.best_test_acc > 0.5  # 10 synthetic classes: chance is 0.1
    assert first.final_train_loss == second.final_train_loss  # same seed, same losses
    client = tracker.client
    history = client.get_metric_history(first.run_id, "test_acc")
    assert [m.step for m in history] == [0, 1, 2]
    run = client.get_run(first.run_id)
    for tag in (
        "table",
        "method",
        "dataset",
        "model",
        "profile",
        "seed",
        "run_index",
        "devices",
        "git_sha",
        "status",
        "stop_reason",
        "job_key",
        "hardware",
        "torch_version",
    ):
        assert tag in run.data.tags, tag
    assert run.data.tags["status"] == "finished" and run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.05" and run.data.params["weight_decay"] == "0.0005"
    assert tracker.finished_run("test", job().key).info.run_id == second.run_id


def test_patience_stops(store, scratch_method):
    # The model never changes, so the best test accuracy is reached at epoch 0 and never beaten.
    def frozen(job, ctx):
        for epoch in ctx.epochs():
            ctx.end_epoch(plain_epoch(ctx, epoch))

    scratch_method("frozen", frozen)
    result = run_job(job("frozen", max_epochs=10, patience=2), None, Tracker(store), progress=False)
    assert (result.stop_reason, result.epochs) == ("patience", 3)


def test_time_budget_cuts_an_epoch_and_clock_pauses_for_evaluation(store, scratch_method, monkeypatch):
    def slow(job, ctx):
        for epoch in ctx.epochs():
            ctx.end_epoch(plain_epoch(ctx, epoch, sleep=0.05))

    scratch_method("slow", slow)
    from core.context import TrainContext

    evaluate = TrainContext.evaluate

    def slow_evaluate(self, model):
        time.sleep(1.0)
        return evaluate(self, model)

    monkeypatch.setattr(TrainContext, "evaluate", slow_evaluate)
    tracker = Tracker(store)
    # 32 steps per epoch x 0.05 s: the 0.5 s budget ends the first epoch early.
    result = run_job(job("slow", max_epochs=5, time_budget_s=0.5), None, tracker, progress=False)
    assert result.stop_reason == "time_budget" and result.epochs == 1
    wall = tracker.client.get_metric_history(result.run_id, "wall_time_s")[0].value
    assert wall - result.train_time_s >= 1.0  # the evaluation's second is not on the training clock


def test_nan_loss_is_diverged_and_recorded(store):
    tracker = Tracker(store)
    result = run_job(job(lr=1e12), None, tracker, progress=False)
    assert result.status == "diverged" and result.stop_reason == "diverged"
    assert tracker.client.get_run(result.run_id).data.tags["status"] == "diverged"


def test_an_exception_marks_the_run_failed(store, scratch_method):
    def broken(job, ctx):
        raise ValueError("boom")

    scratch_method("broken", broken)
    tracker = Tracker(store)
    with pytest.raises(JobFailed, match="ValueError: boom") as err:
        run_job(job("broken"), None, tracker, progress=False)
    run = tracker.client.get_run(err.value.result.run_id)
    assert run.data.tags["status"] == "failed" and run.info.status == "FAILED"


def test_a_method_must_end_its_epochs(store, scratch_method):
    def forgetful(job, ctx):
        for _ in ctx.epochs():
            pass

    scratch_method("forgetful", forgetful)
    with pytest.raises(JobFailed, match="did not call ctx.end_epoch"):
        run_job(job("forgetful"), None, Tracker(store), progress=False)


def test_a_store_that_fills_mid_run_ends_with_one_line_and_the_run_is_closed_later(tmp_path, monkeypatch):
    """The store's disk fills during a run: its metrics and then its closing fail. One line, exit 1,
    saying the run stays open; once the store can be written and the run's process is gone, the
    next command marks it failed (stale)."""
    import sqlite3
    import subprocess
    import sys

    from .conftest import run_cli

    uri = f"sqlite:///{tmp_path / 'full.db'}"
    calls = []

    def full(*args, **kwargs):
        calls.append(1)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Tracker, "log_metrics", full)
    monkeypatch.setattr(Tracker, "finish", full)
    proc = run_cli("train", "--dataset", "cifar10", "--model", "resnet18", "--method", "bp", "--profile",
                   "smoke", "--epochs", "1", "--tracking-uri", uri)  # fmt: skip
    assert proc.returncode == 1 and calls, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "database or disk is full" in lines[0] and "stays 'running'" in lines[0]
    assert "Traceback" not in proc.stderr and "[SQL" not in proc.stderr
    monkeypatch.undo()  # the disk has room again

    tracker = Tracker(uri)
    (run,) = tracker.client.search_runs([tracker.experiment_id("adhoc")])
    assert run.data.tags["status"] == "running"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    tracker.client.set_tag(run.info.run_id, "pid", gone.stdout.strip())  # its process has ended
    tracker.close_stale_runs()
    assert tracker.client.get_run(run.info.run_id).data.tags["status"] == "failed"


def test_train_json_has_the_same_keys_for_a_failed_job(store, scratch_method):
    """`train --json` prints the one RunResult for a failed job too (exit 1), with its error."""

    def broken(job, ctx):
        raise RuntimeError("a bug in the method")

    scratch_method("broken_json", broken)
    proc = run_cli(
        "train", "--method", "broken_json", "--profile", "smoke", "--json", "--tracking-uri", store
    )
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert list(result) == [f.name for f in dataclasses.fields(RunResult)]
    assert (result["status"], result["stop_reason"]) == ("failed", "failed")
    assert "a bug in the method" in result["error"]


def test_a_store_of_another_schema_is_refused_with_one_line(tmp_path):
    """A store written before the schema tag (or by another schema) is not read through shims: each
    command that opens it ends with one line, exit 1, saying what to do."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'old.db'}"
    MlflowClient(tracking_uri=uri).create_experiment("table1")  # as an earlier suite made it: no tag
    for args in (("report", "table1"), ("train", "--method", "bp", "--profile", "smoke")):
        proc = run_cli(*args, "--tracking-uri", uri)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "schema 1" in lines[0] and f"migrate-store {uri}" in lines[0], lines


def test_every_experiment_the_suite_creates_opens_on_the_training_view(tmp_path):
    """Tables and `perf`: each experiment is tagged for MLflow 3's training UI
    (`mlflow.experimentKind`) and with the store's schema."""
    from core.result import SCHEMA_VERSION

    tracker = Tracker(empty_store(tmp_path / "kinds.db"))
    run_job(job(max_epochs=1), None, tracker, progress=False)
    tracker.log_perf("peak", {"flops": 1.0})
    experiments = [e for e in tracker.client.search_experiments() if e.name != "Default"]
    assert sorted(e.name for e in experiments) == ["perf", "test"]
    for experiment in experiments:
        assert experiment.tags["mlflow.experimentKind"] == "custom_model_development", experiment.name
        assert experiment.tags["schema"] == SCHEMA_VERSION, experiment.name


@pytest.mark.parametrize(("predict", "on_current"), [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("delay", [1, 2])
def test_a_delayed_bp_step_takes_the_gradient_of_the_weights_of_d_updates_ago(delay, predict, on_current):
    """bp's loop with DelayedWeights (stale weights in for forward and backward, the current ones
    back for the step) against a loop that keeps every weight: w_(t+1) = w_t - lr g(w_max(t-d, 0));
    with prediction the gradient is taken at w_(t-d) + d (w_(t-d) - w_(t-d-1)) instead, earlier
    weights being the initial ones; with `backward_on_current` the forward's activations are
    w_(t-d)'s and the backward's formulas read w_t (the output layer's weights, in the hidden
    layer's gradient)."""
    import torch
    from torch import nn

    from methods.bp import DelayedWeights

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    reference = [p.detach().clone() for p in model.parameters()]
    batches = [(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(6)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    delayed = DelayedWeights(list(model.parameters()), delay, predict, stashing=not on_current)
    for inputs, targets in batches:
        delayed.stale()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(inputs), targets)
        delayed.unstash()
        loss.backward()
        delayed.current()
        optimizer.step()

    weights = [reference]
    for t, (inputs, targets) in enumerate(batches):
        stale, older = weights[max(t - delay, 0)], weights[max(t - delay - 1, 0)]
        ahead = [s + delay * (s - o) for s, o in zip(stale, older, strict=True)] if predict else stale
        at = [w.clone().requires_grad_() for w in ahead]
        hidden = torch.tanh(inputs @ at[0].T + at[1])
        grads = torch.autograd.grad(F.cross_entropy(hidden @ at[2].T + at[3], targets), at)
        if on_current:  # the hidden layer's error through the current output weights
            logits = (hidden @ at[2].T + at[3]).detach()
            error = (torch.softmax(logits, 1) - F.one_hot(targets, 3)) / len(targets)
            into_hidden = (error @ weights[-1][2]) * (1 - hidden.detach() ** 2)
            grads = (into_hidden.T @ inputs, into_hidden.sum(0), *grads[2:])
        weights.append([w - 0.1 * g for w, g in zip(weights[-1], grads, strict=True)])
    # (the prediction's extrapolation rounds differently from the reference's: 10x the tolerance)
    rtol, atol = (1e-5, 1e-6) if predict or on_current else (1e-6, 1e-7)
    for ours, theirs in zip(model.parameters(), weights[-1], strict=True):
        torch.testing.assert_close(ours.detach(), theirs, rtol=rtol, atol=atol)
    # With no delay the same loop is bp's: a step that applied stale weights' gradients differs.
    assert not torch.equal(weights[-1][0], weights[0][0])


def test_a_delayed_bps_delay_may_change_every_step():
    """With `most`, each step's delay is whatever was set before it (1 to 3 here): the step applies
    the gradient of w_(t - d_t), earlier weights being the initial ones."""
    import torch
    from torch import nn

    from methods.bp import DelayedWeights

    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    reference = [p.detach().clone() for p in model.parameters()]
    batches = [(torch.randn(4, 5), torch.randint(0, 3, (4,))) for _ in range(7)]
    delays = [2, 1, 3, 3, 1, 2, 1]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    delayed = DelayedWeights(list(model.parameters()), 1, most=3)
    for (inputs, targets), delay in zip(batches, delays, strict=True):
        delayed.delay = delay
        delayed.stale()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(inputs), targets).backward()
        delayed.current()
        optimizer.step()

    weights = [reference]
    for t, ((inputs, targets), delay) in enumerate(zip(batches, delays, strict=True)):
        at = [w.clone().requires_grad_() for w in weights[max(t - delay, 0)]]
        grads = torch.autograd.grad(F.cross_entropy(inputs @ at[0].T + at[1], targets), at)
        weights.append([w - 0.1 * g for w, g in zip(weights[-1], grads, strict=True)])
    for ours, theirs in zip(model.parameters(), weights[-1], strict=True):
        torch.testing.assert_close(ours.detach(), theirs, rtol=1e-6, atol=1e-7)


def test_bp_with_a_gradient_delay_is_a_row_of_its_own(store, monkeypatch):
    """`train --method bp --set grad_delay=1` trains through the delayed weights at every step (run
    name and tag `bp[grad_delay=1]`); a negative delay is refused before any run."""
    from benchmarks.engine.build import build_job
    from benchmarks.engine.rank import get_dataset
    from methods.bp import DelayedWeights

    swaps = []
    stale = DelayedWeights.stale
    monkeypatch.setattr(DelayedWeights, "stale", lambda self: swaps.append(1) or stale(self))
    settings = {"max_epochs": 1, "device": "cpu", "grad_delay": 1}
    delayed = build_job("test", "synthetic", "resnet18", "bp", "smoke", settings=settings)
    tracker = Tracker(store)
    result = run_job(delayed, None, tracker, progress=False)
    assert result.status == "finished" and delayed.label == "bp[grad_delay=1]"
    steps = get_dataset(delayed, None).steps_per_epoch(delayed.config.batch_size)
    assert len(swaps) == steps > 0  # every step's forward and backward ran on the delayed weights
    run = tracker.client.get_run(result.run_id)
    assert run.data.tags["row_name"] == "grad_delay=1" and run.data.params["grad_delay"] == "1"
    proc = run_cli("train", "--method", "bp", "--profile", "smoke", "--set", "grad_delay=-1")
    assert proc.returncode == 2 and "grad_delay must be >= 0" in proc.stderr, proc.stderr


def test_an_async_run_evaluates_on_all_its_cores_and_trains_on_its_threads_share(monkeypatch):
    """The async methods give each of their 3 threads a third of the cores; the evaluation between
    epochs (their threads idle) runs on the process's whole share, and training resumes on a third."""
    import os

    import torch

    from benchmarks.engine.build import build_job
    from benchmarks.engine.tracking import NullTracker
    from core.context import TrainContext

    seen = []
    evaluate = TrainContext.evaluate
    monkeypatch.setattr(TrainContext, "evaluate", lambda self, model: seen.append(torch.get_num_threads())
                        or evaluate(self, model))  # fmt: skip
    threads = torch.get_num_threads()
    try:
        job = build_job("test", "synthetic", "resnet18", "async_lu", "smoke", settings={"device": "cpu"})
        run_job(job, None, NullTracker(), progress=False)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    cores = os.cpu_count() or 1
    assert seen and set(seen) == {cores}, seen
    assert after == max(1, cores // 3)  # the method's own share again after each evaluation
