"""`doctor`: one table of what the machine offers and whether the suite works on it."""

import os
import time

import pytest
import torch

from .conftest import run_cli


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="on a CUDA machine `doctor --gpu` runs the GPU acceptance"
)
def test_doctor_gpu_without_cuda_is_one_line_and_exit_2():
    proc = run_cli("doctor", "--gpu")
    assert proc.returncode == 2 and "doctor --gpu needs CUDA" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1


@pytest.mark.slow  # ~20 s: β measured and an async_lu epoch
def test_doctor_without_the_data_exits_1_naming_the_fix(tmp_path):
    proc = run_cli(
        "doctor", "--data-dir", str(tmp_path / "nothing"), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| ")}
    assert "| NO |" in rows["data: cifar10"] and str(tmp_path / "nothing") in rows["data: cifar10"]
    assert "| yes |" in rows["MLflow store"] and "| yes |" in rows["async_lu on cpu"]
    assert "needed piece(s) missing" in proc.stdout


@pytest.mark.slow  # ~20 s
@pytest.mark.skipif(not os.environ.get("BENCH_DATA_DIR"), reason="needs the real data ($BENCH_DATA_DIR)")
def test_doctor_on_this_machine_exits_0_within_a_minute(tmp_path):
    started = time.monotonic()
    proc = run_cli("doctor", "--tracking-uri", f"sqlite:///{tmp_path}/m.db")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the suite works here" in proc.stdout and "β of the default model" in proc.stdout
    assert time.monotonic() - started < 60 * 1.5  # doctor's minute, with room for a busy machine
