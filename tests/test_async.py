"""async_lu / async_bu: exactness in the degenerate case, exactly-once updates, lifecycle, staleness."""

import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.engine.runner import JobFailed, run_job
from benchmarks.engine.tracking import NullTracker, Tracker
from core.config import TrainConfig
from core.result import RunResult
from methods.async_backprop import AsyncConfig
from methods.common.async_engine import AsyncEngine

from .conftest import smoke_job


def job(method: str, acfg: AsyncConfig | None = None, **config):
    return smoke_job(method, acfg, **config)


def history(tracker, run_id, key):
    return [m.value for m in sorted(tracker.client.get_metric_history(run_id, key), key=lambda m: m.step)]


def assert_one_pass_in_flight_is_backprop(store, method: str, make_job=job) -> tuple[RunResult, RunResult]:
    """F=1, B=1, max_in_flight=1 must give bp's per-epoch losses and accuracies bit for bit.

    Returns both summaries (bp's, the method's)."""
    tracker = Tracker(store)
    # The same intra-op thread count on both sides: kernels split their reductions by thread count.
    bp = run_job(make_job("bp", threads=1), None, tracker, progress=False)
    seq = AsyncConfig(forward_threads=1, backward_threads=1, max_in_flight=1)
    ours = run_job(make_job(method, seq, threads=1), None, tracker, progress=False)
    assert history(tracker, ours.run_id, "train_loss") == history(tracker, bp.run_id, "train_loss")
    assert history(tracker, ours.run_id, "test_acc") == history(tracker, bp.run_id, "test_acc")
    return bp, ours


# async_lu under SGD by default; async_bu and the other optimisers with -m slow (the GPT's test runs
# async_bu, AdamW, NAdamW and Muon by default).
@pytest.mark.parametrize(
    ("method", "optimizer"),
    [("async_lu", "sgd"), pytest.param("async_bu", "sgd", marks=pytest.mark.slow)]
    + [pytest.param("async_lu", opt, marks=pytest.mark.slow) for opt in ("adam", "adamw", "nadamw", "muon")],
)
def test_one_pass_in_flight_is_backprop_exactly(store, method, optimizer):
    assert_one_pass_in_flight_is_backprop(
        store, method, lambda *args, **config: job(*args, **config, optimizer=optimizer)
    )


class KnownGradient(nn.Module):
    """loss = Σ_k <w_k, c_k>: the gradient of w_k is c_k whatever the parameters are."""

    def __init__(self):
        super().__init__()
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(n)) for n in (1000, 10, 4096)])
        self.slopes = [torch.randn(n) for n in (1000, 10, 4096)]

    def loss(self) -> torch.Tensor:
        return sum((w * c).sum() for w, c in zip(self.weights, self.slopes, strict=True))


@pytest.mark.parametrize("layerwise", [True, False])
def test_every_update_is_applied_exactly_once(layerwise):
    model = KnownGradient()
    start = [w.detach().clone() for w in model.weights]
    lr, passes = 0.01, 400
    cfg = TrainConfig(lr=lr, momentum=0.0, weight_decay=0.0)
    with AsyncEngine(
        model, cfg, AsyncConfig(backward_threads=4, max_in_flight=4), layerwise, torch.device("cpu")
    ) as e:
        for _ in range(passes):
            stream = e.acquire_slot()
            e.submit(model.loss(), lr, e.read_versions(), stream)
        e.drain()
        assert e.updater.versions == [passes] * 3
    # Every update is the same w <- w - lr * c (SGD's add_ with alpha), so any order of them gives
    # the sequential result bit for bit; a lost or repeated update would not.
    for w, w0, c in zip(model.weights, start, model.slopes, strict=True):
        expected = w0.clone()
        for _ in range(passes):
            expected.add_(c, alpha=-lr)
        assert torch.equal(w.detach(), expected)


def engine_threads() -> set[threading.Thread]:
    """The live threads but tqdm's monitor, which comes and goes with progress bars process-wide
    (one started by an earlier test may end during this one): not the engine's."""
    from tqdm._monitor import TMonitor

    return {t for t in threading.enumerate() if not isinstance(t, TMonitor)}


def test_start_stop_leaves_no_threads():
    before = engine_threads()
    for _ in range(20):
        model = KnownGradient()
        cfg = TrainConfig(lr=0.01, momentum=0.9)
        with AsyncEngine(model, cfg, AsyncConfig(backward_threads=2), True, torch.device("cpu")) as e:
            for _ in range(3):
                stream = e.acquire_slot()
                e.submit(model.loss(), 0.01, e.read_versions(), stream)
            e.drain()
        assert not model.weights[0]._backward_hooks  # the LU hooks are removed
    # No thread the engine started is left (a thread of another library may end meanwhile).
    assert not engine_threads() - before, engine_threads() - before


def test_jobs_leave_no_threads():
    from tqdm._monitor import TMonitor

    def threads() -> set[threading.Thread]:
        # tqdm's monitor thread comes and goes with its progress bars (process-wide): not ours.
        return {t for t in threading.enumerate() if not isinstance(t, TMonitor)}

    def short(seed: int):
        return replace(job("async_lu", AsyncConfig(), max_epochs=1, time_budget_s=0.2), seed=seed)

    # A first job may start threads once per process that live on (lazy initialisation, e.g. of
    # CUDA): not a leak. What must not grow with jobs is the count; a leftover is named.
    run_job(short(99), None, NullTracker(), progress=False)
    before = threads()
    for seed in range(8):  # a thread left per job would show as 8
        assert run_job(short(seed), None, NullTracker(), progress=False).status == "finished"
    left = threads() - before
    assert not left, sorted(
        t.name for t in left
    )  # earlier tests' threads may end; none of these jobs' remain


