"""IMDb sentiment (Maas et al., 2011): 25k/25k labelled reviews as token tensors, served in length buckets.

Sources, in order: `<data dir>/imdb/{train,test}.parquet` (columns `text`, `label`), else the
`stanfordnlp/imdb` parquet files fetched with `huggingface_hub` where the network allows. Reviews
are tokenised once (lower-case, `<br />` removed, a small regex tokenizer), the vocabulary is
built from the train split only, and the encoded splits are cached as int32 tensors keyed by the
parquet files' content and the tokeniser's settings, so a second load only reads that cache.

Choices the paper leaves open (000 §4.3 gives only "2-layer LSTM, 256 hidden, Adam"):
- vocabulary: the 25,000 most frequent train-split tokens seen at least twice (+ <pad>, <unk>);
- length: each review keeps its *last* `seq_len` tokens (400 cached; a review's verdict tends to
  come at its end, and the LSTM's final state reads the end last); `seq_len` in the job config
  shortens that further (the quick profile's length knob);
- batches: the epoch's seeded permutation is cut into chunks of `BUCKET_BATCHES` batches, each
  chunk sorted by length and cut into batches (so padding stays small), and the batches shuffled;
  within a batch reviews come longest first (the batch is cut to its longest review).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import torch

from core.errors import DataMissingError
from core.inputs import InputSpec

from .base import Dataset, epoch_generator, shard
from .cache import file_digest, load_or_build
from .registry import downloads_allowed, register_dataset
from .synthetic import SMOKE_TRAIN

log = logging.getLogger(__name__)

HUB_REPO = "stanfordnlp/imdb"
HUB_FILES = {
    "train": "plain_text/train-00000-of-00001.parquet",
    "test": "plain_text/test-00000-of-00001.parquet",
}
PAD, UNK = 0, 1
VOCAB_SIZE = 25_000  # most frequent train tokens kept (plus <pad> and <unk>)
MIN_COUNT = 2
CACHED_LEN = 400  # tokens kept per review in the cache (the last ones)
BUCKET_BATCHES = 50  # batches per length-sorted chunk
# Words (with inner apostrophes: "don't") and the two punctuation marks that carry sentiment.
TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[!?]")
BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
TOKENIZER_VERSION = f"regex1-{TOKEN.pattern}-v{VOCAB_SIZE}-m{MIN_COUNT}-l{CACHED_LEN}-tail"


class TokenBatch(NamedTuple):
    """Token sequences: `tokens` [batch, longest] right-padded with 0, `lengths` [batch], both on the
    training device (a model reads the lengths there: copying them per batch would sync with the host)."""

    tokens: torch.Tensor
    lengths: torch.Tensor


def tokenize(text: str) -> list[str]:
    """Lower-case word and !/? tokens of a review, its `<br />` tags removed."""
    return TOKEN.findall(BREAK.sub(" ", text).lower())


def read_parquet(path: Path) -> tuple[list[str], torch.Tensor]:
    """(texts, labels) of one split, checked: columns `text` (strings) and `label` (0 or 1)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # not a parquet file, truncated, unreadable
        raise DataMissingError(f"{path}: not a readable parquet file ({type(err).__name__}: {err})") from None
    missing = {"text", "label"} - set(table.column_names)
    if missing:
        raise DataMissingError(
            f"{path}: missing column(s) {', '.join(sorted(missing))}; expected columns text, label "
            f"(found {', '.join(table.column_names) or 'none'})"
        )
    texts = table.column("text").to_pylist()
    if not all(isinstance(t, str) for t in texts):
        raise DataMissingError(f"{path}: column text must hold strings")
    try:
        labels = torch.tensor(table.column("label").to_pylist(), dtype=torch.int64)
    except (TypeError, ValueError, RuntimeError):
        raise DataMissingError(f"{path}: column label must hold integers 0 or 1") from None
    bad = ((labels != 0) & (labels != 1)).nonzero()
    if len(bad):
        row = int(bad[0])
        raise DataMissingError(
            f"{path}: label {int(labels[row])} in row {row} ({len(bad)} rows outside {{0, 1}}); "
            "labels must be 0 (negative) or 1 (positive)"
        )
    if not texts:
        raise DataMissingError(f"{path}: no rows")
    return texts, labels


