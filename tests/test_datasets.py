import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import DataMissingError
from datasets import load_dataset
from datasets.base import shard
from datasets.synthetic import synthetic_images

from .conftest import SHARED_DATA

CLASSES = [f"c{i}" for i in range(10)]


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def fake_images(n_per_class: int, seed: int):
    rng = np.random.default_rng(seed)
    return {
        (split, c, i): rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        for split in ("train", "test")
        for c in CLASSES
        for i in range(n_per_class)
    }


def write_tar(path, images, prefix="cifar10/"):
    with tarfile.open(path, "w:gz") as tar:
        for (split, c, i), arr in images.items():
            data = png(arr)
            info = tarfile.TarInfo(f"{prefix}{split}/{c}/{i:04d}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(f"{prefix}train/c0/evil.png")  # a link out of the tree is never followed
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)


def check_pixels(ds, images):
    # Labels are the alphabetical class order; samples are sorted by class then file name.
    assert ds.num_train == 30 and ds.num_test == 30 and ds.classes == CLASSES
    assert ds.tensors.train_y.tolist() == [c for c in range(10) for _ in range(3)]
    assert torch.equal(ds.tensors.train_x[4], torch.from_numpy(images[("train", "c1", 1)]).permute(2, 0, 1))
    assert torch.equal(ds.tensors.test_x[29], torch.from_numpy(images[("test", "c9", 2)]).permute(2, 0, 1))


def test_tar_imagefolder_is_decoded_exactly_and_cached(tmp_path):
    images = fake_images(3, seed=1)
    write_tar(tmp_path / "cifar10-jpeg.tar.gz", images)
    ds = load_dataset("cifar10", tmp_path)
    check_pixels(ds, images)
    again = load_dataset("cifar10", tmp_path)
    assert torch.equal(again.tensors.train_x, ds.tensors.train_x)


def test_cache_key_follows_content(tmp_path):
    write_tar(tmp_path / "cifar10.tar.gz", fake_images(3, seed=1))
    first = load_dataset("cifar10", tmp_path)
    write_tar(tmp_path / "cifar10.tar.gz", fake_images(3, seed=2))
    second = load_dataset("cifar10", tmp_path)
    assert not torch.equal(first.tensors.train_x, second.tensors.train_x)


def test_imagefolder_tree(tmp_path):
    images = fake_images(3, seed=3)
    for (split, c, i), arr in images.items():
        (tmp_path / "cifar10" / split / c).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(tmp_path / "cifar10" / split / c / f"{i:04d}.png")
    check_pixels(load_dataset("cifar10", tmp_path), images)


def test_missing_data_names_the_paths(tmp_path, monkeypatch):
    monkeypatch.setattr("datasets.cifar.try_download", lambda name, data_dir: "no network")
    with pytest.raises(DataMissingError) as err:
        load_dataset("cifar100", tmp_path)
    assert str(tmp_path / "cifar-100-python") in str(err.value) and "download" in str(err.value)


