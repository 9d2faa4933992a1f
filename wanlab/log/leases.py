"""Leases: which process polls which row. A lease names its owner's host, boot, pid and process start
time, so on the same machine a dead owner's rows are taken over at once; from another machine, when the
lease runs out. Also the submit lock: one submit in flight per key, across every process on the log."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path

from .db import Db
from .schema import NEXT_SEQ, NOT_TERMINAL, TERMINAL

LEASE_S = 60.0


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
_LIVE_OWNERS: set[str] = set()  # tokens of this process's open logs


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


def lease_length(lease_s: float | None) -> float:
    """`lease_s`, else `$WANLAB_LEASE_S`, else LEASE_S; refused unless > 0."""
    if lease_s is None:
        lease_s = float(os.environ.get("WANLAB_LEASE_S") or LEASE_S)
    if not lease_s > 0:
        raise ValueError(f"lease_s={lease_s!r} must be > 0 seconds")
    return float(lease_s)


class Leases:
    """This process's leases on one log's rows. While a job of this process runs, a heartbeat thread
    renews its row's lease every `lease_s / 4`; a process that dies stops renewing, and after `lease_s`
    another process may take the row. The owner counts as alive (`owner_alive`) until `stop()` or until
    this object is collected (the heartbeat keeps it while it runs)."""

    def __init__(self, db: Db, *, lease_s: float, clock: Callable[[], float]):
        self.db = db
        self.lease_s = lease_s
        self.clock = clock  # injected in tests: leases are about time
        self.owner = _new_owner()
        self.held: set[str] = set()  # rows whose jobs run in this process: the heartbeat renews them
        self._beat: threading.Thread | None = None
        self._wake = threading.Event()
        _LIVE_OWNERS.add(self.owner)
        self._finalizer = weakref.finalize(self, _LIVE_OWNERS.discard, self.owner)

    def until(self) -> float:
        """When a lease taken or renewed now runs out."""
        return self.clock() + self.lease_s

    def holder(self, run_id: str) -> str | None:
        found = self.db.query("SELECT claimed_by, claimed_until FROM runs WHERE run_id = ?", [run_id])
        if not found:
            return None
        by, until = found[0]
        return None if self._free(by, until) else by

    def _free(self, by: str | None, until: float | None) -> bool:
        if by is None or (until or 0.0) < self.clock():
            return True
        if by == self.owner:
            return False
        return owner_alive(by) is False

    def claim(self, run_id: str) -> bool:
        with self.db.lock:
            if self.db.closed:
                return False
            found = (
                self.db.c().execute("SELECT claimed_by, claimed_until FROM runs WHERE run_id = ?", [run_id]).fetchone()
            )
            if found is None or not self._free(*found):
                return False
            cur = self.db.c().execute(
                f"UPDATE runs SET claimed_by = ?, claimed_until = ?, seq = {NEXT_SEQ} WHERE run_id = ? AND "
                "claimed_by IS ? AND claimed_until IS ?",
                [self.owner, self.until(), run_id, *found],
            )
            return cur.rowcount == 1

    def hold(self, run_id: str) -> None:
        with self.db.lock:
            self.held.add(run_id)
            alive = self._beat is not None and self._beat.is_alive()
            if not alive and not self.db.closed:
                self._beat = threading.Thread(target=self._heartbeat, name="wanlab-log-lease", daemon=True)
                self._beat.start()

    def release(self, run_id: str) -> None:
        with self.db.lock:
            self.held.discard(run_id)

    def renew(self) -> list[str]:
        with self.db.lock:
            held = sorted(self.held)
            if not held or self.db.closed:
                return []
            lost = []
            for i in range(0, len(held), 500):
                chunk = held[i : i + 500]
                marks = ", ".join("?" * len(chunk))
                self.db.c().execute(
                    f"UPDATE runs SET claimed_until = ?, seq = {NEXT_SEQ} WHERE run_id IN ({marks}) AND claimed_by = ?",
                    [self.until(), *chunk, self.owner],
                )
                mine = {
                    r[0]
                    for r in self.db.c().execute(
                        f"SELECT run_id FROM runs WHERE run_id IN ({marks}) AND claimed_by = ?", [*chunk, self.owner]
                    )
                }
                lost += [r for r in chunk if r not in mine]
            self.held.difference_update(lost)
            return lost

    def _heartbeat(self) -> None:
        """Renew held leases every lease_s/4; ends when nothing is held (hold() starts it again)."""
        while not self.db.closed:
            self._wake.wait(self.lease_s / 4)
            if self.db.closed:
                return
            try:
                lost = self.renew()
            except sqlite3.Error:
                continue  # busy or closing: try again next beat, well within the lease
            if lost:
                import logging

                logging.getLogger("wanlab").warning("another process took the lease on run(s) %s", ", ".join(lost))
            with self.db.lock:
                if not self.held:
                    self._beat = None
                    return

    def stop(self) -> None:
        """The log is closing: the heartbeat ends and this owner no longer counts as alive."""
        self._wake.set()
        _LIVE_OWNERS.discard(self.owner)

    def let_go(self, conn: sqlite3.Connection) -> None:
        """Give up every lease held here (run under the log's lock, as it closes): another process may take
        those rows at once."""
        try:
            conn.execute(
                f"UPDATE runs SET claimed_until = 0 WHERE claimed_by = ? AND {NOT_TERMINAL}", [self.owner, *TERMINAL]
            )
            conn.execute("DELETE FROM locks WHERE owner = ? OR owner LIKE ?", [self.owner, self.owner + "#%"])
        finally:
            self.held.clear()

    # -- one submit in flight per key, across every process on this log ---------------------------
    def try_lock(self, scope: str, token: str, hold_s: float) -> bool:
        owner = token.split("#", 1)[0]
        with self.db.immediate(open_only=True) as conn:
            found = conn.execute("SELECT owner, until FROM locks WHERE scope = ?", [scope]).fetchone()
            free = (
                found is None
                or found[0] == token
                or (found[1] or 0.0) < self.clock()
                or (found[0].split("#", 1)[0] != owner and owner_alive(found[0].split("#", 1)[0]) is False)
                or (found[0].split("#", 1)[0] == owner and self.db.closed)
            )
            if free:
                conn.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?)", [scope, token, self.clock() + hold_s])
        return free

    def unlock(self, scope: str, token: str) -> None:
        with self.db.lock:
            if not self.db.closed:
                self.db.c().execute("DELETE FROM locks WHERE scope = ? AND owner = ?", [scope, token])

    def submitting(self, model: str, since: float, exclude: str) -> list[tuple[float, str]]:
        return [
            (r[0] or 0.0, r[1])
            for r in self.db.query(
                "SELECT started, run_id FROM runs WHERE status = 'SUBMITTING' AND task_id IS NULL AND model = ? "
                "AND COALESCE(started, created) >= ? AND run_id != ?",
                [model, since, exclude],
            )
        ]
