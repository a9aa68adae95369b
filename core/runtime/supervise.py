"""Child processes started, watched and ended one way: the ranks of `--devices N`
(benchmarks/engine/distributed.py) and LAP-SGD's worker processes (methods/lapsgd/).

A child gets a one-way pipe to its parent and ends with one message on it: `(DONE, payload)` when
it finished, `(ERROR, "Type: message")` when it failed. Before that it may send `(RECORD, payload)`
any number of times, for the parent to act on as they come (a rank's metrics, which the
coordinator logs: only the coordinator opens the tracking store). A child that dies without a
message (kill -9, an OOM kill, a segfault) shows as end-of-file on its pipe, which leaves no named
semaphore behind.
Children ignore Ctrl-C from birth and die with their parent: the parent ends them.
"""

from __future__ import annotations

import logging
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import wait

from .allocator import tune_glibc_malloc
from .denormals import flush_denormals
from .processes import die_with_parent, start_without_sigint

log = logging.getLogger(__name__)

DONE, ERROR, RECORD = "done", "error", "record"
# How long children that are still starting get to exit after SIGTERM (they hold nothing yet).
STARTING_GRACE_S = 5.0


def enter_child(parent_pid: int) -> None:
    """The first lines of every spawned child: the suite's allocator setting, denormals flushed on
    the CPU, death with its parent (kill -9 of the parent takes the child with it), and Ctrl-C and a
    closing terminal's SIGHUP left to the parent, which ends its children in order."""
    tune_glibc_malloc()
    flush_denormals()
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


@contextmanager
def reporting(report) -> Iterator[None]:
    """Around a child's work: an exception is sent to the parent as `(ERROR, "Type: message")`
    (SystemExit, the parent ending the child, is not reported); the pipe is closed at the end."""
    try:
        yield
    except SystemExit:
        raise
    except BaseException as err:  # noqa: BLE001  (sent to the parent, which fails the job)
        log.debug("child failed:\n%s", traceback.format_exc())
        report.send((ERROR, f"{type(err).__name__}: {err}"))
    finally:
        report.close()


class Children:
    """Processes of one `target`, each called with its own args and, last, its pipe to the parent."""

    def __init__(
        self,
        mp_context,
        target: Callable,
        args: Sequence[tuple],
        names: Sequence[str],
        daemon: bool = False,
    ):
        self.procs, self.readers = [], []
        try:
            for child_args, name in zip(args, names, strict=True):
                reader, sender = mp_context.Pipe(duplex=False)
                self.readers.append(reader)
                proc = mp_context.Process(target=target, args=(*child_args, sender), name=name, daemon=daemon)
                self.procs.append(proc)  # before it starts: a Ctrl-C raised as start returns ends it too
                start_without_sigint(proc)
                sender.close()  # the parent only reads: a child's death then shows as end-of-file
        except BaseException:  # Ctrl-C while they start: end those started, then go on unwinding
            self.stop(STARTING_GRACE_S)
            raise

    def died(self, index: int) -> str:
        """What to say of a child that ended without a message."""
        self.procs[index].join(timeout=1)
        return f"died with exit code {self.procs[index].exitcode}"

    def failure(self) -> tuple[int, str, bool] | None:
        """Without blocking: (index, its error message or how it died, whether it died) of the first
        child that failed, or None."""
        for index, (proc, reader) in enumerate(zip(self.procs, self.readers, strict=True)):
            if proc.exitcode is None and not reader.poll():
                continue
            if reader.poll():
                try:
                    kind, payload = reader.recv()
                except EOFError:
                    kind = None
                if kind == ERROR:
                    return index, payload, False
                if kind in (DONE, RECORD):
                    continue
            if proc.exitcode is None:
                continue  # the pipe closed as the child exits: look again next poll
            return index, self.died(index), True
        return None

    def results(
        self, on_record: Callable[[int, object], None] | None = None
    ) -> tuple[dict[int, object], dict[int, str]]:
        """Block until every child has reported, or one has failed: (payloads, errors) by index;
        an error is the child's message, or `died with exit code N` for a child that sent none.
        Each RECORD a child sends before its report is handed to `on_record(index, payload)`."""
        pending = dict(enumerate(self.readers))
        by_reader = {id(reader): index for index, reader in pending.items()}
        payloads: dict[int, object] = {}
        errors: dict[int, str] = {}
        while pending and not errors:
            for reader in wait(list(pending.values()), timeout=0.5):
                index = by_reader[id(reader)]
                try:
                    kind, payload = reader.recv()
                except EOFError:
                    del pending[index]
                    errors[index] = self.died(index)
                    continue
                if kind == RECORD:
                    if on_record is not None:
                        on_record(index, payload)
                    continue
                del pending[index]
                if kind == ERROR:
                    errors[index] = payload
                else:
                    payloads[index] = payload
        return payloads, errors

    def stop(self, grace_s: float, terminate: bool = True) -> None:
        """End every child within `grace_s`: with `terminate`, SIGTERM now (then SIGKILL after the
        grace); without it, the caller has asked them to stop, and SIGTERM, then SIGKILL a second
        later, go to those still alive after the grace. Closes the pipes."""
        started = [proc for proc in self.procs if proc.pid is not None]
        if terminate:
            for proc in started:
                if proc.is_alive():
                    proc.terminate()
        deadline = time.monotonic() + grace_s
        for proc in started:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive() and not terminate:
                proc.terminate()
                proc.join(timeout=1)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for reader in self.readers:
            reader.close()
