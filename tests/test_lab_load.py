"""The lab store under load: 8 smoke jobs from two hosts (network namespaces, tests/test_two_hosts.py)
log to one `server --auth`, reached by its DNS name, as the lab's two writers, while the lab's
reviewer's two `report`s read it; under faults injected at logged points (the server killed and
restarted, one writer's command killed mid-job). No metric or table row is lost or written twice,
each job has one finished run, and the jobs' store-write latencies are printed (docs/performance.md,
"The lab store under load").

Slow (~4 min on 2 cores): run in CI by `.ci/run` (marker `ci`)."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from .test_chaos import Said, intact, seed_and_rng
from .test_server import READER
from .test_two_hosts import WHY_NOT, as_host, hosts, lab_server  # noqa: F401 (hosts: the fixture)

pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT or "namespaces work")

COMMANDS_PER_HOST = 4  # `run`s per host at once: each trains the jobs no other has reserved
# Each writer says the points of its jobs' lives (benchmarks/engine/points.py); the second (host 1)
# stops at its second metrics, where the test kills it; the server is killed once the writers
# have passed a number of points in all drawn from SERVER_KILL_AT ($CHAOS_SEED, as test_chaos.py).
POINTS = ["say", "metrics:2", *["say"] * (2 * COMMANDS_PER_HOST - 2)]
SERVER_KILL_AT = (6, 20)  # 8 jobs pass 4 points or more each (reserved, metrics, ending, ended)
RUN = ("run", "fig3", "--profile", "smoke", "--runs", "2")  # table1's 8 smoke jobs (fig3 is a view)
JOBS = 8
# A round of both readers starts at most this often (the first at once): back to back, the
# readers' start-ups took the writers' cores; a round every 45 s still reads the store mid-write
# (the writers' ~2 minutes hold 3 rounds).
READ_EVERY_S = 45
PER_EPOCH = ("train_loss", "test_acc", "samples_per_s", "system/staleness_mean")


@pytest.mark.slow
@pytest.mark.ci
def test_eight_jobs_from_two_hosts_with_two_readers_lose_nothing_and_write_nothing_twice(request, tmp_path):
    """Under faults: the server is killed (-9), its store checked intact, and restarted once the
    writers have passed a random number of points of their jobs, and one writer of host 1 is killed
    at its second metrics (a host's command dying mid-job); a last `run` from host 1 finishes what
    the dead one left. (tests/test_chaos.py kills the server 4 times under two writers: `-m slow`.)"""
    seed, rng = seed_and_rng()
    kill_at, intact_after = rng.randint(*SERVER_KILL_AT), ""
    two = request.getfixturevalue("hosts")
    server = lab_server(two, tmp_path / "mlflow.db")
    # Beats at their default (60 s): host 1's commands see the dead one's pid gone at once. With 1 s
    # beats the outage reclaimed live runs and found three double finishes, each fixed and pinned
    # by a test of its own in tests/test_spool.py; here the outage must not decide the outcome.
    beats: dict[str, str] = {}
    try:
        writers = [
            as_host(h, i % 2, *RUN, "--tracking-uri", server.uri, env={**beats, "BENCH_POINTS": say})
            for i, (h, say) in enumerate(zip(two * COMMANDS_PER_HOST, POINTS, strict=True))
        ]
        said = [Said(w) for w in writers]
        doomed, server_killed, reports, next_read = writers[1], False, 0, 0.0
        while any(w.poll() is None for w in writers):  # both readers at once, a round every READ_EVERY_S
            if doomed.poll() is None and said[1].stopped.is_set():
                doomed.kill()  # at its point: a command that dies mid-job
            if not server_killed and sum(s.points for s in said) >= kill_at:
                server.stop(signal.SIGKILL)  # between readers' rounds: a reader never starts into it
                intact_after = intact(server.store)
                time.sleep(2)
                server.start()
                server_killed = True
            if time.monotonic() < next_read:
                time.sleep(0.5)
                continue
            next_read = time.monotonic() + READ_EVERY_S
            out = ("--tracking-uri", server.uri, "--out")
            readers = [
                as_host(h, i, "report", "fig3", *out, str(tmp_path / f"r{i}"), env=READER)
                for i, h in enumerate(two)
            ]
            for reader in readers:
                _, err = reader.communicate(timeout=300)
                assert reader.returncode == 0 and "Traceback" not in err, err[-3000:]
                reports += 1
        errors = [s.text() for s in said]
        last_run = as_host(two[1], 1, *RUN, "--tracking-uri", server.uri, env=beats)
        _, last_run_err = last_run.communicate(timeout=600)
        last = as_host(
            two[1],
            1,
            "report",
            "fig3",
            "--tracking-uri",
            server.uri,
            "--out",
            str(tmp_path / "r"),
            "--to-store",
        )
        _, last_err = last.communicate(timeout=300)  # host 1's report, its files kept in the store
    finally:
        server.stop()
    note = f"CHAOS_SEED={seed}: the server killed after {kill_at} points"
    assert server_killed and doomed.returncode == -signal.SIGKILL, (server_killed, doomed.returncode, note)
    assert intact_after == "ok", (intact_after, note)  # SQLite's own check of the killed server's file
    assert last_run.returncode == 0 and "Traceback" not in last_run_err, last_run_err[-3000:]
    assert last.returncode == 0 and "Traceback" not in last_err, last_err[-3000:]
    for writer, err in zip(writers, errors, strict=True):
        assert writer is doomed or (writer.returncode == 0 and "Traceback" not in err), err[-3000:]
        # A row group the store lost to a late write is written again at the run's end (said).
        assert "not kept" not in err, [line for line in err.splitlines() if "not kept" in line]
    restored = sum(err.count("row groups of its") for err in [*errors, last_run_err])
    assert reports >= 2

    client = MlflowClient(tracking_uri=server.store)
    report = client.search_runs([client.get_experiment_by_name("reports").experiment_id])[0]
    served = tmp_path / "artifacts" / report.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    assert (served / "fig3-smoke.png").stat().st_size > 10_000 and (served / "fig3.md").exists()
    runs = client.search_runs([client.get_experiment_by_name("table1").experiment_id])
    # A reservation that met another's ends its run superseded (never deleted), and never RUNNING.
    stepped_back = [r for r in runs if r.data.tags["status"] == "superseded"]
    assert all(r.info.status == "KILLED" for r in stepped_back), [r.info for r in stepped_back]
    runs = [r for r in runs if r not in stepped_back]
    # Runs closed by another process as stale (the dead command's; a writer whose beats the outage
    # lost), each job run again: failed, or a late end that landed after the close (closed_by: it
    # never counts, core.result.counts_as_finished).
    closed = [r for r in runs if r.data.tags.get("closed_by") or r.data.tags["status"] == "failed"]
    assert closed, "the dead command's run was not closed"
    assert all(r.data.tags["stop_reason"] == "stale" or r.data.tags.get("closed_by") for r in closed)
    runs = [r for r in runs if r not in closed]
    statuses = [r.data.tags["status"] for r in runs]
    assert len(runs) == JOBS and set(statuses) == {"finished"}, statuses
    assert len(Counter(r.data.tags["job_key"] for r in runs)) == JOBS  # each job once
    latency = []
    for run in runs:
        run_id, epochs = run.info.run_id, int(run.data.metrics["epochs"])
        for name in PER_EPOCH:  # every epoch's value, once
            steps = sorted(m.step for m in client.get_metric_history(run_id, name))
            assert steps == list(range(epochs)), (run.info.run_name, name, steps)
        served = run.info.artifact_uri.removeprefix("mlflow-artifacts:/")  # as the server keeps it
        table = json.loads((tmp_path / "artifacts" / served / "staleness.json").read_text())
        rows = pd.DataFrame(table["data"], columns=table["columns"])  # one record a row group, once each
        groups = Counter(zip(rows["record_id"], rows["tensor"], strict=True))
        assert len(rows) and max(groups.values()) == 1, (run.info.run_name, groups.most_common(3))
        groups_in_store = sorted(set(rows["record_id"]))
        assert len(groups_in_store) == epochs, (run.info.run_name, groups_in_store, note)
        latency.append([run.data.metrics[f"system/store_write_{q}_s"] for q in ("p50", "p95", "max")])
    p50, p95, longest = np.array(latency).T
    print(
        f"\n{JOBS} jobs, {len(two)} hosts, {reports} reports; a job's store writes, over the jobs: "
        f"p50 median {np.median(p50):.3f} s, p95 median {np.median(p95):.3f} s (max {p95.max():.3f} s), "
        f"longest {longest.max():.3f} s; {restored} table(s) restored at a run's end ({note})"
    )
