"""The whole log as a typed DataFrame, fast: a typed Arrow snapshot (`runs.sqlite.df.arrow`, in memory
after the first load) plus the rows changed since, found by a change counter (`seq`) that every write
bumps inside its transaction — so it is exact across processes. A log closed in a process that works with
DataFrames leaves its snapshot current, so the next kernel's first `log.df` reads Arrow, not 100k rows of
Python objects from SQLite (bench/bench_log.py measures both)."""

from __future__ import annotations

import os
import sys
import uuid
from typing import TYPE_CHECKING

from .db import Db
from .schema import COLUMNS, SCHEMA_ID, SELECT, from_rows

if TYPE_CHECKING:
    import pandas as pd


class FrameCache:
    def __init__(self, db: Db):
        self.db = db
        self.path = db.path.with_name(db.path.name + ".df.arrow")
        self._mem: tuple[int, pd.DataFrame] | None = None  # (seq high-water mark, frame)
        self._disk_hw: int | None = None  # the high-water mark of the snapshot file as this process last saw it

    def keep_current(self, small: int = 20_000) -> None:
        """At close: bring the snapshot file up to date, when this process already has pandas (a notebook: a
        CLI or a script without pandas pays nothing) and the update is cheap — a snapshot or a frame to
        build on, or a log small enough to read whole. Never raises: a cache must not fail a close."""
        if "pandas" not in sys.modules:
            return
        try:
            if self._mem is None:
                self._mem = self._read()
                if self._mem is None and self.db.query("SELECT COUNT(*) FROM runs")[0][0] > small:
                    return
            self.frame(persist=True)
        except Exception:
            pass

    def frame(self, persist: bool = False) -> pd.DataFrame:
        import pandas as pd

        base = self._mem if self._mem is not None else self._read()
        with self.db.lock:
            self.db.c().execute("BEGIN")  # one read snapshot for the counts and the rows
            try:
                hw, count = self.db.c().execute("SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM runs").fetchone()
                if base is not None and base[0] > hw:
                    base = None  # the file was replaced: the snapshot is of another log
                since = " WHERE seq > ?" if base is not None else ""
                data = (
                    self.db.c()
                    .execute(f"{SELECT}{since} ORDER BY created", [base[0]] if base is not None else [])
                    .fetchall()
                )
            finally:
                self.db.c().execute("COMMIT")
        delta = from_rows(data)
        if base is None:
            out = delta
        elif not len(delta):
            out = base[1]
        else:
            old = base[1]
            old = old[~old["run_id"].isin(delta["run_id"])]
            out = pd.concat([old, delta], ignore_index=True)
            for name, _, kind in COLUMNS:  # concat of categoricals with different categories gives object
                if kind == "category" and out[name].dtype != "category":
                    out[name] = out[name].astype("category")
            out = out.sort_values("created", kind="stable", ignore_index=True)
        if len(out) != count:  # should not happen; never serve a wrong frame
            out, delta, base = from_rows(self.db.query(SELECT + " ORDER BY created")), None, None
            hw = None
        if hw is not None:
            self._mem = (hw, out)
            if base is None or len(delta) > max(1000, count // 50) or (persist and hw != self._disk_hw):
                self._write(hw, out)
        return out.copy(deep=False)

    def _read(self) -> tuple[int, pd.DataFrame] | None:
        try:
            import pyarrow.feather as feather

            table = feather.read_table(self.path, memory_map=False)
            meta = table.schema.metadata or {}
            if (
                meta.get(b"wanlab.log_id", b"").decode() != self.db.log_id
                or meta.get(b"wanlab.schema", b"").decode() != SCHEMA_ID
            ):
                return None
            hw = int(meta[b"wanlab.hw"])
            self._disk_hw = hw
            return hw, table.to_pandas()
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
            feather.write_feather(table.replace_schema_metadata(meta), tmp, compression="uncompressed")
            os.replace(tmp, self.path)
            self._disk_hw = hw
        except Exception:
            pass  # a cache is an optimisation: never fail a read over it
