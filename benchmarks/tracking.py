"""MLflow tracking with the schema of DESIGN.md: one experiment per table, one run per job."""

from __future__ import annotations

import functools
import logging
import os
import platform
import subprocess
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


def default_tracking_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else the SQLite store results/mlflow.db of this checkout."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'results' / 'mlflow.db'}"


@functools.cache
def git_sha() -> str:
    """The checkout's commit, with `-dirty` when it has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return (sha or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.cache
def hardware() -> str:
    """GPU name x count where CUDA is used, else the CPU model and its core count."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} cores)"


class Tracker:
    """Writes runs to an MLflow store through one explicit client (no global active run)."""

    def __init__(self, uri: str | None = None):
        # MLflow and alembic announce every schema migration of a new SQLite store at INFO.
        for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking._tracking_service.client"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        self.uri = uri or default_tracking_uri()
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        self._experiments: dict[str, str] = {}

    def experiment_id(self, name: str) -> str:
        """The id of experiment `name`, created on first use with artifacts under results/."""
        if name not in self._experiments:
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                artifacts = (PROJECT_ROOT / "results" / "artifacts" / name).as_uri()
                exp_id = self.client.create_experiment(name, artifact_location=artifacts)
            else:
                exp_id = exp.experiment_id
            self._experiments[name] = exp_id
        return self._experiments[name]

    def finished_run(self, experiment: str, job_key: str):
        """The newest finished run of `job_key` in `experiment`, or None."""
        runs = self.client.search_runs(
            [self.experiment_id(experiment)],
            filter_string=f"tags.job_key = '{job_key}' and tags.status = 'finished'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def start(self, experiment: str, run_name: str, tags: dict, params: dict) -> str:
        """Create a run with its tags and params; returns its id."""
        from mlflow.entities import Param

        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name, tags=_str(tags))
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
            self.client.log_batch(run.info.run_id, params=items[i : i + 100], synchronous=True)
        return run.info.run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """Log a set of metrics at one step in one call."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def finish(self, run_id: str, status: str, tags: dict) -> None:
        """Set the final tags and end the run (MLflow status FINISHED, FAILED or KILLED)."""
        from mlflow.entities import RunTag

        tags = {"status": status, **tags}
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        mlflow_status = {"finished": "FINISHED", "diverged": "FINISHED", "interrupted": "KILLED"}.get(
            status, "FAILED"
        )
        self.client.set_terminated(run_id, status=mlflow_status)


class NullTracker(Tracker):
    """A tracker that records nothing (for perf benchmarks, which must not time MLflow)."""

    def __init__(self):
        self.uri = None

    def finished_run(self, experiment, job_key):
        return None

    def start(self, experiment, run_name, tags, params):
        return "untracked"

    def log_metrics(self, run_id, metrics, step):
        pass

    def finish(self, run_id, status, tags):
        pass


def _str(tags: dict) -> dict[str, str]:
    return {k: str(v) for k, v in tags.items()}
