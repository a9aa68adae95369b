"""The spool: a run's records kept in a file while its tracking server does not answer, sent when it
answers again, or later by `python -m benchmarks sync` (docs/design.md, "When the server is away").

A spool is JSON lines: a header (the store, the run, the host and process that own it), then the
records in the order they were logged (`op`: metrics, tags, dataset, table, end; `id`: their
number in the run), and `{"sent": N}` lines, each saying the first N records are in the store.
Each line is fsynced. A record is sent again after a crash between sending and marking, or after a
request that timed out once the server had applied it: harmless for metrics, tags and the end
(MLflow keeps one copy of a metric with the same key, step, time and value), and a table's rows
carry their record's id (`record_id`), so a row already in the store is not appended twice. One
process sends a spool at a time (a lock on its file), and only on its own host.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import StorageError
from core.metric import ENGINE

CHECKOUT = Path(__file__).resolve().parents[2]  # benchmarks/engine/spool.py -> the checkout
SPOOL_LIMIT_BYTES = 64 << 20  # a run logs kilobytes per epoch: this bound is never reached by a job
RETRY_S = 10.0  # between tries of an away server while the job trains
log = logging.getLogger(__name__)


def spool_dir() -> Path:
    """Where this host keeps spools: `$BENCH_SPOOL_DIR`, else results/spool/ of this checkout."""
    return Path(os.environ.get("BENCH_SPOOL_DIR") or CHECKOUT / "results" / "spool")


def spool_path(run_id: str) -> Path:
    """The spool file of run `run_id` on this host."""
    return spool_dir() / f"{run_id}.jsonl"


def waiting_spools() -> list[Path]:
    """The spools this host holds, not yet sent."""
    return sorted(spool_dir().glob("*.jsonl"))


def wait_at_end_s() -> float:
    """How long a job that ends while its server is away waits for it: `$BENCH_STORE_WAIT_S`, else 60."""
    return float(os.environ.get("BENCH_STORE_WAIT_S", "60"))


def http_status(err: BaseException) -> int:
    """The HTTP status a store call failed with (0 where none): MLflow's exceptions, requests'
    HTTPError (an artifact up- or download through the server) and urllib's (its `code`)."""
    import requests

    if hasattr(err, "get_http_status_code"):
        return int(err.get_http_status_code() or 0)
    if isinstance(err, requests.exceptions.HTTPError) and err.response is not None:
        return int(err.response.status_code)
    code = getattr(err, "code", 0)
    return code if isinstance(code, int) else 0


def refused(err: BaseException) -> bool:
    """Whether the server refused who we are (401) or what we asked (403): never "away", never
    passed over; the spool stays as it is."""
    return http_status(err) in (401, 403)


def server_away(err: BaseException) -> bool:
    """Whether a store call failed because the server did not answer (refused connections, timed
    out, a 5xx while it restarts, its name not found), not because it refused the request (a 4xx)
    or this host failed (a local file: permissions, a full disk), which are said, never spooled."""
    import requests
    from mlflow.exceptions import MlflowException

    if untrusted_certificate(err):  # it answered: with a certificate this host does not trust
        return False
    if isinstance(err, MlflowException | requests.exceptions.HTTPError):
        return http_status(err) >= 500
    network = (requests.exceptions.RequestException, ConnectionError, TimeoutError, socket.gaierror)
    return isinstance(err, network)


def untrusted_certificate(err: BaseException) -> bool:
    """Whether an HTTPS server's certificate failed this host's check (MLflow wraps the SSL error
    in its own exception's text, so the text decides)."""
    return "CERTIFICATE_VERIFY_FAILED" in str(err) or isinstance(err, ssl.SSLCertVerificationError)


def away_reason(err: BaseException) -> str:
    """Why the server did not answer, in a few words (MLflow's message is a paragraph of urllib3's)."""
    text = str(err)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("Name or service not known", "unknown host"),
        ("No route to host", "no route to host"),
    ):
        if needle in text:
            return reason
    return " ".join(text.split())[:120]


