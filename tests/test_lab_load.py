"""The lab store under load: 8 smoke jobs from two hosts (network namespaces, tests/test_two_hosts.py)
log to one `server --auth`, reached by its DNS name, as the lab's two writers, while the lab's
reviewer's two `report`s read it. No metric or table
row is lost or written twice, each job runs once, and the jobs' store-write latencies are printed
(docs/performance.md, "The lab store under load").

Slow (~3 min on 2 cores): run in CI by `.ci/run` (marker `ci`)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from .test_server import READER
from .test_two_hosts import WHY_NOT, as_host, hosts, lab_server  # noqa: F401 (hosts: the fixture)

pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT or "namespaces work")

COMMANDS_PER_HOST = 4  # `run`s per host at once: each trains the jobs no other has reserved
RUN = ("run", "fig3", "--profile", "smoke", "--runs", "2")  # table1's 8 smoke jobs (fig3 is a view)
JOBS = 8
PER_EPOCH = ("train_loss", "test_acc", "samples_per_s", "system/staleness_mean")


@pytest.mark.slow
@pytest.mark.ci
def test_eight_jobs_from_two_hosts_with_two_readers_lose_nothing_and_write_nothing_twice(request, tmp_path):
    two = request.getfixturevalue("hosts")
    server = lab_server(two, tmp_path / "mlflow.db")
    try:
        writers = [
            as_host(h, i % 2, *RUN, "--tracking-uri", server.uri)
            for i, h in enumerate(two * COMMANDS_PER_HOST)
        ]
        reports = 0
        while any(w.poll() is None for w in writers):  # both readers at once, again and again
            out = ("--tracking-uri", server.uri, "--out")
            readers = [
                as_host(h, i, "report", "fig3", *out, str(tmp_path / f"r{i}"), env=READER)
                for i, h in enumerate(two)
            ]
            for reader in readers:
                _, err = reader.communicate(timeout=300)
                assert reader.returncode == 0 and "Traceback" not in err, err[-3000:]
                reports += 1
        outputs = [w.communicate(timeout=60) for w in writers]
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
    assert last.returncode == 0 and "Traceback" not in last_err, last_err[-3000:]
    for writer, (_, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0 and "Traceback" not in err, err[-3000:]
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
        assert rows["record_id"].nunique() == epochs, (run.info.run_name, sorted(set(rows["record_id"])))
        latency.append([run.data.metrics[f"system/store_write_{q}_s"] for q in ("p50", "p95", "max")])
    p50, p95, longest = np.array(latency).T
    print(
        f"\n{JOBS} jobs, {len(two)} hosts, {reports} reports; a job's store writes, over the jobs: "
        f"p50 median {np.median(p50):.3f} s, p95 median {np.median(p95):.3f} s (max {p95.max():.3f} s), "
        f"longest {longest.max():.3f} s"
    )
