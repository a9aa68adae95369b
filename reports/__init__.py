"""MLflow runs -> Markdown, CSV and PNG: the table reports (`render.py`, one kind per module of
`kinds/`) and the claims' verdicts (`claims/`, one claim per module)."""

from . import kinds  # noqa: F401  (fills the registry of report kinds)
