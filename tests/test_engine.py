"""The async engine's update groups, in-flight limit and multi-device exchange (on the CPU), and its
CUDA streams and memory (on a GPU; skipped without one)."""

import threading

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from benchmarks.engine.distributed import free_port
from core.config import TrainConfig
from core.inputs import InputSpec
from methods.async_backprop import AsyncConfig
from methods.common.async_engine import AsyncEngine
from methods.common.optim import hidden_matrices
from methods.common.param_updates import ParameterUpdater, module_groups
from models import build_model

NO_CUDA = "needs CUDA: the per-pass streams, event fences and GPU memory exist only on a GPU"


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def test_groups_are_the_modules_that_own_the_tensors():
    resnet = build_model("resnet18", InputSpec(10, 32), 0.125)
    params = list(resnet.parameters())
    groups = module_groups(resnet, params)
    owners = [m for m in resnet.modules() if list(m.parameters(recurse=False))]
    assert len(groups) == len(owners) and sorted(i for g in groups for i in g) == list(range(len(params)))
    sizes = {type(m).__name__: len(list(m.parameters(recurse=False))) for m in owners}
    assert sizes == {"Conv2d": 1, "BatchNorm2d": 2, "Linear": 2}
    lstm = build_model("lstm", InputSpec(2, vocab_size=50), 0.125)
    assert [len(g) for g in module_groups(lstm, list(lstm.parameters()))] == [1, 8, 2]  # the LSTM is one op


def mlp_net() -> nn.Module:
    """small_net with a hidden linear layer (Muon's kind of tensor) before its classifier."""
    hidden = nn.Sequential(nn.Linear(4 * 6 * 6, 16), nn.ReLU())
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), hidden, nn.Linear(16, 3))


# (optimizer, momentum, nesterov, weight decay): each branch of the SGD arithmetic, and the others.
UPDATE_CASES = {
    "sgd": ("sgd", 0.9, False, 5e-3),
    "nesterov": ("sgd", 0.9, True, 5e-3),
    "nesterov_no_decay": ("sgd", 0.9, True, 0.0),
    "no_momentum": ("sgd", 0.0, False, 5e-3),
    "adam": ("adam", 0.9, False, 5e-3),
    "adamw": ("adamw", 0.9, False, 0.1),
    "nadamw": ("nadamw", 0.9, False, 0.1),
    "muon": ("muon", 0.95, True, 0.1),
}


def torch_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """torch.optim's own optimisers for `cfg`, over the whole model, built here without the suite."""
    params, decay = list(model.parameters()), cfg.weight_decay
    if cfg.optimizer == "muon":
        hidden = model[3][0].weight
        rest = [p for p in params if p is not hidden]
        muon = torch.optim.Muon(
            [hidden], lr=cfg.lr, weight_decay=decay, momentum=cfg.momentum, adjust_lr_fn="match_rms_adamw"
        )
        return [muon, torch.optim.AdamW(rest, lr=cfg.lr, weight_decay=decay)]
    if cfg.optimizer == "nadamw":
        return [torch.optim.NAdam(params, lr=cfg.lr, weight_decay=decay, decoupled_weight_decay=True)]
    if cfg.optimizer in ("adam", "adamw"):
        return [
            getattr(torch.optim, {"adam": "Adam", "adamw": "AdamW"}[cfg.optimizer])(
                params, lr=cfg.lr, weight_decay=decay
            )
        ]
    return [
        torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=decay, nesterov=cfg.nesterov)
    ]


def updates_against_torch_optim(case: str, fused: bool) -> tuple[nn.Module, nn.Module, ParameterUpdater]:
    """4 passes of random gradients through our group updates (in reverse order, as a backward pass
    delivers them, on two threads in turn) and through torch.optim's default step on a copy; the
    head's bias first gets a gradient in the third pass."""
    optimizer, momentum, nesterov, weight_decay = UPDATE_CASES[case]
    torch.manual_seed(0)
    ours, theirs = mlp_net(), mlp_net()
    theirs.load_state_dict(ours.state_dict())
    cfg = TrainConfig(
        optimizer=optimizer, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, lr=0.05
    )
    params = list(ours.parameters())
    updater = ParameterUpdater(params, cfg, module_groups(ours, params), model=ours)
    updater.fused = fused
    reference = torch_optimizers(theirs, cfg)
    late = len(params) - 1
    for step in range(4):
        grads = {i: torch.randn_like(p) for i, p in enumerate(params) if i != late or step >= 2}
        for i, p in enumerate(theirs.parameters()):
            p.grad = grads[i].clone() if i in grads else None

        def backward_pass(grads=grads):
            for group in reversed(updater.groups):
                updater.apply({i: grads[i] for i in group if i in grads}, cfg.lr)

        # Odd passes on a thread of their own: its optimisers share each tensor's state.
        thread = threading.Thread(target=backward_pass) if step % 2 else None
        if thread is None:
            backward_pass()
        else:
            thread.start()
            thread.join()
        for part in reference:
            part.step()
    assert updater.versions == [4] * late + [2]
    return ours, theirs, updater


