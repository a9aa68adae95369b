"""LAP-SGD's settings and the constants its processes share."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import UserError

READINGS = ("paper", "authors_code")

POLL_S = 0.005  # shortest polling period of the averager and idle workers (002's parent busy-loops)
MAX_POLL_S = 0.05
START_TIMEOUT_S = 300.0  # a worker that has not started by then (imports, data) fails the job
# Workers finish their batch (or start-up) within it, else are terminated; below distributed.GRACE_S.
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class LapConfig:
    """LAP-SGD's knobs (docs/methods.md): U workers per device, the averaging period K, its switch point."""

    workers_per_device: int = 1  # 000 §4: "the number of processes per GPU to be 1"
    average_every: int = 16  # K after the switch (before it K = 1), as 002 §3 after PL-SGD
    average_switch: float = 0.5  # fraction of the budget with K = 1
    reading: str = "paper"  # paper: 002's text; authors_code: as bapi/LPP-SGD runs it (module docstring)

    def validate(self) -> None:
        """Reject values that cannot run, with one line naming the key."""
        if self.workers_per_device < 1:
            raise UserError(f"workers_per_device must be >= 1, got {self.workers_per_device}")
        if self.average_every < 1:
            raise UserError(f"average_every must be >= 1, got {self.average_every}")
        if not 0.0 <= self.average_switch <= 1.0:
            raise UserError(f"average_switch must be in [0, 1], got {self.average_switch}")
        if self.reading not in READINGS:
            raise UserError(f"reading must be one of {', '.join(READINGS)}, got {self.reading!r}")
