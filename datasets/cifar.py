"""CIFAR-10/100 from torchvision's on-disk format, an ImageFolder tree, or a tar(.gz) of one."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.errors import DataMissingError

from .base import ImageTensors, TensorImageDataset
from .cache import file_digest, load_or_build, tree_digest
from .registry import downloads_allowed, register_dataset
from .synthetic import synthetic_images

# Per-channel statistics of the training splits (the values the CIFAR literature normalises with).
CIFAR = {
    "cifar10": dict(
        folder="cifar-10-batches-py",
        num_classes=10,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
    ),
    "cifar100": dict(
        folder="cifar-100-python",
        num_classes=100,
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
    ),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
# train/<class>/<file> or test/<class>/<file>, below any leading folders of the archive.
MEMBER = re.compile(r"(?:^|.*/)(train|test)/([^/]+)/([^/]+)$")


def candidate_sources(name: str, data_dir: Path) -> list[Path]:
    """The places looked at, in order: torchvision's folder, an ImageFolder tree, a tar archive."""
    return [
        data_dir / CIFAR[name]["folder"],
        data_dir / name,
        data_dir / f"{name}-jpeg.tar.gz",
        data_dir / f"{name}.tar.gz",
        data_dir / f"{name}.tar",
    ]


def decode_image(raw: bytes, where: str) -> np.ndarray:
    """An encoded image as an HWC uint8 RGB array."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            return np.asarray(img.convert("RGB"))
    except Exception as err:
        raise DataMissingError(f"cannot decode image {where}: {err}") from None


def stack_split(samples: list[tuple[str, str, np.ndarray]], classes: list[str], where: str):
    """(class, file, HWC array) samples sorted by class then file -> NCHW uint8 and labels."""
    samples.sort(key=lambda s: (s[0], s[1]))
    shapes = {s[2].shape for s in samples}
    if len(shapes) != 1:
        raise DataMissingError(f"images in {where} have different sizes {sorted(shapes)}; expected one size")
    label_of = {c: i for i, c in enumerate(classes)}
    unknown = {s[0] for s in samples} - set(label_of)
    if unknown:
        raise DataMissingError(f"test classes {sorted(unknown)} in {where} do not appear in its train split")
    x = torch.from_numpy(np.stack([s[2] for s in samples])).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([label_of[s[0]] for s in samples], dtype=torch.int64)
    return x, y


def to_tensors(splits: dict[str, list], where: str) -> dict:
    """Decoded samples of both splits -> the cache dict (classes in alphabetical order = labels)."""
    if not splits["train"] or not splits["test"]:
        raise DataMissingError(f"{where} must hold train/<class>/<image> and test/<class>/<image> files")
    classes = sorted({s[0] for s in splits["train"]})
    train_x, train_y = stack_split(splits["train"], classes, where)
    test_x, test_y = stack_split(splits["test"], classes, where)
    return dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, classes=classes)


def read_tar(path: Path) -> dict:
    """Decode an ImageFolder tree inside a tar archive member by member, in memory (nothing extracted)."""
    splits: dict[str, list] = {"train": [], "test": []}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                match = MEMBER.match(member.name)
                if not member.isfile() or not match or not member.name.lower().endswith(IMAGE_SUFFIXES):
                    continue  # links, folders and other files are never followed
                split, cls, fname = match.groups()
                raw = tar.extractfile(member).read()
                splits[split].append((cls, fname, decode_image(raw, f"{path}:{member.name}")))
    except tarfile.ReadError:  # tarfile lists each decompressor it tried, one line each: say it once
        empty = path.stat().st_size == 0
        what = "is empty" if empty else "is not a tar archive (plain, gzip, bzip2 or xz)"
        raise DataMissingError(f"cannot read archive {path}: it {what}") from None
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataMissingError(f"cannot read archive {path}: {' '.join(str(err).split())}") from None
    return to_tensors(splits, str(path))


def read_tree(root: Path) -> dict:
    """Decode an ImageFolder tree root/{train,test}/<class>/<image>."""
    splits: dict[str, list] = {"train": [], "test": []}
    for split in splits:
        for path in sorted((root / split).glob("*/*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                splits[split].append(
                    (path.parent.name, path.name, decode_image(path.read_bytes(), str(path)))
                )
    return to_tensors(splits, str(root))


def read_torchvision(name: str, data_dir: Path) -> dict:
    """Read torchvision's pickled CIFAR batches through its checksummed loader."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    try:
        train, test = cls(str(data_dir), train=True), cls(str(data_dir), train=False)
    except RuntimeError as err:  # torchvision's integrity check failed
        raise DataMissingError(f"{data_dir / CIFAR[name]['folder']}: {err}") from None

    def nchw(ds):
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)

    (train_x, train_y), (test_x, test_y) = nchw(train), nchw(test)
    return dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, classes=list(train.classes))


