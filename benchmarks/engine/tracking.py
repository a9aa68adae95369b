"""Writing runs to the store of docs/design.md (one experiment per table, one run per job): their
tags, params, metrics and tables, spooled while a server is away (spool.py), and closing runs whose
process died. Opening and checking the store is store.py's."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import random
import time
from pathlib import Path

from core.errors import StorageError
from core.result import SCHEMA_VERSION, this_machine
from core.runtime.processes import identity, is_alive

from .heartbeat import Heartbeat, beat, beat_every_s, reclaimed_status
from .points import point
from .spool import (
    RETRY_S,
    Spool,
    away_reason,
    held_in,
    left_in,
    metrics_record,
    not_kept,
    restore_lost,
    send,
    send_pending,
    server_away,
    wait_at_end_s,
    write_latency,
)
from .store import Store, git_sha, one_line, why_stale

RESERVE_TRIES = 8  # a job reserved by two processes at one moment: both step back, then try again
log = logging.getLogger(__name__)


class Tracker(Store):
    """Writes runs to an MLflow store (`Store`): their tags, params, metrics, tables and end,
    through a spool while a server is away."""

    def __init__(self, uri: str | None = None, create: bool = True):
        """Open the store at `uri` (`Store`); `create=False` refuses to create a new SQLite file."""
        super().__init__(uri, create)
        # A server may go away mid-run: its runs' records then wait in spools (benchmarks/engine/spool.py).
        self._spools: dict[str, Spool] = {}
        self._run_names: dict[str, str] = {}
        self._records: dict[str, int] = {}  # records logged per run: each record's id
        self._write_s: dict[str, list[float]] = {}  # how long each of a run's writes took
        # run -> table artifact -> the row groups logged to it (each with its record_id): checked
        # against the store at the run's end (`_restore_tables`).
        self._tables: dict[str, dict[str, list[dict]]] = {}
        self._heartbeat = Heartbeat(self.uri, self.clock_offset_s)
        self._said_fenced: set[str] = set()  # runs whose refused records were said (`_fenced`)

    def start(
        self, experiment: str, run_name: str, tags: dict, params: dict, reserve: bool = False
    ) -> str | None:
        """Create a run with its tags and params; returns its id.

        With `reserve`, the run is created only if no other run of the same `job_key` is finished or
        running in a live process (checked and created under the store's lock, so two `run`s on one
        store never train a job twice); None when it is taken. A server that does not answer is
        waited for (`answered`); a run a try before may have created, its answer lost, is deleted.
        """
        tries = itertools.count()

        def create() -> str | None:
            if next(tries):
                self._supersede_runs_of_mine(experiment, str(tags["job_key"]))
            return self._create(experiment, run_name, tags, params, reserve)

        # A store that opens but refuses writes (a read-only file or folder, a full disk) fails here,
        # before anything of the job has run.
        run_id = self.answered("written", create)
        if run_id is not None:
            self._run_names[run_id] = run_name
            self._heartbeat.add(run_id)
            point("reserved")
        return run_id

    def _create(self, experiment: str, run_name: str, tags: dict, params: dict, reserve: bool) -> str | None:
        """`start`'s one try: reserve (where asked), create the run, log its params."""
        from mlflow.entities import Param

        for _ in range(RESERVE_TRIES):
            with self.lock():
                if reserve:
                    self._reclaim(experiment, str(tags["job_key"]))
                if reserve and self.taken(experiment, str(tags["job_key"])):
                    return None
                run = self.client.create_run(
                    self.experiment_id(experiment),
                    run_name=run_name,
                    tags=_str(
                        {
                            **tags,
                            "schema": SCHEMA_VERSION,
                            "heartbeat": beat(self.clock_offset_s),
                            "heartbeat_s": beat_every_s(),
                        }
                    ),
                )
            # A store without this host's lock (a server, other hosts) can let two processes
            # past the check at once: each looks again after creating its run, and steps back if
            # it sees another. Both may step back, never both go on (docs/design.md).
            if not reserve or not self.taken(experiment, str(tags["job_key"]), besides=run.info.run_id):
                break
            self._supersede(run.info.run_id, "collision")
            time.sleep(random.uniform(0.2, 2.0))  # apart, so that the next tries do not meet
        else:  # each try met another that stepped back too: said, never a job left unrun in silence
            if self.taken(experiment, str(tags["job_key"])):
                return None
            raise StorageError(
                f"job {run_name} met another process reserving it at each of {RESERVE_TRIES} tries "
                "and neither runs it: run the command again"
            )
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
            self.client.log_batch(run.info.run_id, params=items[i : i + 100], synchronous=True)
        return run.info.run_id

    def _supersede_runs_of_mine(self, experiment: str, job_key: str) -> None:
        """Mark superseded the running runs of `job_key` that this process opened: a try of `start`
        that the server applied but whose answer was lost (it went away) left them."""
        mine = identity()
        pid = mine["pid"]
        # Still open in MLflow, whatever its tag: a supersede cut short by the server is finished too.
        open_runs = f"tags.job_key = '{job_key}' and tags.pid = '{pid}' and attributes.status = 'RUNNING'"
        runs = self.client.search_runs([self.experiment_id(experiment)], filter_string=open_runs)
        for run in runs:
            if all(run.data.tags.get(k) == v for k, v in mine.items()):
                self._supersede(run.info.run_id, run.data.tags.get("superseded", "lost create"))

    def _supersede(self, run_id: str, why: str) -> None:
        """End a run the suite made in vain (`why`: a reservation that met another's, a create whose
        answer was lost) as `superseded`, which every reader ignores (reports.runs.load_runs,
        `taken`, `finished_run`, stale closing): never deleted, since a writer may not delete (MLflow
        asks MANAGE) and a store keeps what happened. Its tags in one write, then its end: a server
        lost between them leaves a run whose next try (`_supersede_runs_of_mine`) or the next stale
        closing ends it."""
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag("status", "superseded"), RunTag("superseded", why)])
        self.client.set_terminated(run_id, status="KILLED")

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """Log a set of metrics at one step in one call."""
        self._record(run_id, metrics_record(metrics, step))
        point("metrics")

    def _record(self, run_id: str, record: dict) -> None:
        """Write a record of run `run_id` to the store; while a server is away, to the run's spool.
        Each record has an id, the number of its run's records before it; a table's rows carry it
        (`record_id`), so that a resent table is not appended twice (spool.py)."""
        record_id = self._records[run_id] = self._records.get(run_id, -1) + 1
        record = {**record, "id": record_id}
        if record["op"] == "table":
            rows = len(next(iter(record["columns"].values()), []))
            record["columns"] = {**record["columns"], "record_id": [record_id] * rows}
            tables = self._tables.setdefault(run_id, {})
            tables.setdefault(record["artifact_file"], []).append(record["columns"])
        if self._fenced(run_id):
            return
        spool = self._spools.get(run_id)
        if spool is None:
            try:
                started = time.perf_counter()
                send(self.client, run_id, record)
                self._write_s.setdefault(run_id, []).append(time.perf_counter() - started)
                return
            except Exception as err:
                if record["op"] == "table" and not server_away(err):  # an artifact: said, not fatal
                    self._say_refused(run_id, [(record, err)])
                    return
                if not self.remote or not server_away(err):
                    raise
                name = self._run_names.get(run_id, run_id)
                spool = self._spools[run_id] = Spool.create(self.uri, run_id, name)
                spool.retry_at = time.monotonic() + RETRY_S
                log.warning(
                    "tracking server %s does not answer (%s): run %s trains on, its records wait in %s "
                    "and go to the server when it answers",
                    self.uri, away_reason(err), name, held_in(spool),
                )  # fmt: skip
        said = bool(spool.disk_error)  # by the line above, or before
        spool.append(record)
        if spool.disk_error and not said:  # the disk refused a write: said once, the job trains on
            log.warning("run %s trains on: its records wait in %s", spool.header["run_name"], held_in(spool))
        self._flush(spool)

    def _flush(self, spool: Spool, now: bool = False) -> bool:
        """Send the spool's records if the server answers (tried every RETRY_S, or `now`); whether
        it is empty and removed."""
        if not now and time.monotonic() < spool.retry_at:
            return False
        try:
            closed = (
                None
                if spool.sent_own_status()
                else reclaimed_status(self.client.get_run(spool.run_id).data.tags)
            )
            if closed is None:
                self._say_refused(spool.run_id, send_pending(self.client, spool))
        except Exception as err:
            if not server_away(err):
                raise
            spool.retry_at = time.monotonic() + RETRY_S
            return False
        if closed is not None:  # closed by another while the server was away: none of it lands
            self._heartbeat.fenced[spool.run_id] = closed
            self._fenced(spool.run_id)
            if spool.path.exists():
                spool.path.rename(spool.path.with_name(spool.path.name + ".superseded"))
            del self._spools[spool.run_id]
            return True
        spool.path.unlink(missing_ok=True)
        del self._spools[spool.run_id]
        log.warning(
            "tracking server %s answers again: run %s's %d records from the spool are in it%s",
            self.uri, spool.header["run_name"], len(spool.records), not_kept(spool),
        )  # fmt: skip
        return True

    def _drain(self, spool: Spool) -> None:
        """At a run's end: wait up to wait_at_end_s() for the server, then leave the spool, in one line."""
        deadline = time.monotonic() + wait_at_end_s()
        while not self._flush(spool, now=True):
            if time.monotonic() >= deadline:
                del self._spools[spool.run_id]
                log.error(
                    "tracking server %s did not answer by the end of run %s: %s%s",
                    self.uri, spool.header["run_name"], left_in(spool), not_kept(spool),
                )  # fmt: skip
                return
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))

    def sync(self, spool: Spool) -> int:
        """Send a left spool's records to this store, as if logged live, and remove it; a run whose
        process died before its end is closed as failed (stale). Another live process's spool is
        refused (that job sends it itself). Returns the records sent."""
        name = spool.header["run_name"]
        if host := spool.foreign():  # its run may be live there: only its host may tell
            raise StorageError(f"{spool.path} is a spool of host {host} (run {name}): `sync` it there")
        if is_alive(spool.header) and spool.header.get("pid") != str(os.getpid()):
            raise StorageError(
                f"run {name} is still running (pid {spool.header.get('pid')}): it sends {spool.path} itself"
            )
        with spool.sending() as current:  # as on disk once locked: another sender may have sent some
            if current is None:
                raise StorageError(f"{spool.path} is being (or was) sent by another process (run {name})")
            with self.storage_errors("read"):
                closed = reclaimed_status(self.client.get_run(current.run_id).data.tags)
            if closed is not None:  # its job was reclaimed meanwhile: its late records never land
                kept = current.path.with_name(current.path.name + ".superseded")
                current.path.rename(kept)
                raise StorageError(
                    f"run {name} was closed by another process while its host was away ({closed}): "
                    f"its job ran again; its {len(current.pending())} records are not sent, kept in {kept}"
                )
            if not current.ended():
                current.close_as_stale()
            pending = len(current.pending())
            with self.storage_errors("written"):
                self._say_refused(current.run_id, send_pending(self.client, current), name)
            current.path.unlink(missing_ok=True)
        return pending

    def _fenced(self, run_id: str) -> bool:
        """Whether run `run_id`'s heartbeat found it closed by another process (this host was
        stopped and its job reclaimed): its records are then refused, said once, and the run is
        tagged superseded; it stays as the other process left it (docs/design.md, "Hosts that die")."""
        closed = self._heartbeat.fenced.get(run_id)
        if closed is None:
            return False
        if run_id not in self._said_fenced:
            self._said_fenced.add(run_id)
            log.error(
                "run %s was closed by another process while this one was stopped or its server away "
                "(%s): the job ran again elsewhere; this process's later records of it are not written",
                self._run_names.get(run_id, run_id), closed,
            )  # fmt: skip
            with contextlib.suppress(Exception):  # the tag is a courtesy: the fence already holds
                self.client.set_tag(run_id, "superseded", "reclaimed")
        return True

    def _restore_tables(self, run_id: str) -> None:
        """Before a run's end: each table it logged holds every row group it sent (`restore_lost`),
        said in one line where the store had lost some. Where the run's records wait in a spool (its
        server away), they are sent first; if it stays away, nothing is checked."""
        tables = self._tables.pop(run_id, {})
        spool = self._spools.get(run_id)
        if not tables or (spool is not None and not self._flush(spool, now=True)):
            return
        for artifact_file, groups in tables.items():
            try:
                if lost := restore_lost(self.client, run_id, artifact_file, groups):
                    log.warning(
                        "run %s: the store had lost %d of the %d row groups of its %s (a late write "
                        "of an earlier version): written again",
                        self._run_names.get(run_id, run_id), lost, len(groups), artifact_file,
                    )  # fmt: skip
            except Exception as err:  # noqa: BLE001  (said; the run's end is written all the same)
                if not server_away(err):
                    self._say_refused(run_id, [(dict(op="table", artifact_file=artifact_file), err)])

    def _say_refused(self, run_id: str, refused: list[tuple[dict, Exception]], name: str = "") -> None:
        """One line per record the store refused or this host could not send: it is not kept (a
        refused table's rows are also dropped from those the run's end checks, `_restore_tables`,
        so that they are said once)."""
        name = name or self._run_names.get(run_id, run_id)
        for record, err in refused:
            what = record.get("artifact_file") or record["op"]
            groups = self._tables.get(run_id, {}).get(what, [])
            if record.get("columns") in groups:
                groups.remove(record["columns"])  # said once: the run's end does not try it again
            log.error(
                "run %s: its %s could not be written to %s (%s): not kept",
                name,
                what,
                self.uri,
                one_line(err),
            )

    def stale_runs(self) -> list[tuple[object, str]]:
        """(run, why) of every run still `running` whose process on this host has died (kill -9, an
        OOM kill, a power cut), or whose process on another host missed its heartbeat (heartbeat.py);
        runs of live processes, of other hosts that beat, and with a spool here are not stale. Reads
        only."""
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        if not experiments:
            return []
        return self._stale_among(
            self.client.search_runs(experiments, filter_string="tags.status = 'running'")
        )

    def _stale_among(self, runs) -> list[tuple[object, str]]:
        """(run, why) of those of `runs` (running) that are stale (store.why_stale)."""
        now = self.store_now()
        return [(run, why) for run in runs if (why := why_stale(run, now)) is not None]

    def _reclaim(self, experiment: str, job_key: str) -> None:
        """Before reserving `job_key`: close as failed (stale) each of its running runs whose process
        died or missed its heartbeats, which `taken` passes over. Its process may live on (a host
        whose beats did not reach a server that was away): it then finds its run closed and never
        ends it `finished` (the fence), so the job keeps one finished run."""
        running = self.client.search_runs(
            [self.experiment_id(experiment)],
            filter_string=f"tags.job_key = '{job_key}' and tags.status = 'running'",
        )
        for run, error in self._stale_among(running):
            self.finish(run.info.run_id, "failed", self._stale_close(error))
            log.warning("run %s was left running: %s; marked failed (stale)", run.info.run_name, error)

    def _stale_close(self, error: str) -> dict[str, str]:
        """The tags that close another process's run as stale, naming this process (`closed_by`:
        a finished end its owner writes after this never counts, core.result.counts_as_finished)."""
        me = identity()
        return dict(stop_reason="stale", error=error, closed_by=f"pid {me['pid']} on {me['host']}")

    def _closed_by_another(self, run_id: str) -> str | None:
        """How another process closed run `run_id`, or None; errors propagate (an away server)."""
        return reclaimed_status(self.client.get_run(run_id).data.tags)

    def closed_by_another(self, run_id: str) -> str | None:
        """Where another process closed this process's run meanwhile (its host stopped beating and
        the job was reclaimed): how it was closed; else None (also where the store does not answer:
        the end then waits in the spool, and `sync` checks again). The fence that keeps a job from
        two finished runs (docs/design.md, "Hosts that die")."""
        try:
            return self._closed_by_another(run_id)
        except Exception:  # noqa: BLE001  (an away server: the spool checks again before sending)
            return None

    def close_stale_runs(self) -> list[str]:
        """Mark `failed` every stale run (`stale_runs`): `report` then shows it as failed and `run`
        redoes its job; end the superseded runs a server left open between their tag and their end.
        Returns a line on each stale run. A writer's act: readers only say them."""
        lines = []
        with self.storage_errors("written"):  # a read-only store with a stale run: one line
            for run, error in self.stale_runs():
                self.finish(run.info.run_id, "failed", self._stale_close(error))
                lines.append(f"run {run.info.run_name} was left running: {error}; marked failed (stale)")
            experiments = [e.experiment_id for e in self.client.search_experiments()]
            left_open = "tags.status = 'superseded' and attributes.status = 'RUNNING'"
            for run in self.client.search_runs(experiments, filter_string=left_open) if experiments else []:
                self.client.set_terminated(run.info.run_id, status="KILLED")
        return lines

    def log_table(self, run_id: str, columns: dict[str, list], artifact_file: str) -> None:
        """Append rows to a JSON table artifact of the run (MLflow's log_table)."""
        self._record(run_id, dict(op="table", columns=columns, artifact_file=artifact_file))

    def log_dataset(self, run_id: str, name: str, source: str, context: str, **profile) -> None:
        """Record the dataset a run trained on as an MLflow input (the UI's Datasets column)."""
        digest = hashlib.sha256(f"{name}:{source}".encode()).hexdigest()[:8]
        record = dict(op="dataset", name=name, digest=digest, source=source, context=context)
        self._record(run_id, {**record, "profile": json.dumps(profile)})

    def log_perf(self, name: str, result: dict) -> str:
        """A `perf NAME` result as a finished run of experiment `perf`: numbers as metrics, the rest as
        params, tagged `perf=NAME` with the hardware (so speed claims draw on measured runs)."""
        import torch  # here: the store's verbs (server, sync) never load torch

        machine = this_machine()
        tags = dict(perf=name, git_sha=git_sha(), hardware=str(machine), torch_version=torch.__version__)
        numbers = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        params = {**{k: v for k, v in result.items() if k not in numbers}, **machine.params()}
        run_id = self.start("perf", f"perf-{name}", tags, params)
        self.log_metrics(run_id, numbers, step=0)
        self.finish(run_id, "finished", dict(stop_reason="measured"))
        return run_id

    def log_report(self, table: str, profile: str | None, files: list[Path]) -> str:
        """A report's files (its .md, .csv and figures) as the artifacts of a finished run of
        experiment `reports`, tagged `report=TABLE`: through a server they reach the store's
        artifacts from any host, and each report is kept beside the earlier ones."""
        tags = dict(report=table, profile=profile or "all", git_sha=git_sha(), status="running", **identity())
        run_id = self.start("reports", f"report {table} · {profile or 'all profiles'}", tags, {})
        with self.storage_errors("written"):
            for path in files:  # side by side, as in reports/out/: the .md's links to figures hold
                self.client.log_artifact(run_id, str(path))
        self.finish(run_id, "finished", dict(stop_reason="written"))
        return run_id

    def finish(self, run_id: str, status: str, tags: dict) -> None:
        """Set the final tags and end the run (MLflow status FINISHED, FAILED or KILLED); while its
        server is away, wait for it up to wait_at_end_s(), then leave the records in the spool."""
        mlflow_status = {"finished": "FINISHED", "diverged": "FINISHED", "interrupted": "KILLED"}.get(
            status, "FAILED"
        )
        self._heartbeat.remove(run_id)
        if (closed := self.closed_by_another(run_id)) is not None:
            self._spools.pop(run_id, None)
            log.error(
                "run %s was closed by another process while this one was stopped (%s): the job ran "
                "again elsewhere; this end is not written, the run is tagged superseded",
                self._run_names.get(run_id, run_id), closed,
            )  # fmt: skip
            with self.storage_errors("written"):
                self.client.set_tag(run_id, "superseded", "reclaimed")
            return
        point("ending")
        self._restore_tables(run_id)
        if writes := self._write_s.pop(run_id, None):
            self._record(run_id, metrics_record(write_latency(writes), step=0))
        self._record(run_id, dict(op="tags", tags=_str({"status": status, **tags})))
        self._record(run_id, dict(op="end", status=mlflow_status, end_time=int(time.time() * 1000)))
        spool = self._spools.get(run_id)
        if spool is not None:
            self._drain(spool)
        point("ended")


def rank_tracker(rank: int, tracker: Tracker) -> Tracker:
    """The tracker of one of torchrun's ranks: only rank 0 writes to MLflow (the one place that
    decides; the other ranks get a NullTracker)."""
    return tracker if rank == 0 else NullTracker()


class NullTracker:
    """A tracker that records nothing (perf benchmarks, which must not time MLflow; the ranks that do
    not write): the calls the runner makes on a `Tracker`, each a no-op, and no store behind it
    (`uri` None), so nothing of a Store is half there."""

    uri: str | None = None
    remote = False

    def finished_run(self, experiment, job_key):
        return None

    def start(self, experiment, run_name, tags, params, reserve=False):
        return "untracked"

    def log_metrics(self, run_id, metrics, step):
        pass

    def log_perf(self, name, result):
        return "untracked"

    def log_table(self, run_id, columns, artifact_file):
        pass

    def log_dataset(self, run_id, name, source, context, **profile):
        pass

    def finish(self, run_id, status, tags):
        pass


def _str(tags: dict) -> dict[str, str]:
    return {k: str(v) for k, v in tags.items()}
