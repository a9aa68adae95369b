"""Denormal floats flushed to zero in every process of the suite (core/runtime/denormals.py): the
test process (as the CLI's), a spawned child, and the threads each starts after."""

import multiprocessing as mp
import threading

import torch

DENORMAL = 1e-39  # below float32's smallest normal, 1.18e-38


def flushed() -> bool:
    """Whether this thread reads a denormal float as zero (denormals-are-zero)."""
    return (torch.tensor([DENORMAL]) * 1.0).item() == 0.0


def child(report) -> None:
    from core.runtime.supervise import enter_child

    enter_child(parent_pid=mp.parent_process().pid)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(flushed()))
    thread.start()
    thread.join()
    report.send((flushed(), seen[0]))


def test_this_process_and_its_threads_flush_denormals():
    seen = []
    thread = threading.Thread(target=lambda: seen.append(flushed()))
    thread.start()
    thread.join()
    assert flushed() and seen == [True]


def test_a_spawned_child_flushes_denormals_in_its_threads_too():
    context = mp.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(target=child, args=(theirs,))
    process.start()
    assert ours.poll(120), "the child sent nothing"
    assert ours.recv() == (True, True)
    process.join(60)
