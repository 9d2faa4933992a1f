"""The log's writer thread: the statements a job's events produce on the Lab's loop thread are queued here and
written on a connection of this thread's own, so the loop never waits for a disk.

Whatever is queued when the thread wakes is written in ONE transaction (BEGIN IMMEDIATE … COMMIT: one fsync
for the batch, group commit), in the order it was queued (one thread, first in first out). Nothing waits to
gather a batch: while one commit is under way the next batch forms by itself. Each statement's
`concurrent.futures.Future` ends once its transaction is committed (or with the error that kept it out).
"""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

# Every live writer of this process, by the log file it writes: a read through one ExperimentLog waits for what
# any other in this process queued for the same file (two Labs on one log, `compare_hosts`, a re-run cell).
_LIVE: dict[str, weakref.WeakSet[Writer]] = {}
_LIVE_LOCK = threading.Lock()


def flush_file(key: str) -> None:
    """Wait for what every writer of this process queued for the file `key` (see `Writer(key=)`) so far."""
    writers = _LIVE.get(key)
    if writers:
        with _LIVE_LOCK:
            found = list(writers)
        for writer in found:
            writer.flush()


class WriterClosed(RuntimeError):
    """The writer was closed: nothing more is queued."""


class _Item:
    __slots__ = ("fn", "fut", "params", "sql")

    def __init__(self, sql: str, params: list[Any] | None, fn: Callable[[sqlite3.Connection], Any] | None):
        self.sql = sql
        self.params = params
        self.fn = fn  # run alone, outside any transaction (a checkpoint, a test's probe)
        self.fut: Future[Any] = Future()
        # running from the moment it is queued: a waiter that gives up (a cancelled asyncio.wrap_future)
        # cannot cancel a write that the log promised
        self.fut.set_running_or_notify_cancel()


class Writer:
    """One daemon thread, started by the first `submit`, ended by `close` after it has written everything
    queued. `connect` opens its connection (on the thread, at its first batch)."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        name: str = "wanlab-log-writer",
        idle: Callable[[sqlite3.Connection], object] | None = None,
        key: str = "",
    ):
        self._connect = connect
        self._name = name
        # run on the thread, with its connection, when a batch leaves the queue empty (the DataFrame snapshot)
        self._on_idle = idle
        self._mutex = threading.Lock()
        self._work = threading.Condition(self._mutex)  # the thread waits here for items
        self._idle = threading.Condition(self._mutex)  # `flush` waits here for items to be written
        self._queue: list[_Item] = []
        self._queued = 0  # items ever queued
        self._written = 0  # items ever finished (committed, or failed)
        self._closing = False
        self._thread: threading.Thread | None = None
        if key:
            with _LIVE_LOCK:
                _LIVE.setdefault(key, weakref.WeakSet()).add(self)

    def submit(self, sql: str, params: list[Any]) -> Future[Any]:
        """Queue one statement; its future ends when it is committed."""
        return self._put(_Item(sql, params, None))

    def call(self, fn: Callable[[sqlite3.Connection], Any]) -> Future[Any]:
        """Run `fn(connection)` on the writer thread, between transactions, in queue order."""
        return self._put(_Item("", None, fn))

    def _put(self, item: _Item) -> Future[Any]:
        with self._mutex:
            if self._closing:
                raise WriterClosed("the log's writer is closed")
            self._queue.append(item)
            self._queued += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
                # a daemon never keeps the interpreter alive, and dies with it: a script that ends without
                # closing its log still gets what it queued written first
                atexit.register(_flush_at_exit, weakref.ref(self))
            else:
                self._work.notify()
        return item.fut

    def on_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def flush(self) -> None:
        """Return once everything queued before this call is written. A no-op on the writer thread itself
        (its futures' callbacks run there), which must never wait on its own queue."""
        if self._queued == self._written or self.on_thread():
            return
        with self._mutex:
            target = self._queued
            while self._written < target and self._thread is not None and self._thread.is_alive():
                self._idle.wait(1.0)  # the liveness check only guards against a thread killed under us

    def close(self) -> None:
        """Refuse new items, write everything queued, end the thread and its connection."""
        with self._mutex:
            self._closing = True
            self._work.notify()
            thread = self._thread
        if thread is not None and not self.on_thread():
            thread.join()

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                with self._mutex:
                    while not self._queue and not self._closing:
                        self._work.wait()
                    if not self._queue:
                        return  # closing, and everything is written
                    batch, self._queue = self._queue, []
                try:
                    if conn is None:
                        conn = self._connect()
                    outcomes = self._write(conn, batch)
                except BaseException as exc:  # noqa: BLE001 — a bug or a dead disk: say it to every waiter, go on
                    outcomes = [(None, exc)] * len(batch)
                with self._mutex:
                    self._written += len(batch)
                    self._idle.notify_all()
                for item, (value, error) in zip(batch, outcomes, strict=True):
                    if error is None:
                        item.fut.set_result(value)
                    else:
                        item.fut.set_exception(error)
                if self._on_idle is not None and conn is not None and not self._queue and not self._closing:
                    with contextlib.suppress(Exception):  # an optimisation: never stops the writer
                        self._on_idle(conn)
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            with self._mutex:
                self._idle.notify_all()

    def _write(self, conn: sqlite3.Connection, batch: list[_Item]) -> list[tuple[Any, BaseException | None]]:
        """Consecutive statements as one transaction each; a call alone, between them."""
        out: list[tuple[Any, BaseException | None]] = []
        run: list[_Item] = []
        for item in batch:
            if item.fn is None:
                run.append(item)
                continue
            if run:
                out += _commit(conn, run)
                run = []
            try:
                out.append((item.fn(conn), None))
            except Exception as exc:
                out.append((None, exc))
        if run:
            out += _commit(conn, run)
        return out


def _flush_at_exit(ref: weakref.ref[Writer]) -> None:
    writer = ref()
    if writer is not None:
        writer.flush()


def _commit(conn: sqlite3.Connection, items: list[_Item]) -> list[tuple[Any, BaseException | None]]:
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                conn.execute(item.sql, item.params or ())
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return [(None, None)] * len(items)
    except Exception as exc:
        if len(items) == 1:
            return [(None, exc)]
    # one bad statement must not keep the rest of its batch out: each again, on its own
    return [_alone(conn, item) for item in items]


def _alone(conn: sqlite3.Connection, item: _Item) -> tuple[Any, BaseException | None]:
    try:
        conn.execute(item.sql, item.params or ())  # autocommit: its own transaction
    except Exception as exc:
        return None, exc
    return None, None
