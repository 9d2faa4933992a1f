"""The log's SQLite file: where it lives, the checks before it is used (`LogError`), the connection, with its
lock, that every part of the log goes through, and the writer thread (`writer.Writer`) that a job's updates
are deferred to, so the Lab's loop never waits for a disk."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .schema import create_tables
from .writer import Writer, WriterClosed, flush_file


def default_home() -> Path:
    return Path(os.environ.get("WANLAB_HOME") or "wanlab-runs")


class LogError(ConfigError):
    """The experiment log's file cannot be used (empty, foreign, corrupt, unwritable): says which file and what
    to do. Raised before anything is sent."""


class Db:
    """One connection (autocommit; WAL, synchronous=FULL) and the lock every statement takes, plus a writer
    thread with a connection of its own for deferred writes (`write_later`). Whatever goes through `c()` comes
    after this process's deferred writes queued before it: reads see them, synchronous writes are ordered after
    them. After `close()` reads reopen the connection (`lab.log.df` after `lab.close()`); writes refuse."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.closed = False
        self._last_checkpoint = time.monotonic()
        self._writer: Writer | None = None  # started by the first deferred write
        self._writer_lock = threading.Lock()
        self._key = str(path.resolve())  # the file, however it was named: see writer.flush_file
        # run on the writer thread, with its connection, when its queue empties; must not take `lock` (a thread
        # holding it may be waiting for the writer)
        self.on_idle: Callable[[sqlite3.Connection], object] | None = None
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
        """The connection, once this process's deferred writes queued so far are committed (not inside a
        transaction of its own: that one already has its snapshot or its write lock, and the writer would wait
        for it). Reopened for reading after close(), so a closed Lab's log can still be looked at."""
        if self.conn is None:
            self.conn = connect(self.path)
        elif not self.conn.in_transaction:
            flush_file(self._key)
        return self.conn

    @property
    def writer(self) -> Writer:
        """The writer thread's queue (created here, started by its first item)."""
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = Writer(
                        self._writer_connection,
                        name=f"wanlab-log-writer {self.path.name}",
                        idle=self._idle,
                        key=self._key,
                    )
        return self._writer

    def _idle(self, conn: sqlite3.Connection) -> None:
        if self.on_idle is not None:
            self.on_idle(conn)

    def _writer_connection(self) -> sqlite3.Connection:
        conn = connect(self.path)
        conn.execute("PRAGMA synchronous=FULL")  # per connection: a commit of the writer survives a crash too
        return conn

    def check_open(self) -> None:
        if self.closed:
            raise self._closed_error()

    def _closed_error(self) -> LogError:
        return LogError(f"the experiment log {self.path} was closed; open a new Lab")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        self.flush()  # waited for without the lock, so the loop thread's lock users do not wait behind it
        with self.lock:
            return self.c().execute(sql, list(params)).fetchall()

    def write(self, sql: str, params: Iterable[Any]) -> None:
        """One durable statement (a commit), after the deferred ones queued before it; refused once the log is
        closed."""
        self.flush()
        with self.lock:
            self.check_open()
            self.c().execute(sql, list(params))

    def write_later(self, sql: str, params: list[Any]) -> Future[None]:
        """Queue one statement for the writer thread; the future ends once it is committed (or with the error
        that kept it out). Refused (LogError, at once) once the log is closed."""
        self.check_open()
        try:
            return self.writer.submit(sql, params)
        except WriterClosed:  # closed between the check and the queue
            raise self._closed_error() from None

    def wait(self, fut: Future[Any]) -> Any:
        """The result of a deferred write, waited for (it raises what the write raised)."""
        if self._writer is not None and self._writer.on_thread():
            # a callback of a deferred write's future, writing again and waiting: it would wait on itself
            raise LogError(f"a write to the experiment log {self.path} waited on from the log's own writer thread")
        return fut.result()

    def flush(self) -> None:
        """Return once this process's deferred writes queued so far are committed."""
        flush_file(self._key)

    @contextmanager
    def immediate(self, *, open_only: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken before the first read (BEGIN IMMEDIATE): what is read in it is still
        true when it commits, across processes. Rolled back on any error."""
        self.flush()
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
        """Copy the WAL into the main file now and then (passive: never waits on readers). With a writer
        thread, on that thread, after what is queued: the caller (the loop thread) does not wait for the I/O."""
        if time.monotonic() - self._last_checkpoint < every_s or self.closed:
            return
        self._last_checkpoint = time.monotonic()
        if self._writer is not None:
            try:
                self._writer.call(_checkpoint)
            except WriterClosed:
                pass
            return
        with self.lock:
            _checkpoint(self.c())

    def close(self, last: Callable[[sqlite3.Connection], None]) -> None:
        """Write what is queued for the writer thread and end it; then run `last`, checkpoint the WAL into the
        file, so the file alone is the whole log (a copy, a backup), and close the connection: all under the
        lock. `closed` is set by the caller, first (so nothing new is queued)."""
        if self._writer is not None:
            self._writer.close()
        with self.lock:
            conn = self.c()
            try:
                last(conn)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # read-only or busy: the data is still in the WAL, SQLite replays it
            conn.close()
            self.conn = None


def _checkpoint(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        pass


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)


def _create(path: Path) -> None:
    """Make a new log under a temporary name and link it into place: no process ever sees a log half made,
    so an empty file is never one of ours in the making (two kernels may start one log at the same instant)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        conn = connect(tmp)
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
        conn = connect(path)
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
