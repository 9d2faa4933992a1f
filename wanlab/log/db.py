"""The log's SQLite file: where it lives, the checks before it is used (`LogError`), and the one
connection, with its lock, that every part of the log goes through."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .schema import create_tables


def default_home() -> Path:
    return Path(os.environ.get("WANLAB_HOME") or "wanlab-runs")


class LogError(ConfigError):
    """The experiment log's file cannot be used (empty, foreign, corrupt, unwritable): says which file and what
    to do. Raised before anything is sent."""


class Db:
    """One connection (autocommit; WAL, synchronous=FULL) and the lock every statement takes. After
    `close()` reads reopen it (`lab.log.df` after `lab.close()`); writes refuse."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.closed = False
        self._last_checkpoint = time.monotonic()
        self.conn: sqlite3.Connection | None = _open(path)
        try:
            self.c().execute("PRAGMA journal_mode=WAL")
            self.c().execute("PRAGMA synchronous=FULL")
            self.c().execute("PRAGMA busy_timeout=30000")
            with self.lock:
                self.log_id: str = create_tables(self.c())
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise LogError(
                f"{path} is not a usable wanlab log ({exc}). If it is a copy, copy it again from "
                f"a closed Lab; otherwise move it aside and a new log starts there"
            ) from None

    def c(self) -> sqlite3.Connection:
        """The connection; reopened for reading after close(), so a closed Lab's log can still be looked at."""
        if self.conn is None:
            self.conn = _connect(self.path)
        return self.conn

    def check_open(self) -> None:
        if self.closed:
            raise LogError(f"the experiment log {self.path} was closed; open a new Lab")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self.lock:
            return self.c().execute(sql, list(params)).fetchall()

    def write(self, sql: str, params: Iterable[Any]) -> None:
        """One durable statement (a commit), refused once the log is closed."""
        with self.lock:
            self.check_open()
            self.c().execute(sql, list(params))

    @contextmanager
    def immediate(self, *, open_only: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken before the first read (BEGIN IMMEDIATE): what is read in it is still
        true when it commits, across processes. Rolled back on any error."""
        with self.lock:
            if open_only:
                self.check_open()
            self.c().execute("BEGIN IMMEDIATE")
            try:
                yield self.c()
                self.c().execute("COMMIT")
            except BaseException:
                self.c().execute("ROLLBACK")
                raise

    def checkpoint(self, every_s: float = 30.0) -> None:
        """Copy the WAL into the main file now and then (passive: never waits on readers)."""
        if time.monotonic() - self._last_checkpoint < every_s or self.closed:
            return
        self._last_checkpoint = time.monotonic()
        with self.lock:
            try:
                self.c().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass

    def close(self, last: Callable[[sqlite3.Connection], None]) -> None:
        """Run `last`, checkpoint the WAL into the file, so the file alone is the whole log (a copy, a
        backup), and close the connection: all under the lock. `closed` is set by the caller, first."""
        with self.lock:
            conn = self.c()
            try:
                last(conn)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # read-only or busy: the data is still in the WAL, SQLite replays it
            conn.close()
            self.conn = None


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)


def _create(path: Path) -> None:
    """Make a new log under a temporary name and link it into place: no process ever sees a log half made,
    so an empty file is never one of ours in the making (two kernels may start one log at the same instant)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        conn = _connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            create_tables(conn)
        finally:
            conn.close()
        try:
            os.link(tmp, path)  # atomic, and refuses to replace a log another process just made
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: a plain rename, if nobody was first
            if not path.exists():
                os.replace(tmp, path)
    except (OSError, sqlite3.Error) as exc:
        raise LogError(f"cannot create the experiment log {path} ({exc}); choose a writable folder") from None
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


def _open(path: Path) -> sqlite3.Connection:
    """Connect, refusing what is not a log, with the path and what to do in the message."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LogError(
            f"cannot create the folder for the experiment log {path} ({exc.strerror}); choose a "
            f"writable folder with Lab(home=…) or $WANLAB_HOME"
        ) from None
    if path.is_dir():
        raise LogError(
            f"{path} is a folder, not an experiment log file; pass the file inside it "
            f"(e.g. {path / 'runs.sqlite'}) or another path"
        )
    if not path.exists():
        _create(path)
    if path.exists() and path.stat().st_size == 0 and not path.with_name(path.name + "-wal").exists():
        raise LogError(
            f"{path} is empty (0 bytes): not a wanlab log. A copy of a log taken while its Lab ran "
            f"lacks the '-wal' file beside it: copy again after lab.close(). To start a new log, delete "
            f"the empty file"
        )
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:
            head = fh.read(16)
        if head != b"SQLite format 3\x00":
            raise LogError(
                f"{path} is not an SQLite file, so not a wanlab log; move it aside or point Lab(log=…) at another path"
            )
    try:
        conn = _connect(path)
    except sqlite3.Error as exc:
        raise LogError(f"cannot open the experiment log {path} ({exc}); check the path and its permissions") from None
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LogError(
            f"{path} is corrupt or not a database ({exc}); move it aside (a new log starts there) or restore a copy"
        ) from None
    if tables and "runs" not in tables:
        conn.close()
        raise LogError(
            f"{path} is an SQLite file of something else (tables: {', '.join(sorted(tables))}), not a "
            f"wanlab log; point Lab(log=…) at another path"
        )
    return conn