def build_vocabulary(token_lists: list[list[str]]) -> list[str]:
    """The train split's most frequent tokens (count >= MIN_COUNT), ties alphabetical: deterministic."""
    counts = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    frequent = sorted((t for t, c in counts.items() if c >= MIN_COUNT), key=lambda t: (-counts[t], t))
    return ["<pad>", "<unk>", *frequent[:VOCAB_SIZE]]


def encode(token_lists: list[list[str]], index: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> ([n, CACHED_LEN] int32 ids, left-aligned, 0-padded; [n] lengths), last tokens kept."""
    ids = torch.zeros((len(token_lists), CACHED_LEN), dtype=torch.int32)
    lengths = torch.zeros(len(token_lists), dtype=torch.int64)
    for row, tokens in enumerate(token_lists):  # once per dataset, then cached
        tail = [index.get(t, UNK) for t in tokens[-CACHED_LEN:]] or [UNK]
        ids[row, : len(tail)] = torch.tensor(tail, dtype=torch.int32)
        lengths[row] = len(tail)
    return ids, lengths


def build_cache(splits) -> dict:
    """Tokenise both checked splits, the vocabulary from train only, encode: the dict the cache stores."""
    (train_texts, train_y), (test_texts, test_y) = splits
    train_tokens = [tokenize(t) for t in train_texts]
    vocab = build_vocabulary(train_tokens)
    index = {t: i for i, t in enumerate(vocab)}
    train_x, train_len = encode(train_tokens, index)
    del train_tokens
    test_x, test_len = encode([tokenize(t) for t in test_texts], index)
    return dict(
        train_x=train_x, train_len=train_len, train_y=train_y,
        test_x=test_x, test_len=test_len, test_y=test_y, vocab=vocab,
    )  # fmt: skip


def hub_download(local: Path, download: bool = True) -> tuple[tuple[Path, Path] | None, str]:
    """(the train and test parquet files fetched from the Hub into local/hub, or None; why not)."""
    if not (download and downloads_allowed()):
        return None, "download disabled"
    try:
        from huggingface_hub import hf_hub_download

        paths = tuple(
            Path(hf_hub_download(HUB_REPO, HUB_FILES[split], repo_type="dataset", local_dir=local / "hub"))
            for split in ("train", "test")
        )
        return paths, ""
    except Exception as err:  # no network, refused host, read-only folder: all mean "not here"
        return None, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def find_parquet(data_dir: Path, download: bool = True) -> tuple[Path, Path]:
    """The train and test parquet files: <data dir>/imdb/, else fetched from the Hub."""
    local = data_dir / "imdb"
    paths = (local / "train.parquet", local / "test.parquet")
    if all(p.exists() for p in paths):
        return paths
    if any(p.exists() for p in paths):
        missing = next(p for p in paths if not p.exists())
        raise DataMissingError(
            f"{missing} is missing (IMDb needs both train.parquet and test.parquet in {local})"
        )
    fetched, why = hub_download(local, download)
    if fetched is not None:
        return fetched
    raise DataMissingError(
        f"imdb not found (looked at {paths[0]} and {paths[1]}) and could not be downloaded from the "
        f"Hugging Face Hub dataset {HUB_REPO} ({why}); put the stanfordnlp/imdb train and test parquet "
        f"files there as train.parquet and test.parquet, or point --data-dir / BENCH_DATA_DIR at a "
        f"folder holding imdb/"
    )


def load_imdb(data_dir: Path, seq_len: int = 0) -> TokenDataset:
    """IMDb from `data_dir` (or the Hub), through the content-keyed token cache."""
    train_path, test_path = find_parquet(data_dir)
    key = f"{file_digest(train_path)[:24]}-{file_digest(test_path)[:24]}-{TOKENIZER_VERSION}"
    data = load_or_build(
        "imdb",
        hashlib.sha256(key.encode()).hexdigest(),
        build_cache,
        read=lambda: (read_parquet(train_path), read_parquet(test_path)),
    )
    return TokenDataset(
        "imdb",
        data,
        num_classes=2,
        vocab_size=len(data["vocab"]),
        source=str(train_path.parent),
        seq_len=seq_len,
    )


class TokenDataset(Dataset):
    """Token sequences as one int32 tensor per split; bucketed, padded batches of (TokenBatch, labels)."""

    def __init__(
        self, name: str, data: dict, num_classes: int, vocab_size: int, source: str, seq_len: int = 0
    ):
        self.name, self.source = name, source
        self.seq_len = seq_len or data["train_x"].shape[1]
        # Keep each review's last seq_len tokens, left-aligned (rows are left-aligned with their length).
        self.train_x, self.train_len = self._truncate(data["train_x"], data["train_len"])
        self.test_x, self.test_len = self._truncate(data["test_x"], data["test_len"])
        self.train_y, self.test_y = data["train_y"], data["test_y"]
        self.vocab: list[str] = list(data.get("vocab", []))  # id -> token (empty for synthetic data)
        self.num_train, self.num_test = len(self.train_y), len(self.test_y)
        self.spec = InputSpec(num_classes=num_classes, vocab_size=vocab_size)
        # The test split sorted by length once: evaluation batches then carry little padding.
        self.test_order = torch.sort(self.test_len, descending=True, stable=True).indices
        self._device_copies: dict[torch.device, tuple] = {}

    def subset(self, num_train: int, num_test: int) -> TokenDataset:
        """The first `num_train` training and `num_test` test sequences, as a dataset of their own."""
        data = dict(
            train_x=self.train_x[:num_train], train_len=self.train_len[:num_train],
            train_y=self.train_y[:num_train], test_x=self.test_x[:num_test],
            test_len=self.test_len[:num_test], test_y=self.test_y[:num_test], vocab=self.vocab,
        )  # fmt: skip
        return TokenDataset(
            self.name, data, self.spec.num_classes, self.spec.vocab_size, self.source, self.seq_len
        )

    def _truncate(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.seq_len >= x.shape[1]:
            return x, lengths
        n = len(x)
        start = (lengths - self.seq_len).clamp(min=0)  # drop the first tokens of long reviews
        cols = (start[:, None] + torch.arange(self.seq_len)).clamp(max=x.shape[1] - 1)
        out = x.gather(1, cols)
        new_len = lengths.clamp(max=self.seq_len)
        out[torch.arange(self.seq_len)[None, :].expand(n, -1) >= new_len[:, None]] = PAD
        return out.contiguous(), new_len

    def _on(self, device: torch.device) -> tuple:
        """(train_x, train_y, train_len, test_x, test_y, test_len) on `device`, copied once:
        batches then index them there, with nothing copied from the host per batch."""
        device = torch.device(device)
        if device not in self._device_copies:
            self._device_copies[device] = tuple(
                t.to(device)
                for t in (self.train_x, self.train_y, self.train_len, self.test_x, self.test_y, self.test_len)
            )
        return self._device_copies[device]

    def batch_order(
        self, epoch: int, batch_size: int, seed: int, rank: int, world: int
    ) -> list[torch.Tensor]:
        """The epoch's batches of sample indices: seeded shuffle, length buckets, shuffled full
        batches, then the partial batch of the remaining samples (if any) last."""
        gen = epoch_generator(seed, epoch)
        order = shard(torch.randperm(self.num_train, generator=gen), rank, world)
        steps = len(order) // batch_size
        order, rest = order[: steps * batch_size], order[steps * batch_size :]
        chunk = BUCKET_BATCHES * batch_size
        batches = []
        for start in range(0, len(order), chunk):  # a few dozen chunks per epoch, each sorted at once
            part = order[start : start + chunk]
            part = part[torch.sort(self.train_len[part], descending=True, stable=True).indices]
            batches.append(part.view(-1, batch_size))
        full = torch.cat(batches)[torch.randperm(steps, generator=gen)]
        return list(full) + ([rest] if len(rest) else [])

    def _batches(self, x, y, lengths, order: list[torch.Tensor], host_lengths: torch.Tensor, positions):
        """The batches of `order` (index tensors on the CPU) at `positions`, gathered on x's device.

        Each batch is cut to its longest sequence (known on the CPU: no sync); the indices go to the
        device in one copy for all batches, not one per batch (a pageable copy waits for the stream).
        """
        sizes = [len(idx) for idx in order]
        longest = [int(host_lengths[idx].max()) for idx in order]
        on_device = torch.cat(order).to(x.device).split(sizes)
        for position in positions:
            idx = on_device[position]
            yield TokenBatch(x[idx, : longest[position]].long(), lengths[idx]), y[idx]

    def train_batches(self, epoch, batch_size, seed, device, rank=0, world=1, positions=None):
        x, y, lengths = self._on(device)[:3]
        order = self.batch_order(epoch, batch_size, seed, rank, world)
        full = self.steps_per_epoch(batch_size, world)
        yield from self._batches(
            x, y, lengths, order, self.train_len, positions if positions is not None else range(full)
        )

    def test_batches(self, batch_size, device):
        x, y, lengths = self._on(device)[3:6]
        order = list(self.test_order.split(batch_size))
        yield from self._batches(x, y, lengths, order, self.test_len, range(len(order)))


def synthetic_tokens(
    num_classes: int = 2,
    vocab_size: int = 1000,
    num_train: int = SMOKE_TRAIN,
    num_test: int = 512,
    seed: int = 0,
    lengths: tuple[int, int] = (8, 64),
) -> TokenDataset:
    """Sequences with lengths uniform in `lengths`, their class shown by the frequency of marker tokens."""
    gen = torch.Generator().manual_seed(seed)
    longest = lengths[1]

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, num_classes, (n,), generator=gen)
        seq_lengths = torch.randint(lengths[0], longest + 1, (n,), generator=gen)
        tokens = torch.randint(2 + 10 * num_classes, vocab_size, (n, longest), generator=gen)
        # About one token in eight is one of the ten markers of the sequence's class.
        markers = 2 + 10 * labels[:, None] + torch.randint(0, 10, (n, longest), generator=gen)
        tokens = torch.where(torch.rand((n, longest), generator=gen) < 0.125, markers, tokens)
        tokens[torch.arange(longest)[None, :] >= seq_lengths[:, None]] = PAD
        return tokens.to(torch.int32), seq_lengths, labels

    train_x, train_len, train_y = split(num_train)
    test_x, test_len, test_y = split(num_test)
    data = dict(
        train_x=train_x, train_len=train_len, train_y=train_y, test_x=test_x, test_len=test_len, test_y=test_y
    )
    return TokenDataset("synthetic", data, num_classes, vocab_size, source="synthetic")


__all__ = ["TokenBatch", "TokenDataset", "load_imdb", "synthetic_tokens", "tokenize"]


@register_dataset("imdb", synthetic=lambda _dir, _len: synthetic_tokens(num_classes=2, vocab_size=1000))
def imdb_reviews(data_dir: Path, seq_len: int = 0) -> TokenDataset:
    """IMDb sentiment (25k/25k reviews, 2 classes) as token sequences; `seq_len` keeps the last tokens."""
    return load_imdb(data_dir, seq_len)
