"""The whole log as a typed DataFrame, fast: a typed Arrow snapshot (`runs.sqlite.df.arrow`, in memory
after the first load) plus the rows changed since, found by a change counter (`seq`) that every write
bumps inside its transaction — so it is exact across processes.

The snapshot file is kept close to the table, so a new kernel's first `log.df` reads Arrow, not 100k rows of
Python objects from SQLite (bench/bench_log.py measures both): `refresh` (from the log's writer thread)
rewrites it once more than `STALE_ROWS` rows changed since it, and a close leaves it current
(`keep_current`). A process that crashes leaves it `STALE_ROWS` rows behind, plus at most a second's writes.

A whole-log read (no snapshot yet) goes through a connection of its own, in one read transaction: it takes
seconds at 100k rows (SQLite alone needs 0.3–0.4 s to step through every value), and holds no lock that the
Lab's threads wait on meanwhile."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from .db import Db, connect
from .schema import COLUMNS, SCHEMA_ID, read, seconds_unit

if TYPE_CHECKING:
    import pandas as pd

# How far `refresh` lets the file fall behind: the rows a crash can leave the next kernel to read from SQLite
# and merge. bench/bench_log.py, 100k rows: the snapshot plus 2000 rows loads in ~0.3 s (target 0.5 s; 5000 rows
# took ~0.6 s), and one rewrite (0.3-0.4 s CPU) per 2000 changed rows — rows, not writes: a row written ten times
# counts once — is ~0.2 ms per changed row, under the durable write each change costs anyway.
STALE_ROWS = 2000
# A log with no snapshot and no frame to build on is read whole at close only up to this size (bigger, the
# close would take seconds; the writer thread's refresh builds it in the background instead). Past it, a
# process without pandas still builds the missing snapshot in the background — a log an older wanlab wrote, or
# one only scripts and the command line ever wrote — so the next kernel's first `log.df` reads Arrow.
COLD_ROWS = 20_000
# How often the writer thread looks whether a refresh is due, at most: the look counts rows (it scales with the
# log), and a busy Lab's writer empties its queue hundreds of times a second (bench_client: ~11 % of its CPU).
CHECK_EVERY_S = 1.0
_CHANGED = "SELECT (SELECT COALESCE(MAX(seq), 0) FROM runs), (SELECT COUNT(*) FROM runs WHERE seq > ?)"
_DATETIMES = [name for name, _, kind in COLUMNS if kind == "datetime"]


class FrameCache:
    def __init__(self, db: Db):
        self.db = db
        self.path = db.path.with_name(db.path.name + ".df.arrow")
        # frame(), refresh() and keep_current() come from the user's thread, the writer thread and close():
        # one at a time, so the frame in memory and the file move together. Taken before db.lock, never inside it.
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()  # one background refresh at a time (see refresh_soon)
        self._mem: tuple[int, pd.DataFrame] | None = None  # (seq high-water mark, frame)
        # the snapshot file as this process last saw it: ((inode, size, mtime), its high-water mark or None when
        # it is not a usable snapshot of this log), so a refresh that finds nothing to do reads no file
        self._disk: tuple[tuple[int, int, int], int | None] | None = None
        self._next_check = 0.0  # monotonic time of refresh_soon's next look

    def refresh(self, max_stale_rows: int | None = None) -> bool:
        """Rewrite the snapshot file if more than `max_stale_rows` rows changed since it (or there is none),
        when this process already has pandas and pyarrow loaded. Builds on the frame in memory, else on the
        file, and reads only the changed rows from SQLite; a log with no snapshot yet is read whole, once, when
        it has at most `COLD_ROWS` rows.
        When nothing is due it costs a stat and one indexed count. For the log's writer thread: call it
        between batches, never holding `db.lock`. Returns whether it wrote; never raises."""
        stale = STALE_ROWS if max_stale_rows is None else max_stale_rows
        return self._bring_up_to_date(stale, cold_rows=COLD_ROWS)

    def refresh_soon(self, conn: sqlite3.Connection) -> None:
        """On the log's writer thread, when its queue empties: when a `refresh` is due, start one on a thread of
        its own. Not on the writer: a refresh takes the log's lock, which a thread waiting for the writer may
        hold. The check reads through the writer's connection (no lock): a stat and two index lookups, at most once
        every `CHECK_EVERY_S`."""
        now = time.monotonic()
        if self._refreshing.locked() or now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY_S
        loaded = "pandas" in sys.modules and "pyarrow" in sys.modules
        if not loaded and os.path.exists(self.path):
            return  # reading its footer needs pyarrow: the next kernel loads it plus the rows changed since
        disk_hw = self._disk_hw()
        hw, stale = conn.execute(_CHANGED, [disk_hw or 0]).fetchone()
        if disk_hw is not None and disk_hw <= hw and stale <= STALE_ROWS:
            return
        if disk_hw is None and (hw == 0 or (not loaded and stale <= COLD_ROWS)):
            return  # an empty log; or a small one without pandas here: its first `log.df` reads it whole quickly
        name = "wanlab-log-snapshot"
        threading.Thread(target=self._refresh_alone, args=(not loaded,), name=name, daemon=True).start()

    def _refresh_alone(self, load: bool = False) -> None:
        if self._refreshing.acquire(blocking=False):
            try:
                if load:  # a big log with no snapshot, in a process without pandas (see COLD_ROWS)
                    import pandas  # noqa: F401
                    import pyarrow  # noqa: F401
                self._bring_up_to_date(STALE_ROWS, cold_rows=None)
            except Exception:
                pass  # a cache: never fail a thread over it
            finally:
                self._refreshing.release()

    def keep_current(self, small: int = COLD_ROWS) -> None:
        """At close: leave the snapshot file current, when this process already has pandas and pyarrow (a
        notebook: a CLI or a script without pandas pays nothing) and that is cheap — a snapshot or a frame to
        build on, or a log of at most `small` rows to read whole. Never raises: a cache must not fail a close."""
        self._bring_up_to_date(0, cold_rows=small)

    def _bring_up_to_date(self, max_stale_rows: int, cold_rows: int | None) -> bool:
        if "pandas" not in sys.modules or "pyarrow" not in sys.modules:
            return False
        try:
            with self._lock:
                disk_hw = self._disk_hw()
                hw, stale = self._changed_since(disk_hw or 0)
                if disk_hw is not None and disk_hw > hw:  # a snapshot of this log's future (a copy put back)
                    disk_hw = None
                    hw, stale = self._changed_since(0)
                if disk_hw is None:
                    if stale == 0 or (self._mem is None and cold_rows is not None and stale > cold_rows):
                        return False  # an empty log; or no base to build on and too big to read whole now
                elif stale <= max_stale_rows:
                    return False
                kept = self._mem is not None
                self._current(persist=True)
                if not kept:  # a process that never asked for a frame does not keep one in memory
                    self._mem = None
                return True
        except Exception:
            return False

    def _changed_since(self, hw: int) -> tuple[int, int]:
        """(the table's high-water mark, rows changed after `hw`): two index lookups, no scan."""
        row = self.db.query(_CHANGED, [hw])[0]
        return row[0], row[1]

    def frame(self, persist: bool = False) -> pd.DataFrame:
        with self._lock:
            out = self._current(persist)
        return out.copy(deep=False)

    def _current(self, persist: bool) -> pd.DataFrame:
        """The frame as of now: the base (memory or file) and the rows changed since, merged. Under self._lock."""
        base = self._mem if self._mem is not None else self._read()
        if base is not None:
            with self.db.lock:
                hw, count, delta = _counted(self.db.c(), base[0])
            if hw < base[0]:
                base = None  # the file was replaced: the snapshot is of another log
        if base is None:
            hw, count, delta = self._whole()
            out = delta
        elif not len(delta):
            out = base[1]
        else:
            out = _patched(base[1], delta)
            if out is None:
                out = _merged(base[1], delta)
        if len(out) != count:  # should not happen; never serve a wrong frame
            hw, count, out = self._whole()
            self._mem = None
            return out
        self._mem = (hw, out)
        disk_hw = self._disk[1] if self._disk is not None else None
        if count and (base is None or len(delta) > max(1000, count // 50) or (persist and hw != disk_hw)):
            self._write(hw, out)  # (an empty frame is not worth a file, and Arrow forgets its fixed categories)
        return out

    def _whole(self) -> tuple[int, int, pd.DataFrame]:
        """(high-water mark, rows, frame) of the whole log, through a connection of its own: after this
        process's queued writes, in one read transaction, and without `db.lock` (see the module's note)."""
        self.db.flush()
        conn = connect(self.db.path)
        try:
            return _counted(conn, None)
        finally:
            conn.close()

    def _disk_hw(self) -> int | None:
        """The snapshot file's high-water mark from its footer (not its rows), None if it is not a usable
        snapshot of this log; cached by the file's identity, which every rewrite changes."""
        try:
            st = os.stat(self.path)
        except OSError:
            self._disk = None
            return None
        if self._disk is None or self._disk[0] != _ident(st):
            hw = None
            try:
                import pyarrow.ipc as ipc

                with open(self.path, "rb") as fh:  # the identity and the footer of one and the same file
                    ident = _ident(os.fstat(fh.fileno()))
                    hw = self._valid_hw(ipc.open_file(fh).schema.metadata)
            except Exception:
                ident = _ident(st)
            self._disk = (ident, hw)
        return self._disk[1]

    def _valid_hw(self, meta: dict[bytes, bytes] | None) -> int | None:
        meta = meta or {}
        if (
            meta.get(b"wanlab.log_id", b"").decode() != self.db.log_id
            or meta.get(b"wanlab.schema", b"").decode() != SCHEMA_ID
        ):
            return None
        return int(meta[b"wanlab.hw"])

    def _read(self) -> tuple[int, pd.DataFrame] | None:
        try:
            import pyarrow.feather as feather

            with open(self.path, "rb") as fh:
                ident = _ident(os.fstat(fh.fileno()))
                table = feather.read_table(fh, memory_map=False)
            hw = self._valid_hw(table.schema.metadata)
            self._disk = (ident, hw)
            return None if hw is None or not table.num_rows else (hw, table.to_pandas())
        except Exception:  # absent, partial, pyarrow missing: load from SQLite
            return None

    def _write(self, hw: int, frame: pd.DataFrame) -> None:
        try:
            import pyarrow as pa
            import pyarrow.feather as feather

            table = pa.Table.from_pandas(frame, preserve_index=False)
            meta = dict(table.schema.metadata or {})
            meta.update(
                {
                    b"wanlab.hw": str(hw).encode(),
                    b"wanlab.log_id": self.db.log_id.encode(),
                    b"wanlab.schema": SCHEMA_ID.encode(),
                }
            )
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.tmp")
            # one chunk per column: a later patch picks rows out of it without joining chunks first
            feather.write_feather(
                table.replace_schema_metadata(meta), tmp, compression="uncompressed", chunksize=max(len(table), 1)
            )
            ident = _ident(os.stat(tmp))  # a rename keeps inode, size and mtime
            os.replace(tmp, self.path)
            self._disk = (ident, hw)
        except Exception:
            pass  # a cache is an optimisation: never fail a read over it


def _counted(conn: sqlite3.Connection, after: int | None) -> tuple[int, int, pd.DataFrame]:
    """(high-water mark, rows, frame) in one read snapshot: the rows changed after `after`, or all rows."""
    conn.execute("BEGIN")
    try:
        hw, count = conn.execute("SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM runs").fetchone()
        if after is None or hw < after:
            rows = read(conn, " ORDER BY created") if after is None else read(conn, " WHERE 0")
        else:  # `+created`: find the few changed rows by the seq index and sort them, not scan by created
            rows = read(conn, " WHERE seq > ? ORDER BY +created", [after])
    finally:
        conn.execute("COMMIT")
    return hw, count, rows


def _merged(old: pd.DataFrame, delta: pd.DataFrame) -> pd.DataFrame:
    """`old` without the rows `delta` replaces, plus `delta`, sorted by created: the general merge."""
    import pandas as pd

    old = old[~old["run_id"].isin(delta["run_id"])]
    # datetimes in one unit first: a concat of [ns] and [us] gives object
    old, delta = (f.assign(**{c: f[c].dt.as_unit("ns") for c in _DATETIMES}) for f in (old, delta))
    out = pd.concat([old, delta], ignore_index=True)
    for name, _, kind in COLUMNS:  # concat of categoricals with different categories gives object
        if kind == "category" and out[name].dtype != "category":
            out[name] = out[name].astype("category")
    out = out.sort_values("created", kind="stable", ignore_index=True)
    return out.assign(**{c: seconds_unit(out[c].array) for c in _DATETIMES})


def _patched(old: pd.DataFrame, delta: pd.DataFrame) -> pd.DataFrame | None:
    """What `_merged` gives, without moving every row: updated rows are overwritten where they stand and new
    rows appended — when that is the order by created (each updated row kept its created time, no new row was
    created before old's last). Only columns a changed value touches are rebuilt. None: `_merged` must do it."""
    import numpy as np
    import pandas as pd

    # where each delta row stands in old (-1: new): a scan of old's ids against the few changed ones, rather
    # than a hash of all of old's ids
    hit = np.flatnonzero(old["run_id"].isin(delta["run_id"]).to_numpy())
    found = pd.Index(old["run_id"].array[hit]).get_indexer(delta["run_id"])
    at_all = np.full(len(found), -1)
    at_all[found >= 0] = hit[found[found >= 0]]
    upd = at_all >= 0
    at, new = at_all[upd], ~upd
    created, created_new = old["created"].array, delta["created"].array
    if not (created[at] == created_new[upd]).all():  # a NaT compares unequal: the general merge
        return None
    if new.any() and (created_new[new].isna().any() or (len(old) and not created_new[new].min() >= created[-1])):
        return None
    out = {}
    for name, _, kind in COLUMNS:
        col, d = old[name].array, delta[name].array
        if kind in ("category", "resolution"):
            out[name] = _categorical(col, d, at, upd, new, drop_unused=kind == "category")
            continue
        if kind == "datetime":  # patched in ns, then in the unit `typed` gives the values
            col, d = col.as_unit("ns"), d.as_unit("ns")
        if upd.any():
            was, now = col[at], d[upd]
            if kind != "string" or not _same_text(was, now):  # rebuilding text is the one costly put
                col = col.copy()
                col[at] = now
        if new.any():
            col = pd.concat([pd.Series(col), pd.Series(d[new])], ignore_index=True).array
        out[name] = _few_chunks(col) if kind == "string" else seconds_unit(col) if kind == "datetime" else col
    return pd.DataFrame(out, copy=False)


def _same_text(was: Any, now: Any) -> bool:
    import numpy as np

    equal = np.asarray((was == now).fillna(False), dtype=bool)
    return bool(np.all(equal | (was.isna() & now.isna())))


def _few_chunks(col: Any, most: int = 16) -> Any:
    """Appends add Arrow chunks; many of them slow every later operation on the column: join them now and then."""
    import pyarrow as pa

    if getattr(col.dtype, "storage", None) != "pyarrow":
        return col  # numpy-backed (pandas 2's default strings): a concat copies, it leaves no chunks
    arrow = pa.array(col)  # the array's own Arrow data, no copy
    if isinstance(arrow, pa.ChunkedArray) and arrow.num_chunks > most:
        return col.dtype.__from_arrow__(arrow.combine_chunks())
    return col


def _categorical(col: Any, d: Any, at: Any, upd: Any, new: Any, *, drop_unused: bool) -> Any:
    """A categorical column patched in codes. Its categories stay what `typed` would give the patched values:
    the values present, sorted (`drop_unused`), or the resolution's fixed list."""
    import numpy as np
    import pandas as pd

    cats = col.categories
    if not d.categories.isin(cats).all():  # a value old has not seen: categories as `typed` sorts them
        both = pd.array([*cats, *d.categories], dtype=d.categories.dtype)
        cats = pd.Series(both).astype("category").cat.categories
    codes, put = _recoded(col, cats), _recoded(d, cats)
    codes[at] = put[upd]
    codes = np.concatenate([codes, put[new]])
    if drop_unused:
        used = np.bincount(codes[codes >= 0], minlength=len(cats)) > 0
        if not used.all():
            keep = cats[used]
            codes = np.where(codes >= 0, np.cumsum(used)[np.maximum(codes, 0)] - 1, -1)
            cats = keep if len(keep) else pd.Index([], dtype=object)  # as `typed` types a column of nothing
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(cats, ordered=col.ordered))


def _recoded(cat: Any, cats: Any) -> Any:
    """The codes of Categorical `cat` in `cats` (which holds all of its categories)."""
    import numpy as np

    if not len(cat.categories):
        return np.full(len(cat), -1, dtype=np.int64)
    codes = cats.get_indexer(cat.categories)[cat.codes]
    codes[cat.codes < 0] = -1
    return codes


def _ident(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns
