"""Timings that say when they were not taken alone (core/runtime/contention.py)."""

import os
import subprocess
import sys
import time

import pytest

from core.runtime.contention import OthersMeter
from core.runtime.memory import PROC

pytestmark = pytest.mark.skipif(not (PROC / "stat").exists(), reason="needs Linux's /proc")
BUSY = "import time\nend = time.time() + 20\nwhile time.time() < end: pass"


def busy_share(outside: bool) -> float:
    """Others' share over 1.5 s while one busy process runs, outside the job's tree or inside it."""
    if outside:  # the shell exits at once: the busy process is re-parented, no longer ours
        subprocess.run(["sh", "-c", f"{sys.executable} -c '{BUSY}' >/dev/null 2>&1 &"], check=True)
        time.sleep(0.3)
        pids = subprocess.run(
            ["pgrep", "-f", "end = time.time"], capture_output=True, text=True
        ).stdout.split()
        child = None
    else:
        child = subprocess.Popen([sys.executable, "-c", BUSY])
        pids = []
    meter = OthersMeter(os.getpid())
    time.sleep(1.5)
    share = meter.share()
    if child is not None:
        child.kill()
        child.wait()
    for pid in pids:
        subprocess.run(["kill", pid], check=False)
    return share


def test_other_processes_count_and_the_jobs_own_do_not():
    outside, inside = busy_share(outside=True), busy_share(outside=False)
    cores = os.cpu_count() or 1
    # One busy process is 1/cores of the machine: counted when it is another's, not when it is ours.
    assert outside - inside > 0.6 / cores, (outside, inside)


@pytest.mark.ci
@pytest.mark.slow  # ~20 s: the default run keeps under 6 minutes
def test_a_measurement_beside_a_busy_process_is_tagged_contended(store):
    """Table 9's timing runs have no epochs: the share others used is read when the measurement
    is recorded, and a measurement taken beside a busy process says so."""
    from benchmarks.engine.runner import run_job
    from benchmarks.engine.tracking import Tracker
    from methods.timing import TimingConfig

    from .conftest import smoke_job

    # The shell exits at once: the busy process is re-parented, outside this (the job's) tree.
    subprocess.run(["sh", "-c", f"{sys.executable} -c '{BUSY}' >/dev/null 2>&1 &"], check=True)
    try:
        time.sleep(0.3)
        job = smoke_job("fwd_bwd_timing", TimingConfig(warmup=2, batches=20))
        summary = run_job(job, None, Tracker(store), progress=False)
    finally:
        subprocess.run(["pkill", "-f", "end = time.time"], check=False)
    assert summary.contended and summary.others_cpu_max > 0.1, summary
