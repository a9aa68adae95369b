"""The wire (core/runtime/wire.py): a wire straggler's delay is a latency for every method. A delayed
all-reduce and DDP's delayed buckets give the results they give without the delay; a gossip
message arrives its delay after it was sent, with the state of its send time, the sender never
waiting; each receiver logs the ages it saw. And push-sum's weights with one slowed worker."""

import json
import os
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mlflow.tracking import MlflowClient
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from benchmarks.engine.distributed import free_port
from core.config import TrainConfig
from core.runtime.straggler import Straggler
from core.runtime.wire import BINS, DdpHookState, Wire, age_bin, bin_edge, ddp_hook, quantile
from methods.common.gossip import GossipExchange
from methods.common.param_updates import ParameterUpdater, module_groups

from .conftest import run_cli

CPU = torch.device("cpu")


def wire_of(rank: int, world: int, delay_ms: float, prob: float = 1.0) -> Wire:
    """Rank `rank`'s wire, the last rank's messages delayed `delay_ms` (with probability `prob`)."""
    cfg = TrainConfig(straggler_kind="wire", straggler_delay_ms=delay_ms, straggler_prob=prob)
    straggler = Straggler(cfg, rank) if delay_ms and rank == world - 1 else None
    return Wire(straggler, rank, world, CPU)


def spawn(fn, world: int, *args) -> None:
    mp.start_processes(fn, args=(world, free_port(), *args), nprocs=world, start_method="spawn")


def test_quantiles_are_read_within_a_bin():
    counts = [0.0] * BINS
    ages = [100.0 + i / 10 for i in range(100)] + [1.0] * 50  # 100-110 ms, and a third at 1 ms
    for age in ages:
        counts[age_bin(age)] += 1
    assert quantile(counts, 0.5) == pytest.approx(sorted(ages)[75], rel=0.01)
    assert quantile(counts, 0.95) == pytest.approx(sorted(ages)[142], rel=0.03)
    assert quantile(counts, 0.2) == pytest.approx(1.0, rel=0.05)
    assert bin_edge(age_bin(250.0)) <= 250.0 < bin_edge(age_bin(250.0) + 1)
    assert quantile([0.0] * BINS, 0.5) != quantile([0.0] * BINS, 0.5)  # NaN: nothing arrived


# --- collectives ---------------------------------------------------------------------------------
def _all_reduce(rank: int, world: int, port: int, out: str, delay_ms: float) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    wire = wire_of(rank, world, delay_ms)
    tensor = torch.full((1000,), float(rank + 1))
    started = time.time()
    for _ in range(3):
        wire.all_reduce(tensor)
    took = time.time() - started
    torch.save(dict(tensor=tensor, took=took, metrics=wire.epoch_metrics(batches=3)), f"{out}/{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.ci
@pytest.mark.slow  # ~5 s each: 3 processes
@pytest.mark.parametrize("delay_ms", [0.0, 150.0])
def test_a_delayed_all_reduce_sums_as_without_and_every_rank_reads_the_delay(tmp_path, delay_ms):
    """3 ranks, the last one's part delayed 150 ms: every rank gets the sum, each of the 3
    all-reduces lasts the delay, and every rank logs it as the age of the result (within 15 %);
    without a delay the ages are a few ms. The bytes are the ring's 2 (N-1)/N of the tensor's."""
    spawn(_all_reduce, 3, str(tmp_path), delay_ms)
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(3)]
    for r in ranks:
        torch.testing.assert_close(r["tensor"], torch.full((1000,), 6.0 * 3**2))  # 6, then sums of sums
        assert r["metrics"]["wire_mib"] * 2**20 == pytest.approx(3 * 3 * 2 * 2 / 3 * 4000)
        assert r["metrics"]["wire_bytes_per_step"] == pytest.approx(2 * 2 / 3 * 4000)
    age = ranks[0]["metrics"]["wire_age_median_ms"]
    if delay_ms:
        assert age == pytest.approx(delay_ms, rel=0.15) and all(r["took"] >= 3 * 0.15 for r in ranks)
    else:
        assert age < 50  # generous: 3 processes on 2 cores


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5))


