"""IMDb and the LSTM: parquet checks, tokenising, the train-only vocabulary, the cache, bucketed
batches, packing, Adam in the methods that apply their own updates, and the CLI on it."""

import json
import time
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F

from benchmarks.engine.runner import run_job
from benchmarks.engine.tracking import NullTracker
from core.errors import DataMissingError
from datasets import imdb as imdb_module
from datasets import load_dataset
from datasets.imdb import PAD, UNK, TokenBatch, synthetic_tokens, tokenize
from methods.lapsgd import LapConfig
from models.lstm import build_lstm

from .conftest import run_cli, smoke_job
from .test_async import assert_one_pass_in_flight_is_backprop
from .test_cli import one_error_line

TRAIN = [
    ("A great film.<br /><br />Great acting, GREAT story!", 1),
    ("Terrible. I didn't like it at all, terrible acting", 0),
    ("great great fun, would watch again", 1),
    ("boring and terrible; a waste", 0),
] * 8
TEST = [("great fun but unseenword", 1), ("terrible waste", 0)] * 4


def write_imdb(root, train_rows=TRAIN, test_rows=TEST, overrides=None):
    folder = root / "imdb"
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train_rows), ("test", test_rows)):
        columns = {"text": [t for t, _ in rows], "label": [y for _, y in rows]}
        columns.update((overrides or {}).get(name, {}))
        pq.write_table(pa.table(columns), folder / f"{name}.parquet")
    return root


def test_tokenize_strips_breaks_and_lower_cases():
    assert tokenize("A great film.<br /><br />Didn't you LIKE it?!") == [
        "a", "great", "film", "didn't", "you", "like", "it", "?", "!",
    ]  # fmt: skip


def test_vocabulary_from_train_only_and_tail_kept(tmp_path):
    ds = load_dataset("imdb", write_imdb(tmp_path))
    assert ds.num_train == len(TRAIN) and ds.num_test == len(TEST) and ds.spec.num_classes == 2
    vocab = ds.vocab
    assert vocab[:2] == ["<pad>", "<unk>"] and "great" in vocab and "unseenword" not in vocab
    index = {t: i for i, t in enumerate(vocab)}
    # Test row 0: "great fun but unseenword" -> "but" occurs once in train (below MIN_COUNT): <unk>.
    row = ds.test_x[(ds.test_len == 4).nonzero()[0, 0]]
    assert row[:4].tolist() == [index["great"], index["fun"], UNK, UNK] and (row[4:] == PAD).all()
    # seq_len keeps each review's last tokens.
    short = load_dataset("imdb", tmp_path, seq_len=3)
    first = tokenize(TRAIN[0][0])
    assert short.train_x.shape[1] == 3
    assert short.train_x[0].tolist() == [index[t] for t in first[-3:]] and short.train_len.max() == 3


def test_second_load_reads_the_cache(tmp_path, monkeypatch):
    write_imdb(tmp_path)
    first = load_dataset("imdb", tmp_path)
    monkeypatch.setattr(imdb_module, "build_cache", lambda *a: pytest.fail("rebuilt a cached dataset"))
    started = time.perf_counter()
    again = load_dataset("imdb", tmp_path)
    print(f"cached load: {time.perf_counter() - started:.3f} s")
    assert torch.equal(first.train_x, again.train_x) and torch.equal(first.test_y, again.test_y)
    # Different content is a different key: the edited file is tokenised again.
    monkeypatch.undo()
    write_imdb(tmp_path, test_rows=[("great", 1), ("terrible", 0)])
    assert load_dataset("imdb", tmp_path).num_test == 2


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"train": {"label": [2] * len(TRAIN)}}, ["train.parquet", "label 2", "0 (negative) or 1"]),
        ({"test": {"label": [-1] * len(TEST)}}, ["test.parquet", "label -1"]),
    ],
)
def test_labels_outside_0_1_exit_1(tmp_path, store, overrides, needles):
    write_imdb(tmp_path, overrides=overrides)
    proc = run_cli(
        *smoke_imdb("bp", "--profile", "quick"), "--data-dir", str(tmp_path), "--tracking-uri", store
    )
    one_error_line(proc, 1, *needles)


def test_wrong_columns_missing_file_and_garbage_exit_1(tmp_path, store):
    folder = tmp_path / "imdb"
    folder.mkdir()
    pq.write_table(pa.table({"review": ["x"], "sentiment": [1]}), folder / "train.parquet")
    args = (*smoke_imdb("bp", "--profile", "quick"), "--data-dir", str(tmp_path), "--tracking-uri", store)
    one_error_line(run_cli(*args), 1, "test.parquet is missing")
    pq.write_table(pa.table({"text": ["x"], "label": [1]}), folder / "test.parquet")
    one_error_line(
        run_cli(*args), 1, "train.parquet", "missing column(s) label, text", "found review, sentiment"
    )
    (folder / "train.parquet").write_bytes(b"not a parquet file")
    one_error_line(run_cli(*args), 1, "train.parquet", "not a readable parquet file")


def test_no_imdb_anywhere_exits_1_naming_where_it_looked(tmp_path, store):
    proc = run_cli(
        *smoke_imdb("bp", "--profile", "quick"),
        "--data-dir",
        str(tmp_path),
        "--tracking-uri",
        store,
        env={"HF_HUB_OFFLINE": "1"},
    )
    one_error_line(proc, 1, str(tmp_path / "imdb" / "train.parquet"), "stanfordnlp/imdb")