@dataclass
class Spool:
    """The records of one run not yet in the store, in order, mirrored in `path`."""

    path: Path
    header: dict
    records: list[dict] = field(default_factory=list)
    sent: int = 0
    retry_at: float = 0.0  # time.monotonic() before which the server is not tried again
    size: int = 0  # bytes of its lines, on disk or (past a disk error) in memory alone
    dropped: int = 0  # records past SPOOL_LIMIT_BYTES, not kept (counted, said at the run's end)
    on_disk: int = 0  # records written to the file (all of them, unless the disk refused one)
    # Why the file cannot be written (a full disk): later records are kept in memory alone, and
    # are lost if the process ends before its server answers.
    disk_error: str = ""

    @classmethod
    def create(cls, uri: str, run_id: str, run_name: str) -> Spool:
        """A new spool of run `run_id` of store `uri`, in spool_dir()."""
        from core.runtime.processes import identity

        # host, pid, pid_start: `sync` leaves alone the spool of a job still running.
        header = dict(spool=1, uri=uri, run_id=run_id, run_name=run_name, **identity())
        spool = cls(spool_path(run_id), header)
        try:
            spool.path.parent.mkdir(parents=True, exist_ok=True)
            spool.path.unlink(missing_ok=True)
        except OSError as err:
            spool.disk_error = err.strerror or str(err)
        spool._write(json.dumps(header) + "\n")
        return spool

    @classmethod
    def load(cls, path: Path) -> Spool:
        """The spool in `path` (a StorageError naming it where it is no spool). A torn last line (a
        crash mid-write) is skipped, and said in one line; a bad line before it is an error."""
        try:
            texts = [line for line in path.read_text().splitlines() if line.strip()]
        except OSError as err:
            raise StorageError(f"cannot read the spool {path}: {err.strerror}") from None
        lines = []
        for number, text in enumerate(texts, 1):
            try:
                lines.append(json.loads(text))
            except ValueError as err:
                if number < len(texts):
                    raise StorageError(f"cannot read the spool {path}: line {number}: {err}") from None
                log.warning("spool %s: its last line was cut off by a crash mid-write: skipped", path)
        if not lines or lines[0].get("spool") != 1:
            raise StorageError(f"{path} is not a spool of this suite (no header)")
        spool = cls(path, lines[0], size=sum(len(text) + 1 for text in texts))
        for line in lines[1:]:
            if "sent" in line:
                spool.sent = max(spool.sent, int(line["sent"]))
            else:
                spool.records.append(line)
        return spool

    @property
    def run_id(self) -> str:
        return self.header["run_id"]

    def pending(self) -> list[dict]:
        """The records not yet in the store."""
        return self.records[self.sent :]

    def sent_own_status(self) -> bool:
        """Whether the records already in the store set the run's status (its end began landing:
        a status the store shows is then this run's own, not another process's)."""
        return any(r["op"] == "tags" and "status" in r["tags"] for r in self.records[: self.sent])

    def ended(self) -> bool:
        """Whether the run's end is among the records (else its process died first)."""
        return any(r["op"] == "end" for r in self.records)

    def append(self, record: dict) -> None:
        """Add a record; past SPOOL_LIMIT_BYTES it is dropped and counted (a run's end never is)."""
        line = json.dumps(record) + "\n"
        if self.size + len(line) > SPOOL_LIMIT_BYTES and record["op"] != "end":
            self.dropped += 1
            return
        self._write(line)
        self.records.append(record)
        self.on_disk += not self.disk_error

    def close_as_stale(self) -> None:
        """End a run whose process died before logging its end: its failure, then its end, added
        in memory only (a sync the server refuses leaves the file as it was; the next one adds them
        again at the same places)."""
        error = "its process ended before its run's end was logged"
        self.records.append(dict(op="tags", tags=dict(status="failed", stop_reason="stale", error=error)))
        self.records.append(dict(op="end", status="FAILED", end_time=int(time.time() * 1000)))

    def mark_sent(self, count: int) -> None:
        """Record that the first `count` records are in the store."""
        self.sent = count
        self._write(json.dumps({"sent": count}) + "\n")

    def _write(self, line: str) -> None:
        # Lines are few (one per record or epoch while the server is away): each is on disk when
        # this returns, so a power cut loses at most the line being written (`load` skips it). A
        # disk that refuses a write (full, read-only) never ends the job: from then on the records
        # are kept in memory alone (`disk_error`), and the file keeps what it had.
        self.size += len(line)
        if self.disk_error:
            return
        try:
            self._quarantine_torn_tail()
            with self.path.open("a") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            self.disk_error = err.strerror or str(err)

    def _quarantine_torn_tail(self) -> None:
        """Where the file does not end a line (a crash cut its last write), move the fragment to
        `<spool>.torn` and cut the file after its last whole line: the next line starts fresh, and
        the fragment never glues onto it into a line no one can read."""
        if not self.path.exists():
            return  # the header is the first write
        with self.path.open("rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            handle.seek(0)
            data = handle.read()
            keep = data.rfind(b"\n") + 1
            torn = self.path.with_name(self.path.name + ".torn")
            with torn.open("ab") as out:
                out.write(data[keep:] + b"\n")
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        log.warning("spool %s: a line cut off by a crash mid-write is moved to %s", self.path, torn)

    def foreign(self) -> str:
        """The host that owns this spool where it is not this one, else ''."""
        host = self.header.get("host", "")
        return host if host and host != socket.gethostname() else ""

    @contextlib.contextmanager
    def sending(self):
        """Hold this spool's lock while sending it: one sender at a time, across processes. Yields
        the spool as it is on disk once locked (None where another process holds the lock, or sent
        it and removed it meanwhile)."""
        import fcntl

        try:
            handle = self.path.open()  # not "a": a spool sent and removed meanwhile stays removed
        except FileNotFoundError:
            yield None
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            try:
                yield Spool.load(self.path) if self.path.exists() else None
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def metrics_record(metrics: dict[str, float], step: int) -> dict:
    """Metrics at one step, stamped now (their time in the store is when they were logged)."""
    now = int(time.time() * 1000)
    return dict(op="metrics", metrics=[[k, float(v), now, step] for k, v in metrics.items()])


def write_latency(seconds: list[float]) -> dict[str, float]:
    """A run's writes to its store, answered (a spooled write is not one): how many, and the median,
    95th percentile and longest time each took, seen from the job (the lab store's load)."""
    import numpy as np

    p50, p95 = np.percentile(seconds, [50, 95])
    return {
        f"{ENGINE}store_writes": float(len(seconds)),
        f"{ENGINE}store_write_p50_s": float(p50),
        f"{ENGINE}store_write_p95_s": float(p95),
        f"{ENGINE}store_write_max_s": float(max(seconds)),
    }


def send(client, run_id: str, record: dict) -> None:
    """Write one record to the store through `client` (an MlflowClient)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, RunTag
    from mlflow.exceptions import MlflowException

    op = record["op"]
    if op == "metrics":
        client.log_batch(run_id, metrics=[Metric(k, v, t, s) for k, v, t, s in record["metrics"]])
    elif op == "tags":
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in record["tags"].items()])
    elif op == "dataset":
        profile = record["profile"]
        dataset = Dataset(record["name"], record["digest"], "local", record["source"], profile=profile)
        inputs = [DatasetInput(dataset, [InputTag("mlflow.data.context", record["context"])])]
        try:
            client.log_inputs(run_id, inputs)
        except MlflowException as err:
            if err.get_http_status_code() != 400:
                raise
            # MLflow's store looks for the dataset, then inserts it: two runs of one experiment that
            # log a new dataset at once collide on its unique key, and one is refused (8 jobs on one
            # server, tests/test_lab_load.py). The dataset exists now: a second try links it.
            client.log_inputs(run_id, inputs)
    elif op == "table":
        record_ids = record["columns"].get("record_id")
        if not record_ids or record_ids[0] not in stored_record_ids(client, run_id, record["artifact_file"]):
            client.log_table(run_id, record["columns"], record["artifact_file"])
    elif op == "end":
        client.set_terminated(run_id, status=record["status"], end_time=record["end_time"])
    else:
        raise ValueError(f"unknown spool record {op!r}")


def stored_record_ids(client, run_id: str, artifact_file: str) -> set:
    """The record ids (`record_id`) of the row groups the run's table holds in the store (none where
    it has no such table): a record sent again after it reached the store is not appended twice.
    Errors of an away server propagate (the send fails)."""
    folder, _, name = artifact_file.rpartition("/")
    if name not in {Path(f.path).name for f in client.list_artifacts(run_id, folder or None)}:
        return set()
    with tempfile.TemporaryDirectory() as tmp:
        table = json.loads(Path(client.download_artifacts(run_id, artifact_file, tmp)).read_text())
    if "record_id" not in table.get("columns", []):
        return set()
    column = table["columns"].index("record_id")
    return {row[column] for row in table.get("data", [])}


def restore_lost(client, run_id: str, artifact_file: str, groups: list[dict]) -> int:
    """Write again each of `groups` (a table's row groups as logged, each with its `record_id`)
    that the run's table in the store lacks: a table is appended by read-modify-write, so a write
    given up on here that the server finishes after a later one puts an earlier version back.
    Returns how many were lost; errors propagate."""
    stored = stored_record_ids(client, run_id, artifact_file)
    lost = [group for group in groups if group["record_id"][0] not in stored]
    if lost:
        client.log_table(run_id, {key: [v for g in lost for v in g[key]] for key in lost[0]}, artifact_file)
    return len(lost)


def send_pending(client, spool: Spool) -> list[tuple[dict, Exception]]:
    """Send the spool's pending records in order, marking each sent; raises where the server is
    away or refuses this user (401, 403: the record and those after it stay unsent). A record the
    store rejects otherwise (a 4xx), or this host cannot send (a local error), is passed over, so
    that the records after it are not held forever: returned with its error, for the caller to say."""
    rejected = []
    for index in range(spool.sent, len(spool.records)):
        try:
            send(client, spool.run_id, spool.records[index])
        except Exception as err:
            if server_away(err) or refused(err):
                raise
            rejected.append((spool.records[index], err))
        spool.mark_sent(index + 1)
    return rejected


def held_in(spool: Spool) -> str:
    """Where a spool holds its records: its file, or memory where the disk refused a write."""
    if not spool.disk_error:
        return str(spool.path)
    return (
        f"memory alone (the spool {spool.path} cannot be written: {spool.disk_error}; lost if this "
        "process ends first)"
    )


def left_in(spool: Spool) -> str:
    """Where a run's records wait when its server did not answer by the run's end."""
    sync = f"`python -m benchmarks sync {spool.path}` sends"
    if not spool.disk_error:
        return f"its records are in {spool.path}; {sync} them"
    lost = len(spool.records) - max(spool.sent, spool.on_disk)
    return (
        f"{lost} of its records, kept in memory since the spool could not be written ({spool.disk_error}), "
        f"are lost; {sync} the {spool.on_disk - spool.sent} written before"
    )


def not_kept(spool: Spool) -> str:
    """What a spool could not keep, for the line that ends it: '' where it kept everything."""
    if not spool.dropped:
        return ""
    return f"; {spool.dropped} records past the spool's cap of {SPOOL_LIMIT_BYTES >> 20} MiB were not kept"
