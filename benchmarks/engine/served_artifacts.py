"""Artifacts through the server: a run whose experiment was created on the SQLite file (before the
store was served) has a `file://` artifact location, a path of the server's host. A job on another
host would write its tables into its own disk there, or fail. Over a server (`server` serves the
store's `artifacts/` folder, the folder those paths name), the suite's client sends such a run's
artifacts through the server's proxy (`mlflow-artifacts:/EXPERIMENT/RUN/artifacts`), so they land
where a local command reads them and nothing in the store is rewritten (docs/design.md, "A lab's
server")."""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import urlparse


def proxied_location(artifact_uri: str) -> str | None:
    """The `mlflow-artifacts:` URI of a run's `file://` location in the suite's layout
    (`.../artifacts/EXPERIMENT/RUN_ID/artifacts`, Store.artifacts); None for any other location."""
    if not artifact_uri.startswith("file:"):
        return None
    parts = PurePosixPath(urlparse(artifact_uri).path).parts
    if len(parts) < 5 or parts[-1] != "artifacts" or parts[-4] != "artifacts":
        return None
    return "mlflow-artifacts:/" + "/".join(parts[-3:])


def route_through_server(client, tracking_uri: str) -> None:
    """Make `client` (an MlflowClient of a server) read and write the artifacts of runs with a
    `file://` location of the suite's layout through the server's proxy.

    MLflow picks a run's artifact repository from its location alone (the tracking service
    client's `_get_artifact_repo`, every artifact call's one way in): it is wrapped here, the one
    use of a private MLflow name in the suite; tests/test_server.py fails if it changes."""
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

    service = client._tracking_client
    resolve = service._get_artifact_repo

    def artifact_repo(resource_id, *args, **kwargs):
        repo = resolve(resource_id, *args, **kwargs)
        proxied = proxied_location(getattr(repo, "artifact_uri", ""))
        return repo if proxied is None else MlflowArtifactsRepository(proxied, tracking_uri=tracking_uri)

    service._get_artifact_repo = artifact_repo