def test_batches_are_length_bucketed_and_cover_the_epoch():
    ds = synthetic_tokens(num_train=1000, num_test=100)
    batches = list(ds.train_batches(0, 20, seed=3, device=torch.device("cpu")))
    assert len(batches) == 50 == ds.steps_per_epoch(20)
    padding = 0
    for (tokens, lengths), labels in batches:
        assert tokens.dtype == torch.int64 and lengths.device == tokens.device and len(labels) == 20
        assert tokens.shape[1] == lengths.max() and (lengths[:-1] >= lengths[1:]).all()  # longest first
        positions = torch.arange(tokens.shape[1])[None, :]
        assert (tokens[positions >= lengths[:, None]] == PAD).all()
        assert (tokens[positions < lengths[:, None]] != PAD).all()
        padding += int((positions >= lengths[:, None]).sum())
    # Every sample once: the multiset of (length, label) pairs is the train split's.
    lengths = torch.cat([b[0].lengths for b in batches]).tolist()
    seen = sorted(zip(lengths, torch.cat([b[1] for b in batches]).tolist(), strict=True))
    assert seen == sorted(zip(ds.train_len.tolist(), ds.train_y.tolist(), strict=True))
    # Bucketing: far less padding than batches of random reviews padded to their longest.
    random_padding = sum(
        int((ds.train_len[idx].max() - ds.train_len[idx]).sum()) for idx in torch.randperm(1000).view(50, 20)
    )
    assert padding < random_padding / 3
    again = list(ds.train_batches(0, 20, seed=3, device=torch.device("cpu")))
    assert all(torch.equal(a[0].tokens, b[0].tokens) for a, b in zip(batches, again, strict=True))
    # Shards of two ranks are disjoint halves; chosen positions select batches of the epoch's order.
    picked = list(ds.train_batches(0, 20, seed=3, device=torch.device("cpu"), positions=[4, 1]))
    assert torch.equal(picked[0][0].tokens, batches[4][0].tokens)
    assert torch.equal(picked[1][0].tokens, batches[1][0].tokens)


def test_packing_makes_padding_invisible():
    torch.manual_seed(0)
    model = build_lstm(vocab_size=50, num_classes=2, width=0.125).eval()
    seq = torch.randint(2, 50, (1, 7))
    alone = model(TokenBatch(seq, torch.tensor([7])))
    padded = torch.cat([seq, torch.zeros(1, 5, dtype=torch.int64)], 1)
    longer = torch.randint(2, 50, (1, 12))
    together = model(TokenBatch(torch.cat([padded, longer]), torch.tensor([7, 12])))
    torch.testing.assert_close(together[0], alone[0])
    assert sum(p.numel() for p in build_lstm(25_002, 2).parameters()) == (
        25_002 * 256 + 2 * 4 * 256 * (256 + 256 + 2) + 256 * 2 + 2
    )


def imdb_job(method: str, method_config=None, **config):
    job = smoke_job(
        method, method_config, **{"optimizer": "adam", "lr": 0.003, "weight_decay": 0.0, **config}
    )
    return replace(job, dataset="imdb", model="lstm")


def smoke_imdb(method: str, *extra: str) -> tuple[str, ...]:
    return ("train", "--dataset", "imdb", "--model", "lstm", "--method", method, "--profile", "smoke", *extra)


@pytest.mark.parametrize("method", ["async_lu", "async_bu"])
def test_async_with_adam_on_the_lstm_is_backprop_exactly(store, method):
    """F=1, B=1, one pass in flight, Adam per parameter: bp's losses bit for bit on the LSTM."""
    bp, ours = assert_one_pass_in_flight_is_backprop(store, method, imdb_job)
    assert bp.epochs == 2 and ours.best_test_acc == bp.best_test_acc > 0.6


def test_lapsgd_with_adam_on_the_lstm_is_backprop_exactly():
    # One intra-op thread each: MKL may otherwise use fewer threads under load and sum in another order.
    bp = run_job(imdb_job("bp", threads=1), None, NullTracker(), progress=False)
    lap = run_job(
        imdb_job("lapsgd", LapConfig(workers_per_device=1), threads=1), None, NullTracker(), progress=False
    )
    assert lap.final_train_loss == bp.final_train_loss and lap.best_test_acc == bp.best_test_acc


def test_adam_step_matches_torch_adam():
    """The updater's Adam (what async and Hogwild! methods apply) against torch.optim.Adam, 3 steps."""
    from core.config import TrainConfig
    from methods.common.param_updates import ParameterUpdater

    torch.manual_seed(0)
    ours, theirs = torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(5, 3))
    theirs.data.copy_(ours.data)
    cfg = TrainConfig(optimizer="adam", weight_decay=0.01)
    updater = ParameterUpdater([ours], cfg)
    optimizer = torch.optim.Adam([theirs], lr=0.01, weight_decay=0.01)
    for _ in range(3):
        grad = torch.randn(5, 3)
        updater.apply({0: grad}, 0.01)
        theirs.grad = grad.clone()
        optimizer.step()
    assert torch.equal(ours.data, theirs.data)


@pytest.mark.parametrize("method", ["bp", "async_lu"])
def test_cli_smoke_on_imdb(store, method):
    proc = run_cli(*smoke_imdb(method, "--json", "--tracking-uri", store))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["dataset"] == "imdb" and result["best_test_acc"] > 0.6


def test_image_model_on_tokens_exits_2(store):
    proc = run_cli(*smoke_imdb("bp"), "--model", "resnet18", "--tracking-uri", store)
    one_error_line(proc, 2, "model resnet18 reads images", "lstm")


def test_lstm_training_step_reduces_loss():
    ds = synthetic_tokens()
    torch.manual_seed(0)
    model = build_lstm(ds.spec.vocab_size, 2, width=0.125)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for inputs, targets in ds.train_batches(0, 64, 0, torch.device("cpu")):
        loss = F.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    with pytest.raises(DataMissingError):
        imdb_module.read_parquet(__import__("pathlib").Path("/nonexistent/train.parquet"))