@pytest.mark.parametrize("case", list(UPDATE_CASES))
def test_group_updates_are_torch_optim_bit_for_bit(case):
    """One torch.optim optimiser per module and thread, against torch.optim's default step over the
    whole model: equal bit for bit, for every optimiser the suite offers."""
    ours, theirs, _ = updates_against_torch_optim(case, fused=False)
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters(), strict=True))


@pytest.mark.parametrize("case", [c for c in UPDATE_CASES if UPDATE_CASES[c][0] in ("sgd", "adam", "adamw")])
def test_the_fused_path_cuda_takes_matches_torch_optim(case):
    """The fused kernels CUDA's updates use (torch runs them on the CPU too, not bit for bit): close to
    torch.optim's result."""
    ours, theirs, _ = updates_against_torch_optim(case, fused=True)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_muon_takes_the_hidden_matrices_only():
    """Muon's tensors: the 2-D weights of linear and recurrent layers inside the model; not the
    classifier (a linear child of the model), embeddings, convolutions or biases."""
    net = mlp_net()
    assert [p is net[3][0].weight for p in hidden_matrices(net)] == [True]
    lstm = build_model("lstm", InputSpec(2, vocab_size=50), 0.125)
    assert {n for n, p in lstm.named_parameters() if any(p is h for h in hidden_matrices(lstm))} == {
        f"lstm.weight_{kind}_l{layer}" for kind in ("ih", "hh") for layer in (0, 1)
    }
    assert hidden_matrices(build_model("resnet18", InputSpec(10, 32), 0.125)) == []
    gpt = build_model("gpt", InputSpec(256, vocab_size=256, context=16), 0.125)
    named = {n for n, p in gpt.named_parameters() if any(p is h for h in hidden_matrices(gpt))}
    assert named and all(n.startswith("blocks.") and n.endswith(".weight") for n in named)


class RecordingExchange:
    def __init__(self):
        self.sent: list[tuple[list[int], list[torch.Tensor]]] = []

    def scale_steps(self, indices, deltas):
        pass  # every step applied as computed (only push-sum's gossip scales)

    def record(self, indices, deltas):
        self.sent.append((indices, [d.clone() for d in deltas]))


def test_a_lock_free_update_sends_only_its_own_delta(monkeypatch):
    """Another rank's update that lands while a lock-free update is computed (the exchange thread
    takes no lock then) stays on the parameter but is not sent back out as this rank's."""
    torch.manual_seed(0)
    param = nn.Parameter(torch.randn(6))
    start = param.detach().clone()
    cfg = TrainConfig(lr=0.1, momentum=0.9, weight_decay=0.01)
    updater = ParameterUpdater([param], cfg, lock_free=True)
    updater.exchange = RecordingExchange()
    remote = torch.full((6,), 0.5)
    original = ParameterUpdater._step

    def meanwhile_a_remote_update_lands(self, *step_args):
        self.params[0].data.add_(remote)
        return original(self, *step_args)

    monkeypatch.setattr(ParameterUpdater, "_step", meanwhile_a_remote_update_lands)
    grad = torch.randn(6)
    updater.apply({0: grad}, cfg.lr)
    reference = nn.Parameter(start.clone())
    reference.grad = grad.clone()
    torch.optim.SGD([reference], lr=0.1, momentum=0.9, weight_decay=0.01).step()
    ((indices, (sent,)),) = updater.exchange.sent
    assert indices == [0]
    torch.testing.assert_close(sent, reference.detach() - start, rtol=0, atol=1e-7)
    torch.testing.assert_close(param.detach(), start + remote + sent, rtol=0, atol=1e-6)


class SlowBackward(torch.autograd.Function):
    """Identity forward; its backward waits until released: a backward pass that takes its time."""

    release = threading.Event()
    entered = threading.Semaphore(0)

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        SlowBackward.entered.release()
        SlowBackward.release.wait(timeout=30)
        return grad


