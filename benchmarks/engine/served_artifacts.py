"""Artifacts through the server: a run whose experiment was created on the SQLite file (before the
store was served) has a `file://` artifact location, a path of the server's host. A job on another
host would write its tables into its own disk there, or fail. Over a server (`server` serves the
store's `artifacts/` folder, the folder those paths name), the suite's client sends such a run's
artifacts through the server's proxy, by the experiment's id
(`mlflow-artifacts:/EXPERIMENT_ID/RUN_ID/artifacts`): MLflow's basic-auth judges a proxied
artifact by the id its path starts with, so a writer may write it. Experiments the suite made
before 2026-11-28 keep a folder named after the experiment; `server` links each such folder by its
id when it starts (`link_named_folders`). Nothing in the store is rewritten (docs/design.md, "A
lab's server")."""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

log = logging.getLogger(__name__)


def suite_layout(artifact_uri: str) -> tuple[str, str] | None:
    """(experiment folder, run id) of a run's `file://` location in the suite's layout
    (`.../artifacts/FOLDER/RUN_ID/artifacts`); None for any other location."""
    if not artifact_uri.startswith("file:"):
        return None
    parts = PurePosixPath(urlparse(artifact_uri).path).parts
    if len(parts) < 5 or parts[-1] != "artifacts" or parts[-4] != "artifacts":
        return None
    return parts[-3], parts[-2]


def proxied_location(artifact_uri: str, experiment_id: str) -> str | None:
    """The `mlflow-artifacts:` URI, by experiment id, of a run's `file://` location in the suite's
    layout; None for any other location."""
    layout = suite_layout(artifact_uri)
    return None if layout is None else f"mlflow-artifacts:/{experiment_id}/{layout[1]}/artifacts"


def route_through_server(client, tracking_uri: str) -> None:
    """Make `client` (an MlflowClient of a server) read and write the artifacts of runs with a
    `file://` location of the suite's layout through the server's proxy.

    MLflow picks a run's artifact repository from its location alone (the tracking service
    client's `_get_artifact_repo`, every artifact call's one way in): it is wrapped here, the one
    use of a private MLflow name in the suite; tests/test_server.py fails if it changes."""
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

    service = client._tracking_client
    resolve = service._get_artifact_repo
    experiment_of: dict[str, str] = {}  # run id -> experiment id, for folders named otherwise

    def artifact_repo(resource_id, *args, **kwargs):
        repo = resolve(resource_id, *args, **kwargs)
        layout = suite_layout(getattr(repo, "artifact_uri", ""))
        if layout is None:
            return repo
        folder, run_id = layout
        if not folder.isdigit() and run_id not in experiment_of:
            experiment_of[run_id] = service.get_run(run_id).info.experiment_id
        proxied = proxied_location(repo.artifact_uri, experiment_of.get(run_id, folder))
        return MlflowArtifactsRepository(proxied, tracking_uri=tracking_uri)

    service._get_artifact_repo = artifact_repo


def link_named_folders(client, artifacts: Path) -> None:
    """Link each experiment folder of `artifacts` named otherwise than by its experiment's id
    (made by the suite before 2026-11-28) as `artifacts/<id>`, where the server's proxy looks for
    it; a name already taken by something else is said in one line and left."""
    for experiment in client.search_experiments(view_type=3):  # ViewType.ALL: deleted ones too
        location = experiment.artifact_location or ""
        if not location.startswith("file:"):
            continue
        folder = Path(urlparse(location).path)
        if folder.parent != artifacts or folder.name == experiment.experiment_id:
            continue
        link = artifacts / experiment.experiment_id
        if link.is_symlink() and os.readlink(link) == folder.name:
            continue
        if link.exists() or link.is_symlink():
            log.warning(
                "artifacts of experiment %r cannot be served by its id: %s is taken", experiment.name, link
            )
            continue
        folder.mkdir(parents=True, exist_ok=True)  # a link to a missing folder could not be written into
        link.symlink_to(folder.name)