def _ddp_steps(rank: int, world: int, port: int, out: str, delay_ms: float) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    # Small buckets: several a step, some delayed and some not (probability 0.5) on the last rank.
    model = DistributedDataParallel(small_model(), bucket_cap_mb=0.01)
    wire = wire_of(rank, world, delay_ms, prob=0.5)
    model.register_comm_hook(DdpHookState(wire), ddp_hook)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(rank)
    for _ in range(4):
        x, y = torch.randn(8, 20, generator=gen), torch.randint(0, 5, (8,), generator=gen)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    metrics = wire.epoch_metrics(batches=4)
    torch.save(
        dict(params=[p.detach() for p in model.module.parameters()], metrics=metrics), f"{out}/{rank}.pt"
    )
    dist.destroy_process_group()


@pytest.mark.ci
@pytest.mark.slow  # ~9 s: 2 x 2 processes
def test_ddp_with_delayed_buckets_steps_exactly_as_without(tmp_path):
    """2 ranks, DDP's buckets through the wire's hook, the last rank's delayed 100 ms one time in
    two (launched in order from its delivery thread): the replicas after 4 steps are bit for bit
    those of DDP without a delay, and both ranks log each bucket's age."""
    for name, delay_ms in (("plain", 0.0), ("slow", 100.0)):
        (tmp_path / name).mkdir()
        spawn(_ddp_steps, 2, str(tmp_path / name), delay_ms)
    plain = [torch.load(tmp_path / "plain" / f"{r}.pt") for r in range(2)]
    slow = [torch.load(tmp_path / "slow" / f"{r}.pt") for r in range(2)]
    for a, b in zip(plain[0]["params"], slow[1]["params"], strict=True):
        assert torch.equal(a, b)
    assert plain[0]["metrics"]["wire_age_median_ms"] < 50
    assert slow[0]["metrics"]["wire_age_p95_ms"] == pytest.approx(100.0, rel=0.15)  # the delayed ones


# --- gossip --------------------------------------------------------------------------------------
def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(8, 8) for _ in range(6)])


def _gossip(rank: int, world: int, port: int, out: str, mix: str, delay_ms: float, pauses: list) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    model = tiny_model()
    params = list(model.parameters())
    updater = ParameterUpdater(
        params, TrainConfig(optimizer="sgd", momentum=0.0, weight_decay=0.0), module_groups(model, params)
    )
    wire = wire_of(rank, world, delay_ms)
    exchange = GossipExchange(updater, CPU, mix, 1, "layer", seed=0, on_error=print, wire=wire)
    updater.exchange = exchange
    steps, pause = pauses[rank]
    started = time.time()
    seen = []  # the mean push-sum weight over the modules after each burst
    for _ in range(steps):  # a burst: every module waits at once, then the next burst
        updater.apply({i: torch.full_like(p, 1e-3) for i, p in enumerate(params)}, lr=1.0)
        time.sleep(pause)
        seen.append(sum(exchange.masses()) / len(params))
    sending = time.time() - started
    exchange.flush()
    slowed = list(wire.slowed_ages)  # what arrived here from the last rank, before the epoch's sums
    applied_min_ms = dict(exchange.applied_min_ms)
    metrics = exchange.epoch_metrics(batches=steps)
    masses = exchange.masses()
    scaled = [torch.ones(1) for _ in params]
    exchange.scale_steps(list(range(len(params))), scaled)  # a unit step on x moves z by 1 / w
    exchange.close()
    torch.save(dict(slowed=slowed, applied_min_ms=applied_min_ms, metrics=metrics, masses=masses,
                    sending=sending, seen=seen, effective=[s.item() for s in scaled]),
               f"{out}/{rank}.pt")  # fmt: skip
    dist.destroy_process_group()


@pytest.mark.ci
@pytest.mark.slow  # ~10 s: 3 processes
def test_gossip_messages_arrive_their_delay_after_they_were_sent_and_the_sender_never_waits(tmp_path):
    """3 ranks, the last one's messages delayed 300 ms: bursts of 6 modules every 50 ms. No message of
    the last rank is applied before its send time (when its weights were read) plus 300 ms, however
    many wait behind it: its median age is 300 ms (within 15 %), others' messages are younger, and
    the last rank never waited for its delays."""
    spawn(_gossip, 3, str(tmp_path), "pushsum", 300.0, [(8, 0.05)] * 3)
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(3)]
    for r in ranks[:2]:  # receivers of the slowed rank: delivered, and applied, no earlier than due
        younger = sum(r["slowed"][: age_bin(300.0)])
        assert sum(r["slowed"]) > 0 and younger == 0, r["slowed"]
        assert r["applied_min_ms"][2] >= 299.0, r["applied_min_ms"]
    metrics = ranks[0]["metrics"]
    assert metrics["wire_age_median_ms"] == pytest.approx(300.0, rel=0.15)
    assert metrics["wire_age_others_median_ms"] < metrics["wire_age_median_ms"]
    # The delays put on the last rank's messages (one per module, or fewer where increments joined a
    # waiting one) were not slept by anyone on it (a wide margin, no timing).
    held = metrics["gossip_held_s"]
    assert held >= 8 * 0.3 and ranks[2]["sending"] < held / 2


