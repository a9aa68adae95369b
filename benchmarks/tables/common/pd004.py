"""What the tables of 004 (the later version of 000: PD-ASGD, `pd-*`) share."""

from __future__ import annotations

from ...profiles import hyperparameters
from .spec import six_digits


def epochs_settings(
    dataset: str, model: str, profile: str, epochs: dict[str, int]
) -> tuple[int | None, dict[str, float]]:
    """(max_epochs, settings) for a table that trains fewer epochs than its profile at `quick`:
    the cosine is compressed to them (ending at zero on the last epoch, as the profile's own)."""
    count = epochs.get(profile)
    if count is None:
        return None, {}
    base = hyperparameters(dataset, model, profile)
    return count, {"t_max": six_digits(max(count - base.warmup_epochs, 0.5))}