def test_an_error_in_a_backward_thread_fails_the_job(store, monkeypatch):
    def broken(self, grads, lr, *pass_details):
        raise RuntimeError("backward thread exploded")

    monkeypatch.setattr("methods.common.param_updates.ParameterUpdater.apply", broken)
    with pytest.raises(JobFailed, match="backward thread exploded"):  # a hang: pytest-timeout fails it
        run_job(job("async_lu", AsyncConfig()), None, Tracker(store), progress=False)


def test_several_forward_threads_train(store):
    result = run_job(
        # 4 smoke epochs (64 steps): two forward threads put more passes in flight than bp has.
        job("async_lu", AsyncConfig(forward_threads=2, backward_threads=2), max_epochs=4, t_max=4),
        None,
        Tracker(store),
        progress=False,
    )
    assert result.status == "finished" and result.best_test_acc > 0.3  # chance is 0.1


def test_an_error_in_a_forward_helper_fails_the_job(store, monkeypatch):
    from methods.async_backprop import AsyncBackprop

    original = AsyncBackprop.forward_thread

    def broken(self, engine, ctx, epoch, batches):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("forward helper exploded")
        return original(self, engine, ctx, epoch, batches)

    monkeypatch.setattr(AsyncBackprop, "forward_thread", broken)
    with pytest.raises(JobFailed, match="forward helper exploded"):
        run_job(job("async_lu", AsyncConfig(forward_threads=2)), None, Tracker(store), progress=False)


def test_layerwise_updates_are_less_stale_than_block_updates(store):
    tracker = Tracker(store)
    acfg = dict(backward_threads=2, max_in_flight=2)
    lu = run_job(job("async_lu", AsyncConfig(**acfg)), None, tracker, progress=False)
    bu = run_job(job("async_bu", AsyncConfig(**acfg)), None, tracker, progress=False)
    lu_staleness = sum(history(tracker, lu.run_id, "system/staleness_mean"))
    bu_staleness = sum(history(tracker, bu.run_id, "system/staleness_mean"))
    assert 0 < lu_staleness < bu_staleness
    # 000 §3.4's τ: BU holds each gradient until its whole pass ends; LU applies it within its module.
    lu_delay = history(tracker, lu.run_id, "system/update_delay_s_mean")
    bu_delay = history(tracker, bu.run_id, "system/update_delay_s_mean")
    assert 0 <= max(lu_delay) < min(bu_delay), (lu_delay, bu_delay)
    # §3.4's τ = Σ_m τ_m: the sum over tensors per pass is the mean times the tensors updated.
    bu_sum = history(tracker, bu.run_id, "system/update_delay_s_sum")
    tensors = [total / mean for total, mean in zip(bu_sum, bu_delay, strict=True)]
    assert tensors == pytest.approx([round(tensors[0])] * len(tensors)) and tensors[0] > 10


def test_the_run_in_mlflow_a_user_opens(store, tmp_path):
    """Method-first run name, the dataset as an input, a model-training experiment, and per-tensor
    staleness as one table artifact (a row per tensor and epoch) instead of 2 metrics per tensor."""
    import json

    tracker = Tracker(store)
    result = run_job(job("async_lu", AsyncConfig()), None, tracker, progress=False)
    run = tracker.client.get_run(result.run_id)
    assert run.info.run_name == "async_lu · resnet18 · run0"
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["synthetic"]
    assert tracker.client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == (
        "custom_model_development"
    )
    # The workload's curves, throughput and time first (no prefix); diagnostics grouped under
    # system/; the curves again against the training clock (step = its whole seconds).
    plain = {key for key in run.data.metrics if "/" not in key}
    assert {"train_loss", "test_acc", "samples_per_s", "train_time_s", "mfu", "mem_peak_gib"} <= plain
    assert not plain & {"staleness_mean", "forward_idle_frac", "backward_busy_frac", "others_cpu_frac"}
    assert "system/staleness_mean" in run.data.metrics
    by_time = tracker.client.get_metric_history(run.info.run_id, "by_train_s/test_acc")
    clock = tracker.client.get_metric_history(run.info.run_id, "train_time_s")
    assert [m.step for m in by_time] == [round(m.value) for m in clock] and len(by_time) == result.epochs
    path = tracker.client.download_artifacts(run.info.run_id, "staleness.json", str(tmp_path))
    table = json.loads(Path(path).read_text())
    tensors = sum(1 for p in smoke_model_parameters() if p.requires_grad)
    # record_id: the tracker's, so that a table record sent twice is appended once (spool.py).
    assert table["columns"] == ["epoch", "tensor", "depth", "staleness_mean", "staleness_max", "record_id"]
    assert len(table["data"]) == tensors * result.epochs


def smoke_model_parameters():
    from datasets import load_dataset
    from models import build_model

    spec = load_dataset("synthetic", None).spec
    return list(build_model("resnet18", spec, 0.125).parameters())
