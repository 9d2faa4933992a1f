"""`ExperimentLog`: the rows, written as jobs move and read back as dicts or typed DataFrames. The file, its
connection and its writer thread are `db.Db`; what a job's events write `events`; leases `leases.Leases`; the
DataFrame snapshot `frame.FrameCache`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._hosts import labels
from ..jobs import Job, JobEvent
from . import events, export, judgments
from .db import Db, default_home
from .frame import FrameCache
from .leases import Leases, lease_length
from .schema import NAMES, NEXT_SEQ, NOT_TERMINAL, SELECT, TERMINAL, from_rows, where

if TYPE_CHECKING:
    import pandas as pd


_KEEP_S = 2.0  # the longest one holder keeps a lingering turn (see `turn`)


@dataclass
class _Held:
    scope: str
    since: float  # loop time it was taken
    release: asyncio.TimerHandle | None = None


class ExperimentLog:
    """`lease_s`: how long a claim on a row lasts without renewal (default `$WANLAB_LEASE_S` or 60 s). While
    a job of this process runs, a heartbeat thread renews its row's lease every `lease_s / 4`; a process
    that dies stops renewing, and after `lease_s` another process's `lab.resume()` may take the row."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        lease_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.path = Path(path) if path is not None else default_home() / "runs.sqlite"
        lease_s = lease_length(lease_s)
        self._db = Db(self.path)
        self.leases = Leases(self._db, lease_s=lease_s, clock=clock)
        self._frames = FrameCache(self._db)
        # the snapshot behind `log.df` kept current as jobs write, on the writer thread: a crash leaves it at
        # most `frame.STALE_ROWS` rows behind, so the next kernel's first `log.df` stays an Arrow read
        self._db.on_idle = self._frames.refresh_soon
        # fixed for the log's life: read here, owned by the parts above
        self.owner, self.lease_s, self.clock = self.leases.owner, self.leases.lease_s, self.leases.clock
        self.log_id, self.cache_path, self._lock = self._db.log_id, self._frames.path, self._db.lock
        self._turns: dict[str, _Held] = {}  # lingering submit turns (see `turn`), by token

    @property
    def _conn(self) -> sqlite3.Connection | None:  # None after close(); for tests and bench/bench_log.py
        return self._db.conn

    def _repr_html_(self) -> str:
        from .._views import log_html

        return log_html(self)

    def __repr__(self) -> str:
        return f"ExperimentLog({str(self.path)!r}, rows={len(self)})"

    def __len__(self) -> int:
        return self._db.query("SELECT COUNT(*) FROM runs")[0][0]

    @property
    def closed(self) -> bool:
        return self._db.closed

    def close(self) -> None:
        """Checkpoint the WAL into the file, so `runs.sqlite` alone is the whole log (a copy, a backup), and
        let go of every lease held here: another process may take those rows at once. The DataFrame snapshot
        is brought up to date first (`frame.FrameCache.keep_current`)."""
        if self._db.closed:
            return
        self._db.closed = True
        self.leases.stop()
        self._frames.keep_current()
        self._db.close(self.leases.let_go)  # reads reopen it (`lab.log.df` after `lab.close()`); writes refuse

    def checkpoint(self, every_s: float = 30.0) -> None:
        """Copy the WAL into the main file now and then (passive: never waits on readers)."""
        self._db.checkpoint(every_s)

    # -- writing ---------------------------------------------------------------------------------
    def _write(
        self, run_id: str, values: dict[str, Any], insert: bool = False
    ) -> concurrent.futures.Future[None] | None:
        """An insert, durable on return; an update, queued for the log's writer thread (its future ends once
        it is committed)."""
        values["updated"] = time.time()
        if insert:
            self._db.write(*_insert(run_id, values))
            return None
        params = list(values.values())
        params.append(run_id)
        return self._db.write_later(_update_sql(tuple(values)), params)

    def insert(self, row: dict[str, Any]) -> None:
        """One durable row (a commit per call)."""
        row = dict(row)
        self._write(row.pop("run_id"), row, insert=True)

    def update(self, run_id: str, **values: Any) -> None:
        """Durable on return, and after every write of this process's jobs before it."""
        unknown = set(values) - _NAME_SET
        if unknown:
            raise KeyError(f"not log columns: {', '.join(sorted(unknown))}")
        fut = self._write(run_id, values)
        if fut is not None:
            self._db.wait(fut)

    def set_rating(self, run_id: str, rating: int | None = None, notes: str | None = None) -> None:
        if rating is not None and rating not in range(1, 6):
            raise ValueError(f"rating={rating!r}: use 1–5")
        values: dict[str, Any] = {}
        if rating is not None:
            values["rating"] = rating
        if notes is not None:
            values["notes"] = notes
        self.update(run_id, **values)

    def record_created(
        self,
        job: Job,
        params: dict[str, Any],
        inputs: dict[str, Any],
        *,
        attach: bool = False,
        reuse: bool = False,
        **extra: Any,
    ) -> dict[str, Any] | None:
        """The row for a new job, before anything is sent; the job then updates it via `observe`.
        `params` and `inputs` come from `records.to_record` and are enough to rebuild the request.

        With `attach`, and an unfinished row for the same request (fingerprint, model, host, base URL) in
        the log — from this process, another live one, or a dead one — nothing is written and that row is
        returned instead: the run is already paid for or about to be. With `reuse` too, failing that, the
        latest SUCCEEDED row for it (a sweep's cell another kernel finished meanwhile). Check and insert are
        one transaction, so two kernels running the same cell at once make one row between them."""
        req = job.request
        row = {
            "run_id": job.id,
            "created": job.timings["created"],
            "host": job.host,
            "region": job.region,
            "protocol": getattr(job, "protocol", ""),
            "model": job.model.id,
            "mode": req.mode,
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt,
            "resolution": req.resolution,
            "duration": req.duration,
            "seed": req.seed,
            "params": json.dumps(params, default=str),
            "inputs": json.dumps(inputs, default=str),
            "fingerprint": req.fingerprint(),
            "status": str(job.status),
            "polls": 0,
            "retries": 0,
            "claimed_by": self.owner,
            "claimed_until": self.leases.until(),
        }
        row.update(extra)
        if not attach:
            self.insert(row)
            return None
        keys = ("fingerprint", "model", "protocol", "region", "base_url")
        hosts = labels(job.host)  # a sim host's rows from before per-host labels say just "sim"
        same = " AND ".join(f"{k} IS ?" for k in keys) + f" AND host IN ({', '.join('?' * len(hosts))})"
        values = {**row, "updated": time.time()}
        run_id = values.pop("run_id")
        ident: list[Any] = [row.get(k) for k in keys] + hosts
        with self._db.immediate() as conn:
            found = conn.execute(
                f"{SELECT} WHERE {same} AND {NOT_TERMINAL} ORDER BY created DESC LIMIT 1", ident + list(TERMINAL)
            ).fetchone()
            if found is None and reuse:
                found = conn.execute(
                    f"{SELECT} WHERE {same} AND status = 'SUCCEEDED' ORDER BY created DESC LIMIT 1", ident
                ).fetchone()
            if found is None:
                conn.execute(*_insert(run_id, values))
        return dict(zip(NAMES, found, strict=True)) if found is not None else None

    def observe_loudly(self, job: Job, ev: JobEvent) -> None:
        """`observe`, made loud: a write that fails (disk full, read-only) is put on the job, logged to the
        wanlab logger (stderr by default) and warned about where the user waits for the job — never silent.
        On an event loop (the Lab's) the failure comes back on that loop, and what the runner must not wait on
        the host without (SUBMITTING, the task id) is held on the job (`events.tell_when_written`)."""
        if ev.kind == "log_error":
            return
        try:
            fut = self.observe(job, ev)
            if fut is None:
                return
            loop = _running_loop()
            if loop is None:
                self._db.wait(fut)  # no loop to hear of a failure later: wait for it here, as before
                return
        except Exception as exc:
            events.failed(self.path, job, ev.kind, exc)
            return
        events.tell_when_written(fut, self.path, job, ev, loop)

    def observe(self, job: Job, ev: JobEvent) -> concurrent.futures.Future[None] | None:
        """Job observer: write what changed. On the Lab's loop thread it only queues the write (the log's writer
        thread commits it): returns its future, or None when the event changes nothing. A failure of the
        write is the caller's to report (`observe_loudly` does)."""
        if ev.kind == "retry":
            return self._db.write_later(events.RETRY_SQL, [job.id])
        if ev.kind == "detached" or (ev.kind == "status" and job.status.terminal):
            self.release(job.id)  # the heartbeat stops renewing it; the write lets the row's lease go
            if ev.kind == "status":
                self.checkpoint()
        values = events.changes(job, ev, self.leases.until)
        return self._write(job.id, values) if values else None

    # -- leases (two kernels, one log): see leases.Leases ----------------------------------------
    def holder(self, run_id: str) -> str | None:
        """Who holds a live lease on the row (None when it is free to take)."""
        return self.leases.holder(run_id)

    def claim(self, run_id: str) -> bool:
        """Take the lease on a row unless someone alive holds it: a lease ends when its holder dies (seen at
        once on the same machine), closes its Lab, stops renewing it (another machine: after `lease_s`), or
        the job ends. A compare-and-swap on the holder: atomic across processes."""
        self._db.flush()  # outside the log's lock (see Db.query)
        return self.leases.claim(run_id)

    def hold(self, run_id: str) -> None:
        """A job of this process is running this row: keep its lease alive until `release`."""
        self.leases.hold(run_id)

    def release(self, run_id: str) -> None:
        self.leases.release(run_id)

    def renew(self) -> list[str]:
        """Extend the leases of the rows held here; returns the ids whose lease another process took
        (after this one stalled longer than `lease_s`)."""
        return self.leases.renew()

    def try_lock(self, scope: str, token: str, hold_s: float) -> bool:
        """Take the named lock unless someone alive holds it. Submits to one account go one at a time across
        kernels, so an ambiguous submit has at most one new task on the host to adopt."""
        return self.leases.try_lock(scope, token, hold_s)

    def unlock(self, scope: str, token: str) -> None:
        self._db.flush()
        self.leases.unlock(scope, token)

    @contextlib.asynccontextmanager
    async def turn(self, scope: str, holder: str, hold_s: float, linger_s: float = 0.0) -> AsyncIterator[None]:
        """Wait for the named lock (`try_lock`), hold it for the block, let it go. `holder` tells apart
        several users of this log in one process. With `linger_s`, the lock outlives the block by that long
        (at most `_KEEP_S` from when it was taken), so back-to-back blocks of one holder — a sweep's submits —
        take it once instead of paying two durable writes each; others still get it within `_KEEP_S`."""
        token = f"{self.owner}#{holder}"
        loop = asyncio.get_running_loop()
        held = self._turns.get(token)
        if held is not None and held.scope == scope and loop.time() - held.since < _KEEP_S:
            if held.release is not None:
                held.release.cancel()
                held.release = None
        else:
            if held is not None:
                self._turns.pop(token, None)
                if held.release is not None:
                    held.release.cancel()
                self.unlock(held.scope, token)
            while not self.try_lock(scope, token, hold_s):
                await asyncio.sleep(0.02)
            held = self._turns[token] = _Held(scope, loop.time())
        try:
            yield
        finally:
            if linger_s > 0 and loop.time() - held.since < _KEEP_S and not self.closed:
                held.release = loop.call_later(linger_s, self._end_turn, token, held)
            else:
                self._end_turn(token, held)

    def end_turns(self, holder: str) -> None:
        """Let go of `holder`'s lingering turn now (its Lab is closing)."""
        token = f"{self.owner}#{holder}"
        held = self._turns.get(token)
        if held is not None:
            if held.release is not None:
                held.release.cancel()  # the Lab's loop has stopped: the handle only marks itself
            self._end_turn(token, held)

    def _end_turn(self, token: str, held: _Held) -> None:
        if self._turns.get(token) is held:
            del self._turns[token]
            self.unlock(held.scope, token)

    def submitting(self, model: str, since: float, exclude: str) -> list[tuple[float, str]]:
        """(started, run_id) of rows whose submit is in flight or unresolved (SUBMITTING, no task id) for
        `model` since `since`, in any process: the other claimants on the new tasks a host lists."""
        return self.leases.submitting(model, since, exclude)

    def add_judgment(self, a: str, b: str, choice: str, *, judge: str, left: str, by: str | None = None) -> str:
        """Record one blind judgment of runs `a` and `b`: `choice` is "a", "b", "tie" or "skip" (relative to
        (a, b)); `left` is the run that was shown on the left. Returns the judgment's id."""
        return judgments.add(self._db, a, b, choice, judge=judge, left=left, by=by)

    def judgments(self, **equals: Any) -> pd.DataFrame:
        """Every judgment, oldest first: judgment_id, time, judge, a, b, choice, left, by."""
        return judgments.frame(self._db, **equals)

    # -- reading ---------------------------------------------------------------------------------
    def rows(self, since: Any = None, until: Any = None, **equals: Any) -> list[dict[str, Any]]:
        """Rows as dicts, oldest first, filtered like `frame`: `log.rows(fingerprint=fp, status="SUCCEEDED")`."""
        return self._rows_sql(*where(since, until, **equals))

    def _rows_sql(self, condition: str = "", params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return [dict(zip(NAMES, r, strict=True)) for r in self._select(condition, params)]

    def _select(self, condition: str, params: Iterable[Any]) -> list[tuple]:
        """Whole rows (NAMES, in order) matching an SQL condition ("" for all), oldest first."""
        return self._db.query(SELECT + (f" WHERE {condition}" if condition else "") + " ORDER BY created", params)

    def get(self, run_id: str) -> dict[str, Any]:
        rows = self.rows(run_id=run_id)
        if not rows:
            raise KeyError(f"no run {run_id!r} in {self.path}")
        return rows[0]

    def unfinished(self) -> list[dict[str, Any]]:
        return self._rows_sql(NOT_TERMINAL, TERMINAL)

    def similar(
        self,
        column: str,
        *,
        model: str,
        resolution: str,
        duration: int,
        host: str | None = None,
        exclude: str | None = None,
        limit: int = 50,
    ) -> list[float]:
        """`column` (e.g. latency_s, run_s) of the latest successful runs with the same model, resolution
        and duration: the history that ETAs and poll priors are drawn from."""
        if column not in NAMES:
            raise KeyError(f"{column!r} is not a log column")
        sql = (
            f"SELECT {column} FROM runs WHERE status = 'SUCCEEDED' AND {column} IS NOT NULL AND model = ? "
            f"AND resolution = ? AND duration = ?"
        )
        params: list[Any] = [model, resolution, duration]
        if host is not None:
            sql += " AND host = ?"
            params.append(host)
        if exclude is not None:
            sql += " AND run_id != ?"
            params.append(exclude)
        return [float(r[0]) for r in self._db.query(sql + f" ORDER BY created DESC LIMIT {int(limit)}", params)]

    def run_history(
        self, *, model: str, resolution: str, durations: tuple[int, int], host: str, region: str, limit: int = 30
    ) -> list[tuple[float, int]]:
        """(run_s, duration) of the latest successful runs of `model` at `resolution` on this host and region
        with a duration in [lo, hi]: what the default poll policy learns from (one indexed query per job)."""
        rows = self._db.query(
            "SELECT run_s, duration FROM runs WHERE status = 'SUCCEEDED' AND run_s > 0 AND model = ? "
            "AND resolution = ? AND duration BETWEEN ? AND ? AND host = ? AND COALESCE(region, '') = ? "
            f"ORDER BY created DESC LIMIT {int(limit)}",
            [model, resolution, durations[0], durations[1], host, region or ""],
        )
        return [(float(r[0]), int(r[1])) for r in rows]

    def known_task_ids(self) -> set[str]:
        return {r[0] for r in self._db.query("SELECT task_id FROM runs WHERE task_id IS NOT NULL")}

    @property
    def df(self) -> pd.DataFrame:
        return self.frame()

    def frame(self, since: Any = None, until: Any = None, **equals: Any) -> pd.DataFrame:
        """The log as a typed DataFrame: categorical resolution (ordered 480P < 720P < 1080P), nullable
        integers, tz-aware UTC datetimes. Rows where each column equals the value (a list means any of them,
        None means NULL), created in [since, until) (datetimes, pandas Timestamps or epoch seconds):
        `log.frame(status="FAILED")`, `log.frame(study="kites", resolution=["720P", "1080P"],
        since="2026-07-01")`. Without filters, the whole log comes from the snapshot cache (`frame.FrameCache`)."""
        condition, params = where(since, until, **equals)
        if not condition:
            self._db.flush()
            return self._frames.frame()
        return from_rows(self._select(condition, params))

    filter = frame  # `log.filter(status="FAILED")`: the same as `log.frame(...)`

    to_csv = export.to_csv
    to_parquet = export.to_parquet
    to_mlflow = export.to_mlflow


_NAME_SET = frozenset(NAMES)


@functools.lru_cache(maxsize=256)
def _update_sql(columns: tuple[str, ...]) -> str:
    """One string per set of columns: a job's events repeat a few shapes, and the same string lets sqlite3
    reuse its prepared statement."""
    sets = ", ".join(f"{k} = ?" for k in columns)
    return f"UPDATE runs SET {sets}, seq = {NEXT_SEQ} WHERE run_id = ?"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _insert(run_id: Any, values: dict[str, Any]) -> tuple[str, list[Any]]:
    cols = ["run_id", *values]
    return (
        f"INSERT INTO runs ({', '.join(cols)}, seq) VALUES ({', '.join('?' * len(cols))}, {NEXT_SEQ})",
        [run_id, *values.values()],
    )
