import math
from dataclasses import replace

import pytest

from benchmarks.engine.build import build_job, method_defaults
from benchmarks.profiles import hyperparameters
from core.config import TrainConfig, apply_settings, parse_settings
from core.errors import UserError
from core.schedule import lr_at


def test_overrides_are_typed():
    settings = parse_settings(["lr=0.1", "batch_size=64", "nesterov=true", " optimizer =adam"], [TrainConfig])
    assert settings == dict(lr=0.1, batch_size=64, nesterov=True, optimizer="adam")
    (cfg,), keys = apply_settings([TrainConfig()], settings)
    assert keys == {"lr", "batch_size", "nesterov", "optimizer"}
    assert (cfg.lr, cfg.batch_size, cfg.nesterov, cfg.optimizer) == (0.1, 64, True, "adam")


@pytest.mark.parametrize("item", ["lr=abc", "batch_size=1.5", "nesterov=maybe", "lr=nan"])
def test_bad_values_are_user_errors(item):
    with pytest.raises(UserError, match="expected a"):
        parse_settings([item], [TrainConfig])


def test_unknown_key_names_valid_keys():
    with pytest.raises(UserError, match="valid keys: .*batch_size"):
        parse_settings(["learning_rate=0.1"], [TrainConfig])
    with pytest.raises(UserError, match="valid keys: .*batch_size"):  # typed settings are checked too
        apply_settings([TrainConfig()], {"learning_rate": 0.1})


def test_validate_rejects_impossible_values():
    cfg = TrainConfig(batch_size=0)
    with pytest.raises(UserError, match="batch_size must be > 0"):
        cfg.validate()


@pytest.mark.parametrize("device", ["gpu", "tpu", "cuda:x"])
def test_unknown_devices_are_user_errors(device):
    with pytest.raises(UserError, match="device"):
        TrainConfig(device=device).validate()


def test_paper_profile_is_table_10():
    cfg = hyperparameters("cifar10", "resnet18", "paper")
    assert (
        cfg.batch_size,
        cfg.lr,
        cfg.momentum,
        cfg.t_max,
        cfg.warmup_epochs,
        cfg.warmup_lr,
        cfg.weight_decay,
    ) == (128, 0.015, 0.9, 105, 3, 0.005, 0.005)
    assert hyperparameters("cifar100", "resnet50", "paper").t_max == 120
    assert hyperparameters("imagenet", "resnet50", "paper").batch_size == 300


def test_schedule_warmup_then_cosine():
    cfg = TrainConfig(lr=0.015, warmup_lr=0.005, warmup_epochs=5, t_max=100)
    assert lr_at(0, cfg) == pytest.approx(0.005)
    assert lr_at(2.5, cfg) == pytest.approx(0.010)
    assert lr_at(5, cfg) == pytest.approx(0.015)
    assert lr_at(55, cfg) == pytest.approx(0.0075)
    assert lr_at(105, cfg) == pytest.approx(0.0, abs=1e-12)
    quick = hyperparameters("cifar10", "resnet18", "quick")
    assert lr_at(quick.max_epochs, quick) == pytest.approx(0.0, abs=1e-12)  # quick anneals to zero at its end
    assert math.isclose(lr_at(quick.warmup_epochs, quick), quick.lr)


def test_step_schedule_decays_tenfold_at_half_and_three_quarters():
    cfg = TrainConfig(lr=0.1, warmup_lr=0.01, warmup_epochs=1, max_epochs=8, lr_schedule="step")
    assert lr_at(0.5, cfg) == pytest.approx(0.055)  # the same linear warm-up
    assert [lr_at(e, cfg) for e in (1, 3.99, 4, 5.99, 6, 7.99)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )


def test_plsgd_trains_as_002_table_1_unless_the_user_says_otherwise():
    """Warm-up from the profile's LR to LR x B_loc/128 x Q, then Lin et al.'s steps; nothing else changes."""
    quick = hyperparameters("cifar10", "resnet18", "quick")
    ours = build_job("t", "cifar10", "resnet18", "plsgd", "quick", devices=2).config
    assert (ours.lr_schedule, ours.warmup_lr, ours.lr) == ("step", quick.lr, pytest.approx(2 * quick.lr))
    assert replace(ours, lr_schedule="cosine", warmup_lr=quick.warmup_lr, lr=quick.lr) == quick
    half_batch = method_defaults(replace(quick, batch_size=64), "plsgd", 3)
    assert half_batch.lr == pytest.approx(quick.lr * 64 / 128 * 3)
    mine = method_defaults(replace(quick, lr=0.05), "plsgd", 2, user_keys=frozenset({"lr", "lr_schedule"}))
    assert (mine.lr, mine.warmup_lr, mine.lr_schedule) == (0.05, 0.05, "cosine")
    adam = build_job("t", "imdb", "lstm", "plsgd", "quick", devices=2).config
    assert adam.lr == hyperparameters("imdb", "lstm", "quick").lr  # the scaling rule is SGD's
    assert build_job("t", "cifar10", "resnet18", "ddp", "quick", devices=2).config == quick  # 000: alike
    with pytest.raises(UserError, match="lr_schedule must be one of cosine, step"):
        TrainConfig(lr_schedule="linear").validate()


def test_run_devices_go_through_the_job_builder():
    """`run --devices N` reaches every multi-device method through build_job; bp stays on one."""
    from dataclasses import FrozenInstanceError

    from benchmarks.tables import TABLES

    jobs = TABLES["table7"].jobs("quick", None, 3)
    assert {j.method: j.devices for j in jobs} == {"bp": 1, "async_lu": 3, "ddp": 3}
    with pytest.raises(FrozenInstanceError):
        jobs[0].devices = 2  # a job is not changed after it is built
    with pytest.raises(UserError, match="--devices must be >= 1"):
        TABLES["table7"].jobs("quick", None, 0)
    with pytest.raises(UserError, match="--epochs and --set max_epochs"):
        build_job("t", "cifar10", "resnet18", "bp", "quick", epochs=3, settings={"max_epochs": 2})
