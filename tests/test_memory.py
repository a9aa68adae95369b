"""Peak memory per epoch (core/runtime/memory.py): the process and its children, reset each reading."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.runtime.memory import PROC, descendants, peak_bytes, peak_resident_bytes

CPU = torch.device("cpu")
MIB = 2**20
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not (PROC / "self" / "status").exists(), reason="needs Linux's /proc")


def test_a_reading_covers_the_time_since_the_last_one():
    """In a fresh process (this one's allocator keeps freed memory: docs/performance.md), 300 MiB
    held and freed between two readings count in the first and not in the second."""
    code = (
        "import torch; from core.runtime.memory import peak_bytes\n"
        "cpu = torch.device('cpu'); peak_bytes(cpu)\n"
        "held = b'x' * (300 * 2**20); del held\n"
        "print(peak_bytes(cpu), peak_bytes(cpu))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    first, second = (int(v) for v in out.stdout.split())
    assert first - second > 250 * MIB, (first, second)


def test_a_child_process_is_counted():
    code = "import sys, time; held = b'x' * (200 * 2**20); print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert child.pid in descendants(os.getpid())
        ours_alone = peak_resident_bytes(os.getpid())
        assert peak_bytes(CPU) >= ours_alone + 200 * MIB
    finally:
        child.kill()
        child.wait()
    time.sleep(0.1)
    assert child.pid not in descendants(os.getpid())
