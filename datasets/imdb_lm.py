"""`imdb-lm`: the IMDb review text as a byte-level language-modelling corpus (the suite's extension).

The same parquet files, data folder, download and malformed-file errors as `imdb`. Markup is
removed (`<br />` and any other tag become a space, runs of spaces one space), reviews are joined
by a newline and kept as their UTF-8 bytes: a vocabulary of 256, no tokeniser to choose or fit.

- Train: the train split's text, except every `HOLD_EVERY`-th review (1,000 of 25,000: both
  labels, the whole file), held apart as validation text.
- Held-out evaluation (the `test_*` metrics, early stopping): the test split's text where
  `test.parquet` is present, else the validation text; the run's `source` says which.
  It is `EVAL_TOKENS` bytes in fixed windows, drawn once with a fixed seed (the same windows for
  every run and method): every position of a window is scored (context from 1 to the window length).
- An epoch is `WINDOWS_PER_EPOCH` windows of the context length at random offsets in the training
  text, drawn from the epoch's seeded generator (1 MiB at context 128, a 32nd of the text): the
  interval of evaluation and early stopping, as the paper's epochs are for its datasets.
Batches are gathered as tensors on the training device: inputs [batch, context] and the next
bytes flattened to [batch x context] (models/gpt.py says why).
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from pathlib import Path

import torch

from core.errors import DataMissingError
from core.inputs import InputSpec
from core.metric import BITS_PER_BYTE

from .base import Dataset, epoch_generator, shard
from .cache import file_digest, load_or_build
from .imdb import HUB_REPO, hub_download, read_parquet
from .registry import register_dataset

VOCAB = 256  # bytes
DEFAULT_CONTEXT = 128
HOLD_EVERY = 25
WINDOWS_PER_EPOCH = 8192
EVAL_TOKENS = 2**17  # held-out bytes scored per evaluation (1,024 windows at context 128)
EVAL_SEED = 20_251_124  # the held-out windows' generator: one fixed draw for every run
MARKUP = re.compile(r"<[a-zA-Z/][^>]*>")
SPACES = re.compile(r"[ \t]+")
TEXT_VERSION = f"bytes1-{MARKUP.pattern}-hold{HOLD_EVERY}"


def clean(text: str) -> str:
    """A review without markup, its runs of spaces collapsed."""
    return SPACES.sub(" ", MARKUP.sub(" ", text)).strip()


def to_bytes(texts: list[str]) -> torch.Tensor:
    """Reviews, cleaned and joined by newlines, as one uint8 tensor of their UTF-8 bytes."""
    joined = "\n".join(clean(t) for t in texts).encode("utf-8")
    return torch.frombuffer(bytearray(joined), dtype=torch.uint8)


def build_corpus(splits) -> dict:
    """The cached tensors: training bytes, validation bytes, and test bytes (empty without a test file)."""
    train_texts, test_texts = splits
    held = set(range(0, len(train_texts), HOLD_EVERY))
    return dict(
        train=to_bytes([t for i, t in enumerate(train_texts) if i not in held]),
        validation=to_bytes([train_texts[i] for i in sorted(held)]),
        test=to_bytes(test_texts) if test_texts else torch.zeros(0, dtype=torch.uint8),
    )


def find_text(data_dir: Path) -> tuple[Path, Path | None]:
    """The train parquet file (required) and the test one (optional): <data dir>/imdb/, else the Hub."""
    local = data_dir / "imdb"
    train, test = local / "train.parquet", local / "test.parquet"
    if train.exists():
        return train, test if test.exists() else None
    fetched, why = hub_download(local)
    if fetched is not None:
        return fetched
    raise DataMissingError(
        f"imdb-lm not found (looked at {train}) and could not be downloaded from the Hugging Face Hub "
        f"dataset {HUB_REPO} ({why}); put the stanfordnlp/imdb train parquet file there as train.parquet "
        f"(and test.parquet to score on the test text), or point --data-dir / BENCH_DATA_DIR at a folder "
        f"holding imdb/"
    )


def held_out_windows(text: torch.Tensor, context: int, tokens: int = EVAL_TOKENS) -> torch.Tensor:
    """[n, context + 1] fixed windows of `text` (n x context ~ `tokens`), from the fixed seed."""
    if len(text) <= context + 1:
        raise DataMissingError(f"the held-out text has {len(text)} bytes, fewer than one window of {context}")
    count = max(1, tokens // context)
    starts = torch.randint(
        0, len(text) - context - 1, (count,), generator=torch.Generator().manual_seed(EVAL_SEED)
    )
    return text[starts[:, None] + torch.arange(context + 1)]


class ByteStreamDataset(Dataset):
    """Next-byte prediction on a byte stream: random training windows, fixed held-out windows."""

    metric = BITS_PER_BYTE

    def __init__(
        self,
        name: str,
        train: torch.Tensor,
        held_out: torch.Tensor,
        source: str,
        context: int = 0,
        windows_per_epoch: int = WINDOWS_PER_EPOCH,
        eval_tokens: int = EVAL_TOKENS,
    ):
        self.name, self.source = name, source
        self.context = context or DEFAULT_CONTEXT
        if len(train) <= self.context + 1:
            raise DataMissingError(
                f"{name}: {len(train)} training bytes, fewer than one window of {self.context}"
            )
        self.train_text = train
        self.test_windows = held_out_windows(held_out, self.context, eval_tokens)
        self.num_train, self.num_test = windows_per_epoch, len(self.test_windows)
        self.spec = InputSpec(num_classes=VOCAB, vocab_size=VOCAB, context=self.context)
        self.offsets = torch.arange(self.context + 1)
        self._device_copies: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def subset(self, num_train: int, num_test: int) -> ByteStreamDataset:
        """The same text with `num_train` training windows an epoch and the first `num_test`
        held-out windows (the run-claims calibration's short epochs)."""
        part = copy.copy(self)
        part.test_windows = self.test_windows[:num_test]
        part.num_train, part.num_test = num_train, len(part.test_windows)
        part._device_copies = {}
        return part

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(training bytes, window offsets, held-out windows) on `device`, copied there once."""
        device = torch.device(device)
        if device not in self._device_copies:
            self._device_copies[device] = tuple(
                t.to(device) for t in (self.train_text, self.offsets, self.test_windows)
            )
        return self._device_copies[device]

    @property
    def contents(self) -> str:
        """What it holds, in a few words (`doctor`)."""
        held = "test text" if "test text" in self.source else "validation text"
        return f"{len(self.train_text) / 1e6:.1f} MB of training text, scored on the {held}"

    @staticmethod
    def split(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 windows [n, context + 1] -> (inputs [n, context], next bytes [n x context]), int64."""
        windows = windows.long()
        return windows[:, :-1], windows[:, 1:].reshape(-1)

    def train_batches(self, epoch, batch_size, seed, device, rank=0, world=1, positions=None):
        text, offsets, _ = self._on(device)
        gen = epoch_generator(seed, epoch)
        starts = torch.randint(0, len(self.train_text) - self.context - 1, (self.num_train,), generator=gen)
        starts = shard(starts, rank, world).to(text.device)
        if positions is None:
            positions = range(len(starts) // batch_size)
        for position in positions:
            first = starts[position * batch_size : (position + 1) * batch_size]
            yield self.split(text[first[:, None] + offsets])

    def test_batches(self, batch_size, device):
        windows = self._on(device)[2]
        for start in range(0, len(windows), batch_size):
            yield self.split(windows[start : start + batch_size])

    def held_out(self, loss: float, accuracy: float) -> dict[str, float]:
        """The held-out metrics: mean loss per byte (nats), next-byte accuracy, bits per byte, perplexity."""
        return dict(
            test_loss=loss,
            test_acc=accuracy,
            test_bpb=loss / math.log(2),
            test_ppl=math.exp(min(loss, 50.0)),
        )


def load_imdb_lm(data_dir: Path, seq_len: int = 0) -> ByteStreamDataset:
    """The IMDb text from `data_dir` (or the Hub), through a content-keyed cache of its bytes."""
    train_path, test_path = find_text(data_dir)
    digests = [file_digest(p)[:24] for p in (train_path, test_path) if p is not None]
    key = hashlib.sha256(f"{'-'.join(digests)}-{TEXT_VERSION}".encode()).hexdigest()

    def read() -> tuple[list[str], list[str]]:
        train = read_parquet(train_path)[0]
        return train, read_parquet(test_path)[0] if test_path is not None else []

    data = load_or_build("imdb-lm", key, build_corpus, read=read)
    on_test = len(data["test"]) > 0
    held_out = data["test"] if on_test else data["validation"]
    where = (
        f"{test_path} (test text)" if on_test else f"{train_path} (validation: every {HOLD_EVERY}th review)"
    )
    return ByteStreamDataset("imdb-lm", data["train"], held_out, source=where, context=seq_len)


def synthetic_bytes(seq_len: int = 0, length: int = 1 << 18, seed: int = 0) -> ByteStreamDataset:
    """A learnable byte stream in imdb-lm's shape: a random order-1 Markov chain over 32 symbols,
    each with 4 likely successors (about 2 bits per byte for a model that learns the chain)."""
    gen = torch.Generator().manual_seed(seed)
    successors = torch.randint(0, 32, (32, 4), generator=gen)
    choices = torch.randint(0, 4, (length,), generator=gen)
    table, states, state = successors.tolist(), [], 0
    for pick in choices.tolist():  # once, at smoke size (0.1 s)
        state = table[state][pick]
        states.append(97 + state)  # printable bytes from "a"
    stream = torch.tensor(states, dtype=torch.uint8)
    split = length * 7 // 8
    context = seq_len or 32
    return ByteStreamDataset(
        "synthetic", stream[:split], stream[split:], "synthetic", context, windows_per_epoch=1024,
        eval_tokens=8192,
    )  # fmt: skip


@register_dataset("imdb-lm", synthetic=lambda _data_dir, seq_len: synthetic_bytes(seq_len))
def imdb_lm(data_dir: Path, seq_len: int = 0) -> ByteStreamDataset:
    """IMDb review text as bytes for next-byte prediction; `seq_len` is the window length (128)."""
    return load_imdb_lm(data_dir, seq_len)
