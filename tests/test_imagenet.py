"""ImageNet from an ImageFolder tree of real JPEG files: streamed batches, labels, smoke runs, errors."""

import json

import pytest
import torch

from datasets import load_dataset
from datasets.imagenet import IMAGE_SIZE, write_synthetic_imagefolder

from .conftest import run_cli
from .test_cli import one_error_line


def test_batches_from_a_jpeg_tree(tmp_path):
    write_synthetic_imagefolder(tmp_path, classes=3, train_per_class=8, val_per_class=3)
    ds = load_dataset("imagenet", tmp_path)
    assert (ds.num_train, ds.num_test, ds.spec.num_classes, ds.spec.image_size) == (24, 9, 3, IMAGE_SIZE)
    ds.workers = 2
    batches = list(ds.train_batches(0, 5, seed=1, device=torch.device("cpu")))
    assert len(batches) == 4 == ds.steps_per_epoch(5)
    for x, y in batches:
        assert x.shape == (5, 3, 224, 224) and x.dtype == torch.float32 and y.dtype == torch.int64
    # Normalised: each class is one colour plus noise, so values straddle zero with unit-ish spread.
    pixels = torch.cat([x for x, _ in batches])
    assert -1.5 < pixels.mean() < 1.5 and 0.2 < pixels.std() < 2.0
    # The same epoch and seed: the same images in the same order with the same crops.
    again = list(ds.train_batches(0, 5, seed=1, device=torch.device("cpu")))
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True)
    )
    # Chosen positions (Hogwild! workers) in-process, without DataLoader workers.
    ds.workers = 0
    picked = list(ds.train_batches(0, 5, seed=1, device=torch.device("cpu"), positions=[2]))
    assert torch.equal(picked[0][1], batches[2][1])
    labels = torch.cat([y for _, y in ds.test_batches(4, torch.device("cpu"))])
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_val_without_a_class_keeps_train_numbering(tmp_path):
    write_synthetic_imagefolder(tmp_path, classes=3, train_per_class=2, val_per_class=1)
    import shutil

    shutil.rmtree(tmp_path / "imagenet" / "val" / "n00000000")
    ds = load_dataset("imagenet", tmp_path)
    assert [y for _, y in ds.val.samples] == [1, 2]


# lapsgd streams the tree through a DataLoader inside its daemon workers, which bp's in-process
# loader does not need: bp runs with -m slow (the reader itself: test_batches_from_a_jpeg_tree).
@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.parametrize("method", [pytest.param("bp", marks=pytest.mark.slow), "lapsgd"])
def test_smoke_train_on_a_jpeg_tree_streams_it(tmp_path, store, method):
    write_synthetic_imagefolder(tmp_path, classes=4, train_per_class=40, val_per_class=4)
    proc = run_cli(
        "train", "--dataset", "imagenet", "--model", "resnet50", "--method", method, "--profile", "smoke",
        "--set", "batch_size=32", "--data-dir", str(tmp_path), "--tracking-uri", store, "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["epochs"] == 2
    from mlflow.tracking import MlflowClient

    params = MlflowClient(tracking_uri=store).get_run(result["run_id"]).data.params
    assert params["data_source"] == str(tmp_path / "imagenet") and params["num_train"] == "160"


def test_missing_imagenet_exits_1(tmp_path, store):
    proc = run_cli(
        "train", "--dataset", "imagenet", "--model", "resnet50", "--method", "bp", "--profile", "quick",
        "--data-dir", str(tmp_path), "--tracking-uri", store,
    )  # fmt: skip
    one_error_line(proc, 1, str(tmp_path / "imagenet"), "train/<wnid>")
