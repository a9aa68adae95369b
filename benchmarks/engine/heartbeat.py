"""Heartbeats: a running run's `heartbeat` tag, the time (Unix seconds) its process last said it
lives, set every `beat_every_s()` by a thread of the process that opened the run. A run `running`
on another host, whose process this host cannot see, is taken for dead once its heartbeat is
`MISSED_BEATS` beats old: the next `run` closes it as failed (stale) and runs its job again
(docs/design.md, "Hosts that die")."""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Mapping

from core.errors import one_line

BEAT_EVERY_S = 60.0  # a write a minute per running job: nothing beside an epoch's metrics
MISSED_BEATS = 10  # 10 minutes: a server away or a host's clock off by minutes does not reclaim a live job
log = logging.getLogger(__name__)


def beat_every_s() -> float:
    """Seconds between a run's heartbeats: `$BENCH_HEARTBEAT_S`, else 60."""
    return float(os.environ.get("BENCH_HEARTBEAT_S", BEAT_EVERY_S))


def host_time() -> float:
    """This host's clock, in Unix seconds (one name, so that a test can set a host's clock apart)."""
    return time.time()


def server_offset_s(uri: str) -> float:
    """How far the clock of the server at `uri` is ahead of this host's, in seconds: its answer's
    `Date` header (whole seconds) against the middle of the request on this host's clock. 0 where
    it cannot be read (an old proxy, a failed request: the hosts' clocks then decide, as before)."""
    import email.utils

    import requests

    verify: str | bool = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        verify = False
    try:
        sent = host_time()
        reply = requests.get(f"{uri.rstrip('/')}/health", timeout=5, verify=verify)
        received = host_time()
        server = email.utils.parsedate_to_datetime(reply.headers["Date"]).timestamp()
    except Exception as err:  # noqa: BLE001  (any failure: no offset, said once)
        log.warning(
            "cannot read the clock of %s (%s): ages are judged by this host's clock", uri, one_line(err)
        )
        return 0.0
    return server + 0.5 - (sent + received) / 2  # the header truncates to the second: its middle


def beat(offset_s: float = 0.0) -> str:
    """A heartbeat tag's value: now on the store's clock (this host's plus `offset_s`), Unix seconds."""
    return f"{host_time() + offset_s:.1f}"


def missed_s(tags: Mapping[str, str], now: float | None = None) -> float | None:
    """How long a run's heartbeat has been missed at `now` (the store's clock; default this host's),
    where it is past MISSED_BEATS of the beats its own process set (its `heartbeat_s` tag, written
    once at its start: no reader's environment changes it; BEAT_EVERY_S for runs of before that
    tag); else None (a recent beat, or a run of before heartbeats: no evidence that its process
    died)."""
    try:
        last = float(tags["heartbeat"])
    except (KeyError, ValueError):
        return None
    try:
        every = float(tags["heartbeat_s"])
    except (KeyError, ValueError):
        every = BEAT_EVERY_S
    age = (host_time() if now is None else now) - last
    return age if age > MISSED_BEATS * every else None


def reclaimed_status(tags: Mapping[str, str]) -> str | None:
    """Where a run's tags say another process closed it (a host that missed its heartbeats, its
    job reclaimed: status failed, stop_reason stale): that status, in a few words; else None."""
    if tags.get("status") in (None, "running"):
        return None
    return f"{tags.get('status')}, {tags.get('stop_reason', '')}".strip(", ")


class Heartbeat:
    """A daemon thread setting the `heartbeat` tag of the runs it holds, every beat_every_s(),
    through a client of its own; a beat that fails (a server away) is skipped, not retried, and
    counted: its first failure is logged at once, the count when the run ends (`failed`). The
    thread ends when it holds no run (a `run`'s next job starts another)."""

    def __init__(self, uri: str, offset_s: float = 0.0):
        self.uri = uri
        self.offset_s = offset_s  # the store's clock ahead of this host's (server_offset_s)
        self.runs: set[str] = set()
        self.beats: collections.Counter[str] = collections.Counter()  # run -> beats tried
        self.failed: collections.Counter[str] = collections.Counter()  # run -> beats that failed
        # run -> how another process closed it, found by a beat: its job was reclaimed while this
        # process was stopped; the tracker refuses its later records (a fence before each beat).
        self.fenced: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()  # set when the last run is removed: the thread ends now
        self._thread: threading.Thread | None = None

    def add(self, run_id: str) -> None:
        """Beat for `run_id` from now on (the thread starts with the first run)."""
        with self._lock:
            self.runs.add(run_id)
            self._wake.clear()  # a thread woken to end holds a run again: it waits a beat
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
                self._thread.start()

    def remove(self, run_id: str) -> None:
        """Stop beating for `run_id` (its end is logged)."""
        with self._lock:
            self.runs.discard(run_id)
            if not self.runs:
                self._wake.set()
            failed, beats = self.failed.pop(run_id, 0), self.beats.pop(run_id, 0)
        if failed:
            log.warning(
                "run %s: %d of its %d heartbeats failed (a reader may take it for dead)",
                run_id,
                failed,
                beats,
            )

    def _beat(self) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.uri)
        while True:
            # An Event, not time.sleep: the thread ends as soon as it holds no run.
            self._wake.wait(beat_every_s())
            with self._lock:
                self._wake.clear()
                runs = sorted(self.runs)
                if not runs:
                    self._thread = None
                    return
            for run_id in runs:
                with self._lock:
                    if run_id not in self.runs:  # ended while this beat was in flight
                        continue
                    self.beats[run_id] += 1
                try:
                    if closed := reclaimed_status(client.get_run(run_id).data.tags):
                        self.fenced[run_id] = closed  # never beat for a run another process closed
                        continue
                    client.set_tag(run_id, "heartbeat", beat(self.offset_s))
                except Exception as err:  # noqa: BLE001  (an away server, a locked file: the next beat tries again)
                    self._count_failure(run_id, err)

    def _count_failure(self, run_id: str, err: Exception) -> None:
        """Count a failed beat of a run still held; say the first at once."""
        with self._lock:
            if run_id not in self.runs:
                return
            self.failed[run_id] += 1
            first = self.failed[run_id] == 1
        if first:
            log.warning("run %s: a heartbeat failed (%s); the next beats try again", run_id, one_line(err))