@pytest.mark.ci
@pytest.mark.slow  # ~10 s: 3 processes
def test_pushsum_weights_with_one_half_speed_worker_and_each_workers_effective_step(tmp_path):
    """3 ranks, the last at half the others' rate: every send halves a module's weight and hands
    the half to a peer, so the weights settle where rate x weight is the same on every rank, 0.75
    for the fast workers and 1.5 for the slow one (means over the run's second half: below 1, above
    1, their ratio that of the send rates, near 2); a fast worker's step then moves its parameters
    by lr / w, about 1.33 lr (SGP's de-biasing). The weights still sum to 3 per module, and the
    epoch's metrics log their extremes."""
    spawn(_gossip, 3, str(tmp_path), "pushsum", 0.0, [(60, 0.04), (60, 0.04), (30, 0.08)])
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(3)]
    for i in range(len(ranks[0]["masses"])):
        assert sum(r["masses"][i] for r in ranks) == pytest.approx(3.0)
    means = [sum(r["seen"][len(r["seen"]) // 2 :]) / (len(r["seen"]) - len(r["seen"]) // 2) for r in ranks]
    settled = [3 * m / sum(means) for m in means]  # each rank samples between its bursts: normalised
    # The weights settle where rate x weight is equal: their ratio is the ranks' send rates' ratio, as
    # measured (near 2; on a loaded machine the slow rank's sleeps stretch, 3 x 2 cores' worth).
    rates = [len(r["seen"]) / r["sending"] for r in ranks]
    rate_ratio, weight_ratio = (rates[0] + rates[1]) / 2 / rates[2], settled[2] / (sum(settled[:2]) / 2)
    assert max(settled[:2]) < 1.0 < settled[2] and 1 / 1.6 < weight_ratio / rate_ratio < 1.6, (settled, rates)
    for r in ranks:
        assert r["effective"] == pytest.approx([1 / m for m in r["masses"]])
    every = [m for r in ranks for m in r["masses"]]
    assert ranks[0]["metrics"]["pushsum_weight_min"] == pytest.approx(min(every))
    assert ranks[0]["metrics"]["pushsum_weight_max"] == pytest.approx(max(every))


# --- every method through the CLI -------------------------------------------------------------------
@pytest.mark.ci
@pytest.mark.slow  # ~10-15 s each: 3 processes on 2 cores
@pytest.mark.parametrize("method", ["layup", "ddp", "plsgd", "lapsgd", "diloco"])
def test_each_method_logs_a_100_ms_wire_delay_as_the_age_of_what_the_last_worker_sent(store, method):
    """The CLI, 3 processes sharing 2 cores at smoke, the last one's messages delayed 100 ms: the
    run finishes and its epoch logs the bytes it put on the wire and a median age at arrival of at
    least 100 ms, at least the delay above the median age of what the other ranks sent (a
    transfer, and a receiver's queue, are in both). Above by less than twice the delay: a message
    held twice would show. Not 100 ms within 15 %: where 3 processes share 2 cores a receiver
    falls behind at times (a slowed median of 155 ms, p95 890 ms, was measured), and a median over
    everything that arrived flips between the two kinds when a rank's arrivals are half delayed."""
    proc = run_cli(
        "train", "--method", method, "--devices", "3", "--profile", "smoke", "--epochs", "1", "--json",
        "--set", "oversubscribe=true", "--set", "straggler_kind=wire", "--set", "straggler_delay_ms=100",
        "--tracking-uri", store, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    metrics = MlflowClient(tracking_uri=store).get_run(result["run_id"]).data.metrics
    assert result["status"] == "finished"
    slowed, others = metrics["system/wire_age_median_ms"], metrics["system/wire_age_others_median_ms"]
    assert slowed >= 95.0, metrics  # a histogram bin is 4.9 % wide
    assert 85.0 <= slowed - others < 190.0, metrics
    assert metrics["system/wire_bytes_per_step"] > 0 and metrics["system/wire_mib"] > 0


# --- the robustness claim on the gossip's own mechanics -------------------------------------------
STEPS, STEP_S = 30, 0.02  # a step's compute as a sleep: a device of its own, no core shared


EXCHANGES = ("all_reduce", "gossip", "wait")


def _steps_on_the_wire(rank: int, world: int, port: int, out: str) -> None:
    """For each exchange and each delay of the last rank's messages (0, 100 ms): `STEPS` steps of
    `STEP_S` each, after each an update of every module gossiped (`gossip`, or `wait`: before the
    next step the worker waits for every message that reached it) or a synchronous all-reduce
    (`all_reduce`, as DDP's); the time the steps took on this rank, per (exchange, delay)."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    model = tiny_model()
    params = list(model.parameters())
    cfg = TrainConfig(optimizer="sgd", momentum=0.0, weight_decay=0.0)
    took = {}
    for exchange in EXCHANGES:
        for delay_ms in (0.0, 100.0):
            wire = wire_of(rank, world, delay_ms)
            updater = ParameterUpdater(params, cfg, module_groups(model, params))
            gossip = None
            if exchange != "all_reduce":
                gossip = GossipExchange(updater, CPU, "add", 1, "layer", seed=0, on_error=print, wire=wire)
                updater.exchange = gossip

            def step(gossip=gossip, updater=updater, wire=wire, exchange=exchange) -> None:
                if gossip is None:
                    wire.all_reduce(torch.cat([p.detach().reshape(-1) for p in params]))
                    return
                updater.apply({i: torch.full_like(p, 1e-3) for i, p in enumerate(params)}, lr=1.0)
                if exchange == "wait":
                    gossip.wait_held()

            step()  # the first update's one-time costs (~1.5 s here) off the clock
            dist.barrier()
            started = time.time()
            for _ in range(STEPS):
                time.sleep(STEP_S)
                step()
            took[(exchange, delay_ms)] = time.time() - started
            if gossip is not None:
                gossip.flush()
                gossip.close()
            dist.barrier()
    torch.save(took, f"{out}/{rank}.pt")
    dist.destroy_process_group()


def epoch_slowdowns(tmp_path) -> dict[str, float]:
    """Per exchange, how much longer 3 workers take for their steps (the last one's end: an
    epoch's) with the last worker's messages delayed 100 ms than without."""
    spawn(_steps_on_the_wire, 3, str(tmp_path))
    took = [torch.load(tmp_path / f"{r}.pt") for r in range(3)]
    longest = {key: max(t[key] for t in took) for key in took[0]}
    return {exchange: longest[(exchange, 100.0)] / longest[(exchange, 0.0)] for exchange in EXCHANGES}


@pytest.mark.ci
@pytest.mark.slow  # ~20 s: 3 processes, 6 runs of 30 steps
def test_robustness_to_wire_delays_follows_from_not_waiting_for_held_messages(tmp_path):
    """The gossip's own mechanics under a 100 ms delay of the last worker's messages, each worker's
    compute a sleep (its own device: on 2 shared cores an idle worker would hand its core to the
    others and hide any wait): LayUp's workers, training on while messages are held, slow by little,
    DDP's synchronous all-reduce by ~5x, and `layup-robust-to-wire-delays` reads reproduced on those
    slowdowns; when receivers wait for each held message before training on, LayUp slows as a
    synchronous method does (~2x) and the claim must read not reproduced."""
    from benchmarks.tables import TABLES
    from reports.claims import CLAIMS, Evidence

    from .test_layup import claims_store

    slowdowns = epoch_slowdowns(tmp_path)
    ddp, verdicts = slowdowns["all_reduce"], {}
    for exchange in ("gossip", "wait"):
        layup = slowdowns[exchange]
        uri = claims_store(tmp_path / exchange, good=True, slowdowns={"layup": layup, "ddp": ddp})
        judged = CLAIMS["layup-robust-to-wire-delays"].judge(Evidence(uri, dict(TABLES), "paper"))
        verdicts[exchange] = (layup, judged.verdict)
    assert ddp > 3.0 and verdicts["gossip"][0] < 1.15 < 1.5 < verdicts["wait"][0], (ddp, verdicts)
    assert verdicts["gossip"][1] == "reproduced" and verdicts["wait"][1] == "not reproduced", (ddp, verdicts)
