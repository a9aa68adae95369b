"""Decode once, load fast: uint8 tensor caches keyed by the source's content."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Where decoded caches live: $BENCH_CACHE_DIR, else datasets/cache/ (git-ignored)."""
    return Path(os.environ.get("BENCH_CACHE_DIR") or PROJECT_ROOT / "datasets" / "cache")


def read_entries(name: str) -> dict:
    """The entries of the JSON file `name` in the cache folder (measurements kept between commands);
    {} where there is none or it cannot be read."""
    try:
        return json.loads((cache_dir() / f"{name}.json").read_text())
    except (OSError, ValueError):
        return {}


def keep_entry(name: str, key: str, value: dict) -> None:
    """Add one entry to the JSON file `name` in the cache folder (written whole, then renamed into
    place); a file that cannot be written only costs measuring again."""
    entries = {**read_entries(name), key: value}
    path = cache_dir() / f"{name}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError as err:
        log.warning("cannot write %s (%s)", path, err)


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def tree_digest(root: Path) -> str:
    """A key for a directory tree from its files' relative paths, sizes and modification times.

    Reading 60,000 small files to hash them would cost more than the 2 s a cached load may take;
    any edit, addition or removal changes a size, an mtime or the list.
    """
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def load_or_build(name: str, key: str, build, read=None) -> dict:
    """The cached dict of tensors for (name, key), building and saving it on a miss.

    `read` (optional) reads and checks the source on a miss, before anything is logged; `build`
    then takes its result.
    """
    path = cache_dir() / f"{name}-{key[:20]}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception as err:  # a truncated or foreign file: rebuild it
            log.warning("ignoring unreadable cache %s (%s)", path, err)
    source = read() if read is not None else None
    log.info("decoding %s once into %s", name, path)
    data = build(source) if read is not None else build()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(data, tmp)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    except (OSError, RuntimeError) as err:  # a full disk (torch.save raises RuntimeError), no rights
        tmp.unlink(missing_ok=True)
        log.warning("cannot write the cache %s (%s): the decoded data is used uncached", path, err)
    return data
