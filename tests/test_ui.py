"""What a user sees in the MLflow UI: links to each table's runs page, diagnostics grouped under a
prefix (read back by the reports as before), and a store written before the prefix existed."""

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.engine.tracking import Tracker
from benchmarks.ui import experiment_links
from reports.runs import curve, load_runs

from .conftest import add_run, empty_store, run_cli


def test_links_go_to_each_experiments_runs_page(tmp_path):
    tracker = Tracker(empty_store(tmp_path / "ui.db"))  # a store of its own: the session's has others
    add_run(tracker, "table6", "lstm", "async_lu", 0, acc=[0.5], times=[1.0])
    add_run(tracker, "table1", "resnet18", "bp", 0, acc=[0.5], times=[1.0])
    links = experiment_links(tracker, "http://127.0.0.1:5000")
    ids = {e.name: e.experiment_id for e in tracker.client.search_experiments()}
    assert sorted(links) == [
        f"table1: http://127.0.0.1:5000/#/experiments/{ids['table1']}/runs?compareRunsMode=CHART",
        f"table6: http://127.0.0.1:5000/#/experiments/{ids['table6']}/runs?compareRunsMode=CHART",
    ]


def test_ui_without_a_store_is_one_line(tmp_path):
    proc = run_cli("ui", "--tracking-uri", f"sqlite:///{tmp_path}/none.db")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "no MLflow store" in proc.stderr


def test_diagnostics_read_the_same_with_or_without_the_prefix(store):
    """A diagnostic logged plain (staleness_mean) and under system/ (system/staleness_mean) give the
    reports the same columns and curves."""
    tracker = Tracker(store)
    plain = add_run(tracker, "t", "m", "async_lu", 0, acc=[0.5, 0.6], times=[1.0, 2.0])
    prefixed = add_run(tracker, "t", "m", "async_lu", 1, acc=[0.5, 0.6], times=[1.0, 2.0])
    for step, value in enumerate((3.0, 4.0)):
        tracker.log_metrics(plain, {"staleness_mean": value}, step)
        tracker.log_metrics(prefixed, {"system/staleness_mean": value}, step)
    runs = load_runs(store, "t").set_index("run_id")
    assert runs.at[plain, "staleness_mean"] == runs.at[prefixed, "staleness_mean"] == 4.0
    assert not any(c.startswith("system/") for c in runs.columns)
    before, after = (curve(store, run, ("staleness_mean",)) for run in (plain, prefixed))
    pd.testing.assert_frame_equal(before, after)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium (Debian: apt install chromium)")
def test_the_ui_shows_the_key_metrics_first(store, tmp_path):
    """The documented check of docs/design.md (MLflow): `benchmarks ui` over a store with one async
    run; headless Chromium renders its runs page and chart view (screenshots kept in
    $BENCH_UI_SHOTS, else the test's folder) and the chart view opens on accuracy and loss against
    the training clock (`by_train_s/`), then the key metrics, the diagnostics (`system/`) last."""
    from benchmarks.engine.runner import run_job

    from .conftest import smoke_job

    result = run_job(smoke_job("async_lu"), None, Tracker(store), progress=False)
    experiment = Tracker(store).client.get_run(result.run_id).info.experiment_id
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "ui", "--port", str(port), "--tracking-uri", store],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    shots = Path(os.environ.get("BENCH_UI_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):  # the server's start (a few seconds)
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        # The first page is the link `ui` prints for the experiment (its chart view).
        printed = next(line for line in server.stdout if f"/#/experiments/{experiment}/" in line)
        first_page = printed.split(": ", 1)[1].strip().removeprefix(base)
        pages = {"runs": f"/#/experiments/{experiment}/runs", "charts": first_page}
        doms = {}
        for name, path in pages.items():
            chrome = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"]
            chrome.append("--virtual-time-budget=15000")  # let the app fetch and render
            shot = shots / f"ui-{name}.png"
            subprocess.run([*chrome, f"--screenshot={shot}", base + path], capture_output=True, timeout=120)
            dom = subprocess.run(
                [*chrome, "--dump-dom", base + path], capture_output=True, text=True, timeout=120
            )
            doms[name] = dom.stdout
            (shots / f"ui-{name}.html").write_text(dom.stdout)
            assert (shots / f"ui-{name}.png").stat().st_size > 10_000
        charts = doms["charts"]
        # The chart sections in the order shown: each a header "<name>" then "(<charts>)".
        sections = [name for name, _ in re.findall(r">([^<>]{1,40})</div><div[^>]*>\((\d+)\)<", charts)]
        assert sections == ["by_train_s", "Model metrics", "System metrics"], sections
        assert "by_train_s/test_acc" in charts and "test_acc" in charts
    finally:
        server.terminate()
        server.wait(timeout=30)
