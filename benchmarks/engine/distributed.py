"""Multi-process jobs: `--devices N` runs N processes (gloo on CPU, NCCL on CUDA), rank 0 logging.

The coordinator (the CLI's process) creates the MLflow run, spawns the ranks, watches them, and
ends the run: a rank's exception ends the whole job as `failed` with that rank's error, a rank
that dies without one does too, and Ctrl-C ends it as `interrupted`; surviving ranks are
terminated (then killed) so that no process is left behind.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from core.job import Job
from core.result import RunResult
from core.runtime.contention import set_job_root
from core.runtime.supervise import DONE, RECORD, Children, enter_child, reporting

from .rank import get_dataset, job_device, run_rank
from .tracking import NullTracker, Tracker

log = logging.getLogger(__name__)

# How long ranks get to exit after a failure or Ctrl-C before they are killed. Longer than a rank's
# own clean-up takes at most (LAP-SGD: 5 s for its workers to stop, then 1 s to terminate them):
# a rank killed in its clean-up leaves its semaphores to the resource tracker ("leaked").
GRACE_S = 10.0


def launched_by_torchrun() -> bool:
    """True in a process that torchrun (torch.distributed.run) started: it sets RANK and WORLD_SIZE."""
    return "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def torchrun_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment."""
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))


def run_torchrun_rank(
    job: Job, dataset, tracker: Tracker, run_id: str, mfu: tuple[float, float]
) -> RunResult:
    """This process as one of torchrun's ranks (several machines possible): join, train, leave."""
    rank, world, local_rank = torchrun_rank()
    device = job_device(job, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device), timeout=timedelta(minutes=10))  # env:// from torchrun
    try:
        return run_rank(job, dataset, tracker, run_id, device, rank, world, progress=rank == 0, mfu=mfu)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for the rendezvous (never bound to other interfaces)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LISTENERS: list[socket.socket] = []


def loopback_store(rank: int, world: int, port: int) -> dist.TCPStore:
    """The rendezvous store of locally spawned ranks, listening on 127.0.0.1 only.

    TCPStore's own server listens on every interface (measured: `*:port`); rank 0 therefore binds
    the socket itself and hands it over (`master_listen_fd`). The other ranks connect to it. Gloo's
    own connections between the ranks use the loopback interface too (GLOO_SOCKET_IFNAME).
    """
    if "lo" in {name for _, name in socket.if_nameindex()}:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    timeout = timedelta(minutes=10)
    if rank != 0:
        return dist.TCPStore("127.0.0.1", port, world, is_master=False, timeout=timeout)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    store = dist.TCPStore(
        "127.0.0.1", port, world, is_master=True, timeout=timeout, master_listen_fd=listener.fileno()
    )
    _LISTENERS.append(listener)  # the store serves on this socket: keep it open while the rank lives
    return store


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def _unwind(*_) -> None:
    """A rank's SIGTERM handler: unwind once (SystemExit); a second one must not interrupt the clean-up."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(128 + signal.SIGTERM)


def _worker(
    rank: int,
    world: int,
    port: int,
    job: Job,
    data_dir,
    run_id: str,
    parent_pid: int,
    shipped,
    mfu: tuple[float, float],
    report,
) -> None:
    """One rank: join the process group, train, send (DONE, result) or (ERROR, message) to `report`."""
    enter_child(parent_pid)
    set_job_root(parent_pid)  # the job's CPU time is the tree of the process that spawned the ranks
    # The coordinator ends ranks with SIGTERM: unwind (finally blocks end a method's own child
    # processes and release their semaphores) instead of dying on the spot.
    signal.signal(signal.SIGTERM, _unwind)
    try:
        with reporting(report):
            _train_rank(rank, world, port, job, data_dir, run_id, report, shipped, mfu)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        # From here the interpreter shuts down: a SIGTERM now would raise SystemExit inside an
        # exit-time finalizer (printed as a traceback) or, by default, kill the process before it
        # releases its semaphores. The coordinator kills a rank that has not exited after GRACE_S.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _train_rank(rank, world, port, job: Job, data_dir, run_id, report, shipped, mfu) -> None:
    """A rank's work: join the process group, train (rank 0's metrics sent to the coordinator, which
    logs them), and report the result."""
    device = job_device(job, rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend_for(device), store=loopback_store(rank, world, port), rank=rank, world_size=world,
        timeout=timedelta(minutes=10),
    )  # fmt: skip
    tracker = PipeTracker(report) if rank == 0 else NullTracker()
    dataset = shipped if shipped is not None else get_dataset(job, data_dir)
    result = run_rank(job, dataset, tracker, run_id, device, rank, world, progress=rank == 0, mfu=mfu)
    report.send((DONE, result))


def spawn_ranks(
    job: Job, data_dir, tracker: Tracker, run_id: str, mfu: tuple[float, float], dataset=None
) -> RunResult:
    """Run the job on `job.devices` spawned ranks; returns rank 0's result.

    Each rank loads the job's dataset from `data_dir` (its own cache), or receives `dataset`
    (its tensors through shared memory) when one is given.

    Raises RuntimeError naming the first rank that failed (a rank that died is named before the
    ranks whose collectives broke because of it); KeyboardInterrupt after ending the ranks.
    Reports travel through pipes, which leave no named semaphores behind when a rank is killed.
    """
    port = free_port()
    ranks = Children(
        mp.get_context("spawn"),  # fork is unsafe with threads and CUDA
        _worker,
        [
            (rank, job.devices, port, job, data_dir, run_id, os.getpid(), dataset, mfu)
            for rank in range(job.devices)
        ],
        [f"rank{rank}" for rank in range(job.devices)],
    )
    try:
        results, errors = ranks.results(on_record=relay(tracker, run_id))
        if errors:
            # A killed rank breaks the others' collectives a moment later: name the death first.
            time.sleep(0.5)
            for rank, p in enumerate(ranks.procs):
                if rank not in results and p.exitcode is not None and p.exitcode < 0:
                    errors[rank] = f"died with exit code {p.exitcode}"
            dead = [r for r, e in errors.items() if e.startswith("died")]
            first = dead[0] if dead else min(errors)
            raise RuntimeError(f"rank {first} {errors[first]}" if dead else f"rank {first}: {errors[first]}")
        for p in ranks.procs:
            p.join(timeout=30)
    finally:
        ranks.stop(GRACE_S)
    return results[0]


class PipeTracker(NullTracker):
    """A spawned rank 0's tracker: its metrics and tables go to the coordinator over the rank's
    report pipe (`RECORD` messages), which logs them (`relay`). The rank never imports MLflow nor
    opens the store: a second and more of start-up saved, and one writer per run."""

    def __init__(self, report):
        self.uri, self.report = None, report

    def log_metrics(self, run_id, metrics, step):
        self.report.send((RECORD, ("metrics", dict(metrics), step)))

    def log_table(self, run_id, columns, artifact_file):
        self.report.send((RECORD, ("table", columns, artifact_file)))


def relay(tracker: Tracker, run_id: str) -> Callable[[int, object], None]:
    """What the coordinator does with a rank's RECORD: log it to `run_id` (rank 0's only)."""

    def on_record(rank: int, payload) -> None:
        kind, values, where = payload
        if rank != 0:
            return
        if kind == "metrics":
            tracker.log_metrics(run_id, values, where)
        else:
            tracker.log_table(run_id, values, where)

    return on_record
