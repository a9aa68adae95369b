"""The counters, flags and epoch statistics one averager shares with its workers."""

from __future__ import annotations

import torch


class SharedState:
    """Counters and flags one averager shares with its workers, in shared memory.

    `ints` holds the epoch being trained (+1: the go signal), the next batch position to lease,
    the update counter S, how many workers have finished the epoch, the halt (budget), stop (end
    of training) and partitioned-phase flags, then (authors' reading) the batches finished over
    the run, the first epoch workers may not enter yet, and the batches finished per epoch slot.
    Increments happen under `lock`; plain reads and single writes of an aligned int64 need none.
    `stats` holds, per worker and epoch slot (epoch % SLOTS), the epoch's sum of losses, correct
    predictions and samples, on the device (no sync per step).
    """

    EPOCH_GO, NEXT_BATCH, UPDATES, DONE, READY, HALT, STOP, PARTITIONED, FINISHED, EPOCH_LIMIT = range(10)
    SLOT_FINISHED = 10  # then, per epoch slot, the batches finished in it
    SLOTS = 4  # epochs a device's workers may run ahead of the last epoch reported (authors' reading)

    def __init__(self, mp_ctx, workers: int, device: torch.device):
        self.ints = torch.zeros(self.SLOT_FINISHED + self.SLOTS, dtype=torch.int64).share_memory_()
        self.ints[self.EPOCH_LIMIT] = self.SLOTS
        self.lock = mp_ctx.Lock()
        self.stats = torch.zeros(workers, self.SLOTS, 3, dtype=torch.float64, device=device)
        if device.type == "cpu":
            self.stats.share_memory_()

    def get(self, field: int) -> int:
        """Read one counter or flag."""
        return int(self.ints[field])

    def set(self, field: int, value: int) -> None:
        """Write one counter or flag (a single aligned store)."""
        self.ints[field] = value

    def increment(self, field: int) -> None:
        """Add one, atomically with respect to the other processes."""
        with self.lock:
            self.ints[field] += 1

    def lease(self, steps: int) -> int | None:
        """The next batch position of the epoch, counting one update in S; None when there is none."""
        with self.lock:
            position = int(self.ints[self.NEXT_BATCH])
            if position >= steps or self.ints[self.HALT] or self.ints[self.STOP]:
                return None
            self.ints[self.NEXT_BATCH] = position + 1
            self.ints[self.UPDATES] += 1  # s := read-and-inc(S), Algorithm 1a line 4
            return position

    def lease_in_run(self, steps: int, total: int) -> int | None:
        """The authors' reading: the next batch of the whole run (epoch x steps + position), leased
        without waiting for an epoch start; -1 while its epoch slot is still to be reported; None
        when the run has no batch left (or is halted or stopped)."""
        with self.lock:
            batch = int(self.ints[self.NEXT_BATCH])
            if batch >= total or self.ints[self.HALT] or self.ints[self.STOP]:
                return None
            if batch // steps >= self.ints[self.EPOCH_LIMIT]:
                return -1
            self.ints[self.NEXT_BATCH] = batch + 1
            return batch

    def finish(self, epoch: int, batches: int) -> None:
        """Count `batches` of epoch `epoch` as trained (their stats are in `stats`)."""
        with self.lock:
            self.ints[self.FINISHED] += batches
            self.ints[self.SLOT_FINISHED + epoch % self.SLOTS] += batches

    def finished_in(self, epoch: int) -> int:
        """Batches of epoch `epoch` trained so far (authors' reading)."""
        return int(self.ints[self.SLOT_FINISHED + epoch % self.SLOTS])

    def epoch_stats(self, epoch: int) -> torch.Tensor:
        """(loss sum, correct, samples) of epoch `epoch`, over the workers."""
        return self.stats[:, epoch % self.SLOTS].sum(0)

    def release_slot(self, epoch: int) -> None:
        """Epoch `epoch` is reported: clear its slot for epoch + SLOTS, and let the workers enter it."""
        with self.lock:
            self.stats[:, epoch % self.SLOTS].zero_()
            if self.stats.is_cuda:
                torch.cuda.synchronize(self.stats.device)  # zeroed before any worker adds to it
            self.ints[self.SLOT_FINISHED + epoch % self.SLOTS] = 0
            self.ints[self.EPOCH_LIMIT] = epoch + 1 + self.SLOTS

    def start_epoch(self, epoch: int) -> None:
        """Reset the epoch's counters, then let the workers go."""
        with self.lock:
            self.ints[self.NEXT_BATCH] = 0
            self.ints[self.DONE] = 0
            self.ints[self.EPOCH_GO] = epoch + 1
