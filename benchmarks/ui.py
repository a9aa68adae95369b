"""`python -m benchmarks ui`: the MLflow UI over the suite's store, opened on its experiments' runs.

MLflow 3 lands on its home page, whose first panels are for GenAI work (traces, prompts). Each
table's experiment is tagged a model-training experiment, whose runs page shows the training
view; this prints a direct link to each one (newest first), then starts `mlflow ui` in the
foreground. The chart view opens on the curves against the training clock (`by_train_s/`), then
the key metrics, then the diagnostics under `system/` (core/metric.py says why in that order).
"""

from __future__ import annotations

import os
import shutil
import sys

from core.errors import UserError

from .engine.tracking import Tracker
from .server import LOOPBACK


def experiment_links(tracker: Tracker, base: str) -> list[str]:
    """'name: URL' of each experiment with runs, most recently updated first (Default last): its
    runs in the chart view, which opens on accuracy and loss against the training clock."""
    experiments = tracker.client.search_experiments(order_by=["last_update_time DESC"])
    lines = []
    for experiment in experiments:
        empty = not tracker.client.search_runs([experiment.experiment_id], max_results=1)
        if experiment.name == "Default" and empty:
            continue
        runs = f"{base}/#/experiments/{experiment.experiment_id}/runs"
        lines.append(f"{experiment.name}: {runs}?compareRunsMode=CHART")
    return lines


def ui(uri: str | None, host: str, port: int) -> int:
    """Print the experiments' links, then run the MLflow UI on the store (until Ctrl-C); on loopback
    only: the UI writes too, and `server --auth` is the store's page for a network."""
    if host not in LOOPBACK:
        raise UserError(
            f"`ui --host {host}` would open the store to the network with no users: serve it with "
            "`python -m benchmarks server --auth` (its page is this UI), or keep `ui` on 127.0.0.1"
        )
    tracker = Tracker(uri, create=False)
    if not tracker.uri.startswith("sqlite:///"):
        raise UserError(f"`ui` serves a local SQLite store; {tracker.uri} has its own server: open it there")
    base = f"http://{host}:{port}"
    links = experiment_links(tracker, base)
    print(f"MLflow UI on {base} over {tracker.uri}; each table's runs (the table: the list icon):")
    for line in links or ["(no experiments yet: `python -m benchmarks run TABLE` first)"]:
        print(f"  {line}")
    sys.stdout.flush()
    mlflow = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    if mlflow is None:
        raise UserError("the mlflow command is not installed beside this Python; `make ui` installs it")
    os.execv(mlflow, [mlflow, "ui", "--backend-store-uri", tracker.uri, "--host", host, "--port", str(port)])
    return 0  # not reached