def test_malformed_archive_is_a_data_error(tmp_path):
    (tmp_path / "cifar10.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(DataMissingError, match="cannot read archive") as err:
        load_dataset("cifar10", tmp_path)
    assert str(err.value).endswith("is not a tar archive (plain, gzip, bzip2 or xz)")  # one line, not 5
    (tmp_path / "cifar10.tar.gz").write_bytes(b"")
    with pytest.raises(DataMissingError, match="it is empty$"):
        load_dataset("cifar10", tmp_path)


def test_a_cache_that_cannot_be_written_costs_only_the_cache(tmp_path, monkeypatch, caplog):
    """A full disk (torch.save raises RuntimeError there) or no rights: the decoded data is used."""
    from datasets.cache import load_or_build

    def full_disk(obj, path):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(torch, "save", full_disk)
    data = load_or_build("toy", "k" * 20, lambda: {"x": torch.ones(2)})
    assert torch.equal(data["x"], torch.ones(2)) and "cannot write the cache" in caplog.text
    assert list(tmp_path.iterdir()) == []  # no half-written file is left


def reference_augment(x, offsets, flips, pad=4):
    """Per-sample crop and flip, the way torchvision's RandomCrop(padding=4) + flip do it."""
    out = []
    for img, (oy, ox), flip in zip(x, offsets.tolist(), flips.tolist(), strict=True):
        padded = torch.nn.functional.pad(img, (pad,) * 4)
        crop = padded[:, oy : oy + 32, ox : ox + 32]
        out.append(crop.flip(-1) if flip else crop)
    return torch.stack(out)


def test_batched_crop_and_flip_equals_per_sample_reference():
    ds = synthetic_images(num_train=64, num_test=8)
    gen = torch.Generator().manual_seed(0)
    x = ds.tensors.train_x[:64]
    offsets = torch.randint(0, 9, (64, 2), generator=gen)
    flips = torch.rand(64, generator=gen) < 0.5
    assert torch.equal(ds.crop_and_flip(x, offsets, flips), reference_augment(x, offsets, flips))


def test_normalisation():
    ds = synthetic_images(num_train=64, num_test=64)
    x, _ = next(ds.test_batches(64, torch.device("cpu")))
    expected = (ds.tensors.test_x.float() / 255 - torch.tensor(ds.mean).view(1, 3, 1, 1)) / torch.tensor(
        ds.std
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(x, expected)


def test_batches_are_deterministic_shuffled_and_sharded():
    ds = synthetic_images(num_train=256, num_test=8)
    cpu = torch.device("cpu")

    def epoch(e, seed=0, rank=0, world=1):
        return list(ds.train_batches(e, 32, seed, cpu, rank, world))

    a, b = epoch(0), epoch(0)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True))
    assert not torch.equal(epoch(1)[0][0], a[0][0]) and not torch.equal(epoch(0, seed=1)[0][0], a[0][0])
    assert len(a) == 8 and all(x.shape == (32, 3, 32, 32) and x.dtype == torch.float32 for x, _ in a)
    # Shards of a permutation are disjoint and together cover it; each rank gets as many batches.
    perm = torch.randperm(256)
    parts = [shard(perm, r, 3) for r in range(3)]
    assert sum(len(p) for p in parts) == 255 and len(set(torch.cat(parts).tolist())) == 255
    assert len(epoch(0, rank=0, world=2)) == len(epoch(0, rank=1, world=2)) == 4


def test_the_position_after_the_full_batches_is_the_partial_batch():
    """What a DataLoader with drop_last=False trains on (LAP-SGD's authors_code reading): 100 samples
    per shard in batches of 32 are 3 full batches and one of 4, in images and token sequences alike."""
    from datasets.imdb import synthetic_tokens

    cpu = torch.device("cpu")
    for ds in (synthetic_images(num_train=200, num_test=8), synthetic_tokens(num_train=200, num_test=8)):
        assert (
            ds.steps_per_epoch(32, world=2) == 3 and ds.steps_per_epoch(32, world=2, keep_partial=True) == 4
        )
        assert len(list(ds.train_batches(0, 32, 0, cpu, rank=1, world=2))) == 3  # by default: full ones
        batches = list(ds.train_batches(0, 32, 0, cpu, rank=1, world=2, positions=range(4)))
        assert [len(y) for _, y in batches] == [32, 32, 32, 4]


@pytest.mark.ci
@pytest.mark.slow  # real CIFAR-10 through the whole loader: ~13 s, in CI
@pytest.mark.skipif(
    not (SHARED_DATA / "cifar10-jpeg.tar.gz").exists(), reason="real CIFAR-10 not on this machine"
)
def test_real_cifar10(monkeypatch):
    ds = load_dataset("cifar10", SHARED_DATA)
    assert (ds.num_train, ds.num_test) == (50_000, 10_000)
    assert ds.classes[0] == "airplane" and ds.classes[9] == "truck"
    assert torch.bincount(ds.tensors.train_y).tolist() == [5000] * 10
    mean = ds.tensors.train_x.float().mean(dim=(0, 2, 3)) / 255
    torch.testing.assert_close(mean, torch.tensor([0.4913, 0.4821, 0.4465]), atol=2e-3, rtol=0)
    # A second load reads the tensor cache and decodes nothing.
    monkeypatch.setattr("datasets.cifar.read_tar", lambda path: pytest.fail("decoded twice"))
    assert torch.equal(load_dataset("cifar10", SHARED_DATA).tensors.test_x, ds.tensors.test_x)


def test_a_rejected_archive_is_not_cached(tmp_path, monkeypatch):
    """An archive that is not CIFAR-10 (3 classes) exits 1 naming it, and leaves no cache behind."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))
    rng = np.random.default_rng(0)
    three = {(s, c, i): rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
             for s in ("train", "test") for c in CLASSES[:3] for i in range(2)}  # fmt: skip
    write_tar(tmp_path / "cifar10-jpeg.tar.gz", three)
    with pytest.raises(DataMissingError, match="holds 3 classes; cifar10 has 10"):
        load_dataset("cifar10", tmp_path)
    assert not cache.exists() or not list(cache.rglob("*.pt"))  # nothing cached
