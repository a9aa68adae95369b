"""The suite's glibc malloc settings: training steps stop faulting their memory back in."""

import json
import os
import subprocess
import sys

import pytest

from core.runtime.allocator import is_glibc

# A backward thread's steps of the quick LSTM's shape (2x64, batch 64, 300 tokens: a ~75 MB oneDNN
# workspace a step, above glibc's largest mmap threshold), each step on a new thread as the async
# engine's threads are per job; minor page faults counted per step after two warm-up steps. First,
# 640 MB of long-lived blocks under the threshold take the heap's free top, as a training process's
# dataset and model do (the 512 MiB top pad alone then no longer holds the workspace).
STEPS = r"""
import json, resource, threading
from core.runtime.allocator import tune_glibc_malloc
tune_glibc_malloc()  # as every entry point of the suite does; a no-op with BENCH_MALLOC_TUNING=0
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
long_lived = [torch.empty(8 << 20, dtype=torch.uint8) for _ in range(80)]
embedding, lstm = torch.nn.Embedding(1000, 64), torch.nn.LSTM(64, 64, num_layers=2, batch_first=True)
tokens = torch.randint(0, 1000, (64, 300))
params = [*embedding.parameters(), *lstm.parameters()]
def step():
    out, _ = lstm(embedding(tokens))
    torch.autograd.grad(out[:, -1].sum(), params)
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    thread = threading.Thread(target=step)
    thread.start()
    thread.join()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults[2:]))
"""


def faults_per_step(tuning: str) -> list[int]:
    env = {**os.environ, "BENCH_MALLOC_TUNING": tuning}
    out = subprocess.run([sys.executable, "-c", STEPS], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.ci
@pytest.mark.slow  # ~17 s: the default run keeps under 6 minutes
@pytest.mark.skipif(not is_glibc(), reason="the settings are glibc's")
def test_tuned_malloc_keeps_step_memory_mapped():
    default, tuned = faults_per_step("0"), faults_per_step("1")
    assert min(default) > 10_000  # glibc's defaults: the workspace is mapped anew every step
    assert sorted(tuned)[len(tuned) // 2] < min(default) / 10, (default, tuned)
