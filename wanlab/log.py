"""`ExperimentLog`: every run, paid for or failed, in SQLite next to the notebook.

A row is written when the job is created (before anything is sent) and updated at every transition, so
a kernel that dies mid-wait leaves the task id behind for `lab.resume()`. WAL journal with
`synchronous=FULL`: a commit survives a crash of the process and of the machine. Several kernels may
share one file; a lease per row (`claimed_by`, `claimed_until`) keeps two of them from polling the
same task at once. A lease names its owner's host, boot, pid and process start time, so on the same
machine a dead owner's rows are taken over at once; from another machine, when the lease runs out.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .errors import ConfigError
from .jobs import Job, JobEvent
from .providers.base import Status, billed_seconds

if TYPE_CHECKING:
    import pandas as pd

# (column, SQL type, pandas dtype)
COLUMNS: list[tuple[str, str, str]] = [
    ("run_id", "TEXT PRIMARY KEY", "string"),
    ("study", "TEXT", "string"),
    ("created", "REAL", "datetime"),
    ("host", "TEXT", "category"),
    ("protocol", "TEXT", "category"),
    ("region", "TEXT", "category"),
    ("base_url", "TEXT", "string"),
    ("model", "TEXT", "category"),
    ("mode", "TEXT", "category"),
    ("prompt", "TEXT", "string"),
    ("negative_prompt", "TEXT", "string"),
    ("resolution", "TEXT", "resolution"),
    ("duration", "INTEGER", "Int64"),
    ("seed", "INTEGER", "Int64"),
    ("params", "TEXT", "string"),
    ("inputs", "TEXT", "string"),
    ("fingerprint", "TEXT", "string"),
    ("task_id", "TEXT", "string"),
    ("request_id", "TEXT", "string"),
    ("status", "TEXT", "category"),
    ("error_code", "TEXT", "string"),
    ("error_message", "TEXT", "string"),
    ("started", "REAL", "datetime"),
    ("submitted", "REAL", "datetime"),
    ("scheduled", "REAL", "datetime"),
    ("ended", "REAL", "datetime"),
    ("downloaded", "REAL", "datetime"),
    ("latency_s", "REAL", "Float64"),
    ("queue_s", "REAL", "Float64"),
    ("run_s", "REAL", "Float64"),
    ("polls", "INTEGER", "Int64"),
    ("retries", "INTEGER", "Int64"),
    ("video_url", "TEXT", "string"),
    ("url_expires", "REAL", "datetime"),
    ("path", "TEXT", "string"),
    ("sha256", "TEXT", "string"),
    ("bytes", "INTEGER", "Int64"),
    ("width", "INTEGER", "Int64"),
    ("height", "INTEGER", "Int64"),
    ("fps", "REAL", "Float64"),
    ("frames", "INTEGER", "Int64"),
    ("video_seconds", "REAL", "Float64"),
    ("billed_seconds", "REAL", "Float64"),
    ("est_cost", "REAL", "Float64"),
    ("cost", "REAL", "Float64"),
    ("currency", "TEXT", "category"),
    ("price_source", "TEXT", "string"),
    ("tags", "TEXT", "string"),
    ("notes", "TEXT", "string"),
    ("rating", "INTEGER", "Int64"),
    ("cancel", "TEXT", "string"),
    ("claimed_by", "TEXT", "string"),
    ("claimed_until", "REAL", "Float64"),
    ("updated", "REAL", "datetime"),
]
NAMES = [c for c, _, _ in COLUMNS]
TERMINAL = tuple(s.value for s in Status if s.terminal)
RESULT_TTL_S = 24 * 3600   # DashScope keeps task ids and result URLs 24 h


def default_home() -> Path:
    return Path(os.environ.get("WANLAB_HOME") or "wanlab-runs")


class LogError(ConfigError):
    """The experiment log's file cannot be used (empty, foreign, corrupt, unwritable): says which file and what
    to do. Raised before anything is sent."""


# -- who holds a lease, and whether they still live ------------------------------------------------
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None when there is no such process.
    A pid alone is not an identity: after a restart the OS hands old pids to new processes."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    return stat.rsplit(")", 1)[1].split()[19]


_HOST = socket.gethostname().replace("|", "_")
_BOOT = _boot_id()
_LIVE_OWNERS: set[str] = set()     # tokens of this process's open logs


def _new_owner() -> str:
    start = _proc_start(os.getpid()) or ""
    return f"{_HOST}|{_BOOT}|{os.getpid()}|{start}|{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str | None) -> bool | None:
    """True / False when it can be told from here (same machine and boot), None when only the lease's expiry
    can tell (another machine, an old-style owner, no /proc)."""
    if not owner:
        return False
    parts = owner.split("|")
    if len(parts) != 5 or not parts[1] or not parts[3]:
        return None
    host, boot, pid, start, _ = parts
    if host != _HOST or boot != _BOOT:
        return None
    if int(pid) == os.getpid():
        return owner in _LIVE_OWNERS
    return _proc_start(int(pid)) == start


def describe_owner(owner: str | None) -> str:
    parts = (owner or "").split("|")
    return f"pid {parts[2]} on {parts[0]}" if len(parts) == 5 else (owner or "nobody")


class ExperimentLog:
    """`lease_s`: how long a claim on a row lasts without renewal (default `$WANLAB_LEASE_S` or 60 s). While
    a job of this process runs, a heartbeat thread renews its row's lease every `lease_s / 4`; a process
    that dies stops renewing, and after `lease_s` another process's `lab.resume()` may take the row."""

    def __init__(self, path: str | os.PathLike | None = None, *, lease_s: float | None = None,
                 clock: Callable[[], float] = time.time):
        home = default_home()
        self.path = Path(path) if path is not None else home / "runs.sqlite"
        if lease_s is None:
            lease_s = float(os.environ.get("WANLAB_LEASE_S") or LEASE_S)
        if not lease_s > 0:
            raise ValueError(f"lease_s={lease_s!r} must be > 0 seconds")
        self.lease_s = float(lease_s)
        self.clock = clock                    # injected in tests: leases are about time
        self.owner = _new_owner()
        self._held: set[str] = set()          # rows whose jobs run in this process: the heartbeat renews them
        self._beat: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._last_checkpoint = time.monotonic()
        self._conn = _open(self.path)
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise LogError(f"{self.path} is not a usable wanlab log ({exc}). If it is a copy, copy it again from "
                           f"a closed Lab; otherwise move it aside and a new log starts there") from None
        _LIVE_OWNERS.add(self.owner)
        self._finalizer = weakref.finalize(self, _LIVE_OWNERS.discard, self.owner)

    def _setup(self) -> None:
        self._c().execute("PRAGMA journal_mode=WAL")
        self._c().execute("PRAGMA synchronous=FULL")
        self._c().execute("PRAGMA busy_timeout=30000")
        cols = ", ".join(f"{c} {t}" for c, t, _ in COLUMNS)
        with self._lock:
            self._c().execute(f"CREATE TABLE IF NOT EXISTS runs ({cols})")
            have = {r[1] for r in self._c().execute("PRAGMA table_info(runs)")}
            for c, t, _ in COLUMNS:       # an older file gains new columns
                if c not in have:
                    self._c().execute(f"ALTER TABLE runs ADD COLUMN {c} {t.replace(' PRIMARY KEY', '')}")
            if "seq" not in have:       # the change counter behind the DataFrame cache (not a df column)
                self._c().execute("ALTER TABLE runs ADD COLUMN seq INTEGER")
            self._c().execute("UPDATE runs SET seq = rowid WHERE seq IS NULL")
            self._c().execute("CREATE INDEX IF NOT EXISTS runs_status ON runs(status)")
            self._c().execute("CREATE INDEX IF NOT EXISTS runs_task ON runs(task_id)")
            self._c().execute("CREATE INDEX IF NOT EXISTS runs_created ON runs(created)")
            self._c().execute("CREATE INDEX IF NOT EXISTS runs_seq ON runs(seq)")
            self._c().execute("CREATE INDEX IF NOT EXISTS runs_fingerprint ON runs(fingerprint)")
            self._c().execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self._c().execute("INSERT OR IGNORE INTO meta VALUES ('log_id', ?)", [uuid.uuid4().hex])
            self._c().execute("CREATE TABLE IF NOT EXISTS locks (scope TEXT PRIMARY KEY, owner TEXT, until REAL)")
            self.log_id = self._c().execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]
        self.cache_path = self.path.with_name(self.path.name + ".df.arrow")
        self._mem: tuple[int, "pd.DataFrame"] | None = None     # (seq high-water mark, frame)

    def _repr_html_(self) -> str:
        from .ui.video import log_html

        return log_html(self)

    def __repr__(self) -> str:
        return f"ExperimentLog({str(self.path)!r}, rows={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            return self._c().execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Checkpoint the WAL into the file, so `runs.sqlite` alone is the whole log (a copy, a backup), and
        let go of every lease held here: another process may take those rows at once."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        _LIVE_OWNERS.discard(self.owner)
        with self._lock:
            try:
                self._c().execute("UPDATE runs SET claimed_until = 0 WHERE claimed_by = ? AND status NOT IN "
                                   f"({', '.join('?' * len(TERMINAL))})", [self.owner, *TERMINAL])
                self._c().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass                # read-only or busy: the data is still in the WAL, SQLite replays it
            self._held.clear()
            self._conn.close()
            self._conn = None      # reads reopen it (`lab.log.df` after `lab.close()`); writes refuse

    def _c(self) -> sqlite3.Connection:
        """The connection; reopened for reading after close(), so a closed Lab's log can still be looked at."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        return self._conn

    def checkpoint(self, every_s: float = 30.0) -> None:
        """Copy the WAL into the main file now and then (passive: never waits on readers)."""
        if time.monotonic() - self._last_checkpoint < every_s or self._closed:
            return
        self._last_checkpoint = time.monotonic()
        with self._lock:
            try:
                self._c().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass

    # -- writing ---------------------------------------------------------------------------------
    def _write(self, run_id: str, values: dict[str, Any], insert: bool = False) -> None:
        values = {**values, "updated": time.time()}
        with self._lock:
            if self._closed:
                raise LogError(f"the experiment log {self.path} was closed; open a new Lab")
            if insert:
                cols = ["run_id", *values]
                self._c().execute(f"INSERT INTO runs ({', '.join(cols)}, seq) VALUES ({', '.join('?' * len(cols))}, "
                                   f"{_NEXT_SEQ})", [run_id, *values.values()])
            else:
                sets = ", ".join(f"{k} = ?" for k in values)
                self._c().execute(f"UPDATE runs SET {sets}, seq = {_NEXT_SEQ} WHERE run_id = ?",
                                   [*values.values(), run_id])

    def insert(self, row: dict[str, Any]) -> None:
        """One durable row (a commit per call)."""
        row = dict(row)
        self._write(row.pop("run_id"), row, insert=True)

    def update(self, run_id: str, **values: Any) -> None:
        unknown = set(values) - set(NAMES)
        if unknown:
            raise KeyError(f"not log columns: {', '.join(sorted(unknown))}")
        self._write(run_id, values)

    def record_created(self, job: Job, params: dict[str, Any], inputs: dict[str, Any], *, attach: bool = False,
                       **extra: Any) -> dict[str, Any] | None:
        """The row for a new job, before anything is sent; the job then updates it via `observe`.
        `params` and `inputs` come from `requests.to_record` and are enough to rebuild the request.

        With `attach`, and an unfinished row for the same request (fingerprint, model, host, base URL) in
        the log — from this process, another live one, or a dead one — nothing is written and that row is
        returned instead: the run is already paid for or about to be. Check and insert are one transaction,
        so two kernels running the same cell at once make one row between them."""
        req = job.request
        row = {"run_id": job.id, "created": job.timings["created"], "host": job.host, "region": job.region,
               "protocol": getattr(job, "protocol", ""), "model": job.model.id, "mode": req.mode,
               "prompt": req.prompt, "negative_prompt": req.negative_prompt, "resolution": req.resolution,
               "duration": req.duration, "seed": req.seed, "params": json.dumps(params, default=str),
               "inputs": json.dumps(inputs, default=str), "fingerprint": req.fingerprint(),
               "status": str(job.status), "polls": 0, "retries": 0, "claimed_by": self.owner,
               "claimed_until": self.clock() + self.lease_s}
        row.update(extra)
        if not attach:
            self.insert(row)
            return None
        keys = ("fingerprint", "model", "host", "protocol", "region", "base_url")
        where = " AND ".join(f"{k} IS ?" for k in keys)
        marks = ", ".join("?" * len(TERMINAL))
        values = {**row, "updated": time.time()}
        run_id = values.pop("run_id")
        with self._lock:
            self._c().execute("BEGIN IMMEDIATE")
            try:
                found = self._c().execute(
                    f"SELECT {', '.join(NAMES)} FROM runs WHERE {where} AND status NOT IN ({marks}) "
                    "ORDER BY created DESC LIMIT 1", [row.get(k) for k in keys] + list(TERMINAL)).fetchone()
                if found is None:
                    self._c().execute(f"INSERT INTO runs (run_id, {', '.join(values)}, seq) VALUES "
                                       f"({', '.join('?' * (len(values) + 1))}, {_NEXT_SEQ})", [run_id, *values.values()])
                self._c().execute("COMMIT")
            except BaseException:
                self._c().execute("ROLLBACK")
                raise
        return dict(zip(NAMES, found)) if found is not None else None

    def observe(self, job: Job, ev: JobEvent) -> None:
        """Job observer: write what changed. Runs on the Lab's loop thread."""
        values: dict[str, Any] = {}
        if ev.kind == "submitted":
            values.update(task_id=job.task_id, request_id=job.request_id, submitted=job.timings["submitted"],
                          status=str(job.status))
        elif ev.kind == "status":
            # a job is SUCCEEDED only once its file is verified (Job.apply), so a crash while downloading
            # leaves a DOWNLOADING row for resume(), never a SUCCEEDED row without a video
            values.update(status=str(job.status), polls=job.polls,
                          **{k: job.timings[k] for k in ("started", "scheduled", "ended")})
            if job.task_id:
                values["task_id"] = job.task_id
            if job.video_url:
                values["video_url"] = job.video_url
                values["url_expires"] = (job.timings["ended"] or time.time()) + RESULT_TTL_S
            if job.usage:
                values["billed_seconds"] = billed_seconds(job.usage)
            if job.error is not None:
                values["error_code"] = job.error_code or type(job.error).__name__
                values["error_message"] = str(job.error)
            if job.seed is not None and job.request.seed is None:
                values["seed"] = job.seed          # the seed the host drew: rerun() reproduces it
            values.update(latency_s=job.latency, queue_s=job.queue_time, run_s=job.run_time)
            if job.status.terminal:
                values["claimed_until"] = 0.0
                self.release(job.id)
                self.checkpoint()
            if getattr(job, "cost", None) is not None:
                values["cost"] = job.cost
                if job.currency:
                    values["currency"] = job.currency
                if getattr(job, "cost_basis", None):
                    values["price_source"] = job.cost_basis
        elif ev.kind == "downloaded":
            info = job.video_info
            values.update(path=str(job.video_path), sha256=job.sha256, bytes=job.bytes, downloaded=job.timings[
                "downloaded"], width=info.get("width"), height=info.get("height"), fps=info.get("fps"),
                frames=info.get("frames"), video_seconds=info.get("duration"))
        elif ev.kind == "retry":
            if self._closed:
                raise LogError(f"the experiment log {self.path} was closed; open a new Lab")
            with self._lock:
                self._c().execute(f"UPDATE runs SET retries = COALESCE(retries, 0) + 1, seq = {_NEXT_SEQ} "
                                   "WHERE run_id = ?", [job.id])
            return
        elif ev.kind == "detached":
            self.release(job.id)
            values["claimed_until"] = 0.0
            values["error_code"] = job.error_code or (type(job.error).__name__ if job.error else "")
            values["error_message"] = f"detached, resumable: {ev.detail}"
        elif ev.kind == "cancel":
            values["cancel"] = ev.detail
        elif ev.kind == "heartbeat":
            values["claimed_until"] = self.clock() + self.lease_s
        if values:
            self.update(job.id, **values)

    # -- leases (two kernels, one log) -----------------------------------------------------------
    def holder(self, run_id: str) -> str | None:
        """Who holds a live lease on the row (None when it is free to take)."""
        with self._lock:
            found = self._c().execute("SELECT claimed_by, claimed_until FROM runs WHERE run_id = ?",
                                       [run_id]).fetchone()
        if found is None:
            return None
        by, until = found
        return None if self._free(by, until) else by

    def _free(self, by: str | None, until: float | None) -> bool:
        if by is None or (until or 0.0) < self.clock():
            return True
        if by == self.owner:
            return False
        return owner_alive(by) is False

    def claim(self, run_id: str) -> bool:
        """Take the lease on a row unless someone alive holds it: a lease ends when its holder dies (seen at
        once on the same machine), closes its Lab, stops renewing it (another machine: after `lease_s`), or
        the job ends. A compare-and-swap on the holder: atomic across processes."""
        with self._lock:
            if self._closed:
                return False
            found = self._c().execute("SELECT claimed_by, claimed_until FROM runs WHERE run_id = ?",
                                       [run_id]).fetchone()
            if found is None or not self._free(*found):
                return False
            cur = self._c().execute(
                f"UPDATE runs SET claimed_by = ?, claimed_until = ?, seq = {_NEXT_SEQ} WHERE run_id = ? AND "
                "claimed_by IS ? AND claimed_until IS ?", [self.owner, self.clock() + self.lease_s, run_id, *found])
            return cur.rowcount == 1

    # -- one submit in flight per key, across every process on this log ---------------------------
    def try_lock(self, scope: str, token: str, hold_s: float) -> bool:
        """Take the named lock unless someone alive holds it. Submits to one account go one at a time across
        kernels, so an ambiguous submit has at most one new task on the host to adopt."""
        owner = token.split("#", 1)[0]
        with self._lock:
            if self._closed:
                raise LogError(f"the experiment log {self.path} was closed; open a new Lab")
            self._c().execute("BEGIN IMMEDIATE")
            try:
                found = self._c().execute("SELECT owner, until FROM locks WHERE scope = ?", [scope]).fetchone()
                free = found is None or found[0] == token or (found[1] or 0.0) < self.clock() or (
                    found[0].split("#", 1)[0] != owner and owner_alive(found[0].split("#", 1)[0]) is False) or (
                    found[0].split("#", 1)[0] == owner and self._closed)
                if free:
                    self._c().execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?)",
                                       [scope, token, self.clock() + hold_s])
                self._c().execute("COMMIT")
            except BaseException:
                self._c().execute("ROLLBACK")
                raise
        return free

    def unlock(self, scope: str, token: str) -> None:
        with self._lock:
            if not self._closed:
                self._c().execute("DELETE FROM locks WHERE scope = ? AND owner = ?", [scope, token])

    def submitting(self, model: str, since: float, exclude: str) -> list[tuple[float, str]]:
        """(started, run_id) of rows whose submit is in flight or unresolved (SUBMITTING, no task id) for
        `model` since `since`, in any process: the other claimants on the new tasks a host lists."""
        with self._lock:
            return [(r[0] or 0.0, r[1]) for r in self._c().execute(
                "SELECT started, run_id FROM runs WHERE status = 'SUBMITTING' AND task_id IS NULL AND model = ? "
                "AND COALESCE(started, created) >= ? AND run_id != ?", [model, since, exclude])]

    def hold(self, run_id: str) -> None:
        """A job of this process is running this row: keep its lease alive until `release`."""
        with self._lock:
            self._held.add(run_id)
            alive = self._beat is not None and self._beat.is_alive()
            if not alive and not self._closed:
                self._beat = threading.Thread(target=self._heartbeat, name="wanlab-log-lease", daemon=True)
                self._beat.start()

    def release(self, run_id: str) -> None:
        with self._lock:
            self._held.discard(run_id)

    def renew(self) -> list[str]:
        """Extend the leases of the rows held here; returns the ids whose lease another process took
        (after this one stalled longer than `lease_s`)."""
        with self._lock:
            held = sorted(self._held)
            if not held or self._closed:
                return []
            lost = []
            for i in range(0, len(held), 500):
                chunk = held[i:i + 500]
                marks = ", ".join("?" * len(chunk))
                self._c().execute(f"UPDATE runs SET claimed_until = ?, seq = {_NEXT_SEQ} WHERE run_id IN ({marks}) "
                                   f"AND claimed_by = ?",
                                   [self.clock() + self.lease_s, *chunk, self.owner])
                mine = {r[0] for r in self._c().execute(
                    f"SELECT run_id FROM runs WHERE run_id IN ({marks}) AND claimed_by = ?", [*chunk, self.owner])}
                lost += [r for r in chunk if r not in mine]
            self._held.difference_update(lost)
            return lost

    def _heartbeat(self) -> None:
        """Renew held leases every lease_s/4; ends when nothing is held (hold() starts it again)."""
        while not self._closed:
            self._wake.wait(self.lease_s / 4)
            if self._closed:
                return
            try:
                lost = self.renew()
            except sqlite3.Error:
                continue            # busy or closing: try again next beat, well within the lease
            if lost:
                import logging
                logging.getLogger("wanlab").warning("another process took the lease on run(s) %s", ", ".join(lost))
            with self._lock:
                if not self._held:
                    self._beat = None
                    return

    # -- reading ---------------------------------------------------------------------------------
    def rows(self, where: str = "", params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(NAMES)} FROM runs" + (f" WHERE {where}" if where else "") + " ORDER BY created"
        with self._lock:
            return [dict(zip(NAMES, r)) for r in self._c().execute(sql, list(params))]

    def get(self, run_id: str) -> dict[str, Any]:
        rows = self.rows("run_id = ?", [run_id])
        if not rows:
            raise KeyError(f"no run {run_id!r} in {self.path}")
        return rows[0]

    def unfinished(self) -> list[dict[str, Any]]:
        marks = ", ".join("?" * len(TERMINAL))
        return self.rows(f"status NOT IN ({marks})", TERMINAL)

    def similar(self, column: str, *, model: str, resolution: str, duration: int, host: str | None = None,
                exclude: str | None = None, limit: int = 50) -> list[float]:
        """`column` (e.g. latency_s, run_s) of the latest successful runs with the same model, resolution
        and duration: the history that ETAs and poll priors are drawn from."""
        if column not in NAMES:
            raise KeyError(f"{column!r} is not a log column")
        sql = (f"SELECT {column} FROM runs WHERE status = 'SUCCEEDED' AND {column} IS NOT NULL AND model = ? "
               f"AND resolution = ? AND duration = ?")
        params: list[Any] = [model, resolution, duration]
        if host is not None:
            sql += " AND host = ?"
            params.append(host)
        if exclude is not None:
            sql += " AND run_id != ?"
            params.append(exclude)
        with self._lock:
            return [float(r[0]) for r in self._c().execute(sql + f" ORDER BY created DESC LIMIT {int(limit)}",
                                                            params)]

    def known_task_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._c().execute("SELECT task_id FROM runs WHERE task_id IS NOT NULL")}

    @property
    def df(self) -> "pd.DataFrame":
        return self.frame()

    def frame(self, where: str = "", params: Iterable[Any] = ()) -> "pd.DataFrame":
        """The log as a typed DataFrame: categorical resolution (ordered 480P < 720P < 1080P), nullable
        integers, tz-aware UTC datetimes. Without `where`, the whole log comes from a typed Arrow snapshot
        (`runs.sqlite.df.arrow`, in memory after the first call) plus the rows changed since, found by a
        change counter that every write bumps inside its transaction — so it is exact across processes."""
        if not where:
            return self._full_frame()
        sql = f"SELECT {', '.join(NAMES)} FROM runs WHERE {where} ORDER BY created"
        with self._lock:
            data = self._c().execute(sql, list(params)).fetchall()
        return _from_rows(data)

    def _full_frame(self) -> "pd.DataFrame":
        import pandas as pd

        base = self._mem if self._mem is not None else self._read_cache()
        sql = f"SELECT {', '.join(NAMES)} FROM runs"
        with self._lock:
            self._c().execute("BEGIN")          # one read snapshot for the counts and the rows
            try:
                hw, count = self._c().execute("SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM runs").fetchone()
                if base is not None and base[0] > hw:
                    base = None                 # the file was replaced: the snapshot is of another log
                data = self._c().execute(sql + (" WHERE seq > ?" if base is not None else "") + " ORDER BY created",
                                          [base[0]] if base is not None else []).fetchall()
            finally:
                self._c().execute("COMMIT")
        delta = _from_rows(data)
        if base is None:
            out = delta
        elif not len(delta):
            out = base[1]
        else:
            old = base[1]
            old = old[~old["run_id"].isin(delta["run_id"])]
            out = pd.concat([old, delta], ignore_index=True)
            for name, _, kind in COLUMNS:   # concat of categoricals with different categories gives object
                if kind == "category" and out[name].dtype != "category":
                    out[name] = out[name].astype("category")
            out = out.sort_values("created", kind="stable", ignore_index=True)
        if len(out) != count:              # should not happen; never serve a wrong frame
            with self._lock:
                data = self._c().execute(sql + " ORDER BY created").fetchall()
            out, delta, base = _from_rows(data), None, None
            hw = None
        if hw is not None:
            self._mem = (hw, out)
            if base is None or len(delta) > max(1000, count // 50):
                self._write_cache(hw, out)
        return out.copy(deep=False)

    def _read_cache(self) -> "tuple[int, pd.DataFrame] | None":
        try:
            import pyarrow.feather as feather

            table = feather.read_table(self.cache_path, memory_map=False)
            meta = table.schema.metadata or {}
            if meta.get(b"wanlab.log_id", b"").decode() != self.log_id or \
                    meta.get(b"wanlab.schema", b"").decode() != _SCHEMA_ID:
                return None
            return int(meta[b"wanlab.hw"]), table.to_pandas()
        except Exception:                  # absent, partial, pyarrow missing: load from SQLite
            return None

    def _write_cache(self, hw: int, frame: "pd.DataFrame") -> None:
        try:
            import pyarrow as pa
            import pyarrow.feather as feather

            table = pa.Table.from_pandas(frame, preserve_index=False)
            meta = dict(table.schema.metadata or {})
            meta.update({b"wanlab.hw": str(hw).encode(), b"wanlab.log_id": self.log_id.encode(),
                         b"wanlab.schema": _SCHEMA_ID.encode()})
            tmp = self.cache_path.with_name(f".{self.cache_path.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.tmp")
            feather.write_feather(table.replace_schema_metadata(meta), tmp, compression="uncompressed")
            os.replace(tmp, self.cache_path)
        except Exception:
            pass                            # a cache is an optimisation: never fail a read over it

    def filter(self, since: Any = None, until: Any = None, **equals: Any) -> "pd.DataFrame":
        """Rows where each column equals the value (a list means any of them), created in [since, until)
        (datetimes, pandas Timestamps or epoch seconds): `log.filter(status="FAILED")`,
        `log.filter(study="kites", resolution=["720P", "1080P"], since="2026-07-01")`."""
        clauses, params = [], []
        for col, value in equals.items():
            if col not in NAMES:
                raise KeyError(f"{col!r} is not a log column; columns: {', '.join(NAMES)}")
            if isinstance(value, (list, tuple, set)):
                value = list(value)
                clauses.append(f"{col} IN ({', '.join('?' * len(value))})")
                params += value
            elif value is None:
                clauses.append(f"{col} IS NULL")
            else:
                clauses.append(f"{col} = ?")
                params.append(value)
        for bound, op in ((since, ">="), (until, "<")):
            if bound is not None:
                clauses.append(f"created {op} ?")
                params.append(_epoch(bound))
        return self.frame(" AND ".join(clauses) or "1 = 1", params)

    def to_csv(self, path: str | os.PathLike) -> Path:
        self.df.to_csv(path, index=False)
        return Path(path)

    def to_parquet(self, path: str | os.PathLike) -> Path:
        self.df.to_parquet(path, index=False)
        return Path(path)

    def to_mlflow(self, experiment: str = "wanlab", run_ids: Iterable[str] | None = None) -> int:
        """Export runs to MLflow (parameters, metrics, the video as an artifact). Needs `pip install mlflow`."""
        try:
            import mlflow
        except ImportError:
            raise ImportError("to_mlflow needs mlflow: pip install mlflow") from None
        rows = self.rows() if run_ids is None else [self.get(r) for r in run_ids]
        mlflow.set_experiment(experiment)
        n = 0
        for row in rows:
            with mlflow.start_run(run_name=row["run_id"]):
                mlflow.log_params({k: row[k] for k in ("host", "region", "model", "mode", "resolution", "duration",
                                                       "seed", "status", "task_id") if row[k] is not None})
                mlflow.set_tag("prompt", (row["prompt"] or "")[:5000])
                mlflow.log_metrics({k: float(row[k]) for k in ("latency_s", "queue_s", "run_s", "cost", "est_cost",
                                                               "polls") if row[k] is not None})
                if row["path"] and Path(row["path"]).exists():
                    mlflow.log_artifact(row["path"])
            n += 1
        return n

    def set_rating(self, run_id: str, rating: int | None = None, notes: str | None = None) -> None:
        if rating is not None and rating not in range(1, 6):
            raise ValueError(f"rating={rating!r}: use 1–5")
        values: dict[str, Any] = {}
        if rating is not None:
            values["rating"] = rating
        if notes is not None:
            values["notes"] = notes
        self.update(run_id, **values)


LEASE_S = 60.0


def _open(path: Path) -> sqlite3.Connection:
    """Connect, refusing what is not a log, with the path and what to do in the message."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogError(f"cannot create the folder for the experiment log {path} ({exc.strerror}); choose a "
                       f"writable folder with Lab(home=…) or $WANLAB_HOME") from None
    if path.is_dir():
        raise LogError(f"{path} is a folder, not an experiment log file; pass the file inside it "
                       f"(e.g. {path / 'runs.sqlite'}) or another path")
    if path.exists() and path.stat().st_size == 0 and not path.with_name(path.name + "-wal").exists():
        raise LogError(f"{path} is empty (0 bytes): not a wanlab log. A copy of a log taken while its Lab ran "
                       f"lacks the '-wal' file beside it: copy again after lab.close(). To start a new log, delete "
                       f"the empty file")
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head != b"SQLite format 3\x00":
            raise LogError(f"{path} is not an SQLite file, so not a wanlab log; move it aside or point "
                           f"Lab(log=…) at another path")
    try:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise LogError(f"cannot open the experiment log {path} ({exc}); check the path and its permissions") from None
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LogError(f"{path} is corrupt or not a database ({exc}); move it aside (a new log starts there) "
                       f"or restore a copy") from None
    if tables and "runs" not in tables:
        conn.close()
        raise LogError(f"{path} is an SQLite file of something else (tables: {', '.join(sorted(tables))}), not a "
                       f"wanlab log; point Lab(log=…) at another path")
    return conn
_NEXT_SEQ = "(SELECT COALESCE(MAX(seq), 0) + 1 FROM runs)"
_SCHEMA_ID = "1:" + ",".join(f"{c}/{k}" for c, _, k in COLUMNS)


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    import pandas as pd

    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.timestamp()


def _from_rows(data: list[tuple]) -> "pd.DataFrame":
    import pandas as pd

    return _typed(pd.DataFrame.from_records(data, columns=NAMES))


def _typed(raw: "pd.DataFrame") -> "pd.DataFrame":
    import pandas as pd

    out = {}
    for name, _, kind in COLUMNS:
        col = raw[name]
        if kind == "datetime":
            out[name] = pd.to_datetime(col.astype("float64"), unit="s", utc=True)
        elif kind == "resolution":
            out[name] = pd.Categorical(col, categories=["480P", "720P", "1080P"], ordered=True)
        elif kind == "category":
            out[name] = col.astype("category")
        elif kind == "Int64":
            out[name] = pd.array(col, dtype="Int64") if len(col) else pd.array([], dtype="Int64")
        elif kind == "Float64":
            out[name] = col.astype("Float64")
        else:
            out[name] = col.astype("string")
    return pd.DataFrame(out)