def test_the_next_forward_runs_while_every_backward_thread_works():
    """000's Figure 1: with B = 2 backward threads busy, a third pass is forwarded (the default
    limit is F + B = 3 passes alive); a fourth waits for a slot."""
    assert AsyncConfig().in_flight_limit == 3
    assert AsyncConfig(forward_threads=2, backward_threads=4).in_flight_limit == 6
    assert AsyncConfig(max_in_flight=1).in_flight_limit == 1
    weight = nn.Parameter(torch.ones(4))
    model = nn.Module()
    model.weight = weight
    SlowBackward.release.clear()
    cfg = TrainConfig(lr=0.01, momentum=0.0, weight_decay=0.0)
    with AsyncEngine(model, cfg, AsyncConfig(), True, torch.device("cpu")) as engine:
        for _ in range(2):
            stream = engine.acquire_slot()
            engine.submit(SlowBackward.apply(weight).sum(), 0.01, engine.read_versions(), stream)
        assert SlowBackward.entered.acquire(timeout=10) and SlowBackward.entered.acquire(timeout=10)
        third = engine.slots.acquire(timeout=1)  # both backward threads are inside their passes
        fourth = engine.slots.acquire(timeout=0.2)
        SlowBackward.release.set()
        engine.release_slot(None)
        assert third and not fourth
        engine.drain()
    assert torch.equal(weight.detach(), torch.full((4,), 1 - 2 * 0.01))


def _exchange_updates(rank: int, port: int, out: str, lock_free: bool) -> None:
    """Rank r applies (r + 1) x 5 known updates through the engine; the exchange carries them over."""
    from methods.common.update_exchange import UpdateExchange

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model = small_net()
    torch.manual_seed(0)
    for p in model.parameters():
        nn.init.constant_(p, 1.0)
    params = list(model.parameters())
    cfg = TrainConfig(lr=0.01, momentum=0.0, weight_decay=0.0)
    updater = ParameterUpdater(params, cfg, module_groups(model, params), lock_free=lock_free)
    exchange = UpdateExchange(updater, torch.device("cpu"))
    updater.exchange = exchange
    for _ in range((rank + 1) * 5):
        for group in updater.groups:
            updater.apply({i: torch.ones_like(params[i]) for i in group}, cfg.lr)
    exchange.flush()
    versions = list(updater.versions)
    exchange.close()
    torch.save(dict(versions=versions, params=[p.detach() for p in params]), f"{out}.{rank}")
    dist.destroy_process_group()


def test_every_rank_counts_and_applies_every_update_once(tmp_path):
    """After a flush both replicas hold all 5 + 10 updates of every tensor, counted in its versions
    (so staleness counts the other rank's updates), none sent back or lost. (Lock-free updates may
    be lost by design: test_a_lock_free_update_sends_only_its_own_delta covers what they send.)"""
    out = str(tmp_path / "exchange")
    mp.start_processes(_exchange_updates, args=(free_port(), out, False), nprocs=2, start_method="spawn")
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    for r in ranks:
        assert r["versions"] == [15] * len(r["params"])
        for p in r["params"]:
            torch.testing.assert_close(p, torch.full_like(p, 1 - 15 * 0.01), rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_on_cuda_passes_have_their_own_streams_and_memory_stays_flat(store):
    """async_lu on the GPU: one stream per pass that can be alive, made once; the peak memory of the
    last epoch within 10 % of the second's; and it learns."""
    from benchmarks.engine.runner import run_job
    from benchmarks.engine.tracking import Tracker

    from .conftest import smoke_job

    tracker = Tracker(store)
    result = run_job(smoke_job("async_lu", AsyncConfig(), device="cuda", max_epochs=6), None, tracker, False)
    assert result.status == "finished" and result.best_test_acc > 0.3
    peaks = [
        m.value
        for m in sorted(
            tracker.client.get_metric_history(result.run_id, "system/gpu_mem_peak_gib"),
            key=lambda m: m.step,
        )
    ]
    assert len(peaks) == 6 and peaks[-1] <= 1.1 * peaks[1]
    params = tracker.client.get_run(result.run_id).data.params
    assert params["cudnn_benchmark"] == "True" and params["tf32"] == "True"


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_on_cuda_the_engine_uses_a_stream_per_slot():
    model = small_net().cuda()
    cfg = TrainConfig(lr=0.01)
    with AsyncEngine(model, cfg, AsyncConfig(), True, torch.device("cuda")) as engine:
        streams = [engine.acquire_slot() for _ in range(3)]
        assert len({s.cuda_stream for s in streams}) == 3  # F + B distinct streams
        for stream in streams:
            engine.release_slot(stream)
        for _ in range(5):
            stream = engine.acquire_slot()
            with torch.cuda.stream(stream):
                loss = model(torch.randn(8, 3, 8, 8, device="cuda")).sum()
            engine.submit(loss, 0.01, engine.read_versions(), stream)
        engine.drain()
    assert all(v == 5 for v in engine.updater.versions)


@pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="needs 2 GPUs: --devices 2 runs one process per GPU"
)
@pytest.mark.parametrize("method", ["ddp", "async_lu"])
def test_two_processes_on_two_gpus_train(store, method):
    import json

    from .conftest import run_cli

    proc = run_cli(
        "train", "--method", method, "--devices", "2", "--profile", "smoke", "--json", "--tracking-uri", store
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["best_test_acc"] > 0.2