def try_download(name: str, data_dir: Path) -> str | None:
    """Download through torchvision where the network allows; why it could not, else None."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    created = [p for p in (data_dir, *data_dir.parents) if not p.exists()]
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        cls(str(data_dir), train=True, download=True)
        cls(str(data_dir), train=False, download=True)
        return None
    except Exception as err:  # no network, a read-only folder, a refused host: all mean "not here"
        for folder in created:  # a failed download leaves no folders behind (the partial file is gone too)
            shutil.rmtree(folder, ignore_errors=True)
        return f"{type(err).__name__}: {err}"


def load_cifar(name: str, data_dir: Path, download: bool = True) -> TensorImageDataset:
    """CIFAR `name` from the first source found under `data_dir`, decoded once into a tensor cache."""
    candidates = candidate_sources(name, data_dir)
    found = next((p for p in candidates if p.exists()), None)
    why = "download disabled"
    if found is None and download and downloads_allowed():
        why = try_download(name, data_dir)
        found = candidates[0] if why is None else None
    if found is None:
        looked = ", ".join(str(p) for p in candidates)
        raise DataMissingError(
            f"{name} not found (looked at {looked}) and could not be downloaded ({why}); get it with "
            f"torchvision.datasets.{name.upper()}(root='{data_dir}', download=True) "
            f"on a machine with internet, or point --data-dir / BENCH_DATA_DIR at a folder holding it"
        )
    expected = CIFAR[name]["num_classes"]

    def checked(data: dict) -> dict:
        """The decoded source, rejected before it is cached if it is not `name`."""
        if len(data["classes"]) != expected:
            raise DataMissingError(f"{found} holds {len(data['classes'])} classes; {name} has {expected}")
        return data

    if found == candidates[0]:
        key = "tv-" + "".join(file_digest(p)[:16] for p in sorted(found.iterdir()) if p.is_file())
        data = load_or_build(name, key, lambda: checked(read_torchvision(name, data_dir)))
    elif found.is_dir():
        data = load_or_build(name, "tree-" + tree_digest(found), lambda: checked(read_tree(found)))
    else:
        data = load_or_build(name, "tar-" + file_digest(found), lambda: checked(read_tar(found)))
    tensors = ImageTensors(
        data["train_x"], data["train_y"], data["test_x"], data["test_y"], list(data["classes"])
    )
    meta = CIFAR[name]
    return TensorImageDataset(name, tensors, meta["mean"], meta["std"], source=str(found))


@register_dataset("cifar10", synthetic=lambda _dir, _len: synthetic_images(num_classes=10, image_size=32))
def cifar10(data_dir: Path, seq_len: int = 0) -> TensorImageDataset:
    """CIFAR-10 (50k/10k, 32x32, 10 classes)."""
    return load_cifar("cifar10", data_dir)


@register_dataset("cifar100", synthetic=lambda _dir, _len: synthetic_images(num_classes=100, image_size=32))
def cifar100(data_dir: Path, seq_len: int = 0) -> TensorImageDataset:
    """CIFAR-100 (50k/10k, 32x32, 100 classes)."""
    return load_cifar("cifar100", data_dir)
