"""The workload's metric decides "better": patience, the best epoch, time to a target and the reports
follow its direction (a loss to minimise as well as the paper's accuracy to maximise)."""

import math

import pandas as pd
import pytest
import torch

from benchmarks.engine.rank import get_dataset, seeded_model
from core.context import TrainContext
from core.metric import ACCURACY, Metric
from reports.runs import time_to_best, time_to_target

from .conftest import empty_store, smoke_job

LOSS = Metric("test_loss", "min", "held-out loss")


def test_directions():
    assert ACCURACY.better(0.9, 0.8) and not ACCURACY.better(0.8, 0.8)
    assert LOSS.better(1.0, 2.0) and not LOSS.better(2.0, 1.0)
    assert LOSS.reached(1.0, 1.0) and LOSS.reached(0.5, 1.0) and not LOSS.reached(1.5, 1.0)
    assert ACCURACY.best_of([0.5, math.nan, 0.7]) == 0.7 and LOSS.best_of([3.0, 2.0, 2.5]) == 2.0
    assert LOSS.worst_of([3.0, 2.0]) == 3.0 and ACCURACY.worst_of([0.6, 0.8]) == 0.6
    assert ACCURACY.better(0.0, ACCURACY.worst) and LOSS.better(1e9, LOSS.worst)
    with pytest.raises(ValueError, match="max or min"):
        Metric("x", "up", "x")


def test_time_to_a_loss_target_and_to_the_best_loss():
    curve = pd.DataFrame(
        dict(epoch=[0, 1, 2, 3], test_loss=[3.0, 2.2, 1.9, 2.0], test_acc=[0.1, 0.5, 0.4, 0.6],
             train_time_s=[10.0, 20.0, 30.0, 40.0])
    )  # fmt: skip
    assert time_to_target(curve, 2.2, LOSS) == (20.0, 2.0)
    assert all(math.isnan(v) for v in time_to_target(curve, 1.0, LOSS))  # never reached
    assert time_to_best(curve, LOSS) == (1.9, 30.0, 3.0)
    assert time_to_best(curve, ACCURACY) == (0.6, 40.0, 4.0)  # the same curve judged by accuracy


def test_patience_and_the_best_epoch_follow_a_min_metric(monkeypatch):
    """Accuracy rises every epoch while the loss stops improving after epoch 1: with the loss as
    the workload's metric, patience 2 stops after epoch 3 and the best epoch is 1."""
    job = smoke_job("bp", max_epochs=10, patience=2)
    dataset = get_dataset(job, None)
    # This instance's task is judged by its held-out loss; the instance is cached for later tests,
    # so the attribute is put back after this one.
    monkeypatch.setattr(dataset, "metric", LOSS, raising=False)
    device = torch.device("cpu")
    ctx = TrainContext(
        job, dataset, seeded_model(job, dataset, device), device, lambda m, s: None, progress=False
    )
    held_out = iter([(2.0, 0.2), (1.5, 0.3), (1.6, 0.4), (1.7, 0.5), (1.8, 0.6)])
    ctx.evaluate = lambda model: next(held_out)
    epochs = 0
    for _ in ctx.epochs():
        meter = ctx.meter()
        meter.add_totals(torch.tensor(1.0, dtype=torch.float64), torch.tensor(1), 1)
        epochs += 1
        ctx.end_epoch(meter)
    assert (ctx.stop_reason, epochs) == ("patience", 4)
    result = ctx.result("finished", "run")
    assert (result.metric, result.best_metric, ctx.best_epoch) == ("test_loss", 1.5, 1)
    assert result.best_test_acc == 0.5  # the best accuracy is still reported


def test_reports_take_the_worst_best_in_the_metrics_direction(tmp_path):
    """The paper's "best value of the worst method" rule with a loss: the highest best loss."""
    from benchmarks.engine.tracking import Tracker
    from reports.runs import load_runs
    from reports.values import training_per_run

    from .conftest import add_run

    uri = empty_store(tmp_path / "mlflow.db")
    tracker = Tracker(uri)
    for method, losses in (("async_lu", [2.0, 1.2, 1.0]), ("async_bu", [2.5, 1.5, 1.4])):
        run_id = add_run(tracker, "t", "gpt", method, 0, [0.1, 0.2, 0.3], [10, 20, 30])
        for epoch, loss in enumerate(losses):
            tracker.log_metrics(run_id, dict(test_loss=loss), epoch)
    per_run = training_per_run(uri, load_runs(uri, "t"), {"gpt": 1.5}, metric=LOSS).set_index("method")
    assert per_run.loc["async_lu", "best"] == 1.0 and per_run.loc["async_bu", "best"] == 1.4
    assert set(per_run["worst_best"]) == {1.4}  # the worse of the two bests
    assert per_run.loc["async_lu", "tta_worst_s"] == 20 and per_run.loc["async_bu", "tta_worst_s"] == 30
    assert per_run.loc["async_lu", "tta_target_s"] == 20 and per_run.loc["async_bu", "tta_target_s"] == 20
