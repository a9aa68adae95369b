"""Batch leases: the batch positions a worker takes from the shared counter, one at a time."""

from __future__ import annotations

import os
import time

from .config import POLL_S
from .state import SharedState


class Leases:
    """Batch positions leased from the shared counter, remembering the last one (for the LR)."""

    def __init__(self, state: SharedState, steps: int, parent_pid: int):
        self.state, self.steps, self.parent_pid = state, steps, parent_pid
        self.position = -1

    def __iter__(self):
        while (position := self.state.lease(self.steps)) is not None:
            if os.getppid() != self.parent_pid:
                return  # the averager is gone: stop at once
            self.position = position
            yield position


class RunLeases:
    """The authors' reading: batches of one epoch leased from the run's counter, starting at
    `first`; the lease that falls into a later epoch (or None at the run's end) is kept in `next`.

    A device's workers so run on from one epoch into the next without waiting for the others, as
    in bapi/LPP-SGD, where each worker loops over its DataLoader epochs (`test_train`, lines 110-118).
    """

    def __init__(self, state: SharedState, steps: int, total: int, parent_pid: int, first: int):
        self.state, self.steps, self.total, self.parent_pid = state, steps, total, parent_pid
        self.epoch, self.first = first // steps, first
        self.next: int | None = None
        self.position, self.count = -1, 0

    def __iter__(self):
        batch = self.first
        while True:
            if os.getppid() != self.parent_pid:
                return  # the averager is gone: stop at once
            self.position = batch % self.steps
            self.count += 1
            yield self.position
            while (batch := self.state.lease_in_run(self.steps, self.total)) == -1:
                if os.getppid() != self.parent_pid:
                    return
                time.sleep(POLL_S)  # SLOTS epochs ahead of the slowest device: wait for a report
            if batch is None or batch // self.steps != self.epoch:
                self.next = batch
                return
