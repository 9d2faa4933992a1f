"""The `runs` table: its columns, how a row becomes a typed pandas row, and keyword filters as SQL."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..providers.base import Status
from . import judgments

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

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
    # outcome figures of the downloaded video (wanlab.quality.measure; docs/QUALITY.md), None until measured
    ("flicker", "REAL", "Float64"),
    ("frozen", "REAL", "Float64"),
    ("motion", "REAL", "Float64"),
    ("sharpness", "REAL", "Float64"),
    ("exposure", "REAL", "Float64"),
    ("exposure_black", "REAL", "Float64"),
    ("exposure_white", "REAL", "Float64"),
    ("first_ssim", "REAL", "Float64"),
    ("last_ssim", "REAL", "Float64"),
    ("conforms", "INTEGER", "boolean"),
    ("conformance", "TEXT", "string"),
    ("clip_score", "REAL", "Float64"),  # prompt alignment, only with a local CLIP model (quality/_clip.py)
    ("quality_error", "TEXT", "string"),
    ("claimed_by", "TEXT", "string"),
    ("claimed_until", "REAL", "Float64"),
    ("updated", "REAL", "datetime"),
]
NAMES = [c for c, _, _ in COLUMNS]
RESOLUTIONS = ["480P", "720P", "1080P"]
TERMINAL = tuple(s.value for s in Status if s.terminal)
RESULT_TTL_S = 24 * 3600  # DashScope keeps task ids and result URLs 24 h

SELECT = f"SELECT {', '.join(NAMES)} FROM runs"
NOT_TERMINAL = f"status NOT IN ({', '.join('?' * len(TERMINAL))})"  # with TERMINAL as its parameters
NEXT_SEQ = "(SELECT COALESCE(MAX(seq), 0) + 1 FROM runs)"  # every write bumps the change counter, in its transaction
SCHEMA_ID = "1:" + ",".join(f"{c}/{k}" for c, _, k in COLUMNS)


def create_tables(conn: sqlite3.Connection) -> str:
    """Create (or bring up to date) the tables and indexes of a log; returns the log's id."""
    cols = ", ".join(f"{c} {t}" for c, t, _ in COLUMNS)
    conn.execute(f"CREATE TABLE IF NOT EXISTS runs ({cols})")
    have = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    for c, t, _ in COLUMNS:  # an older file gains new columns
        if c not in have:
            conn.execute(f"ALTER TABLE runs ADD COLUMN {c} {t.replace(' PRIMARY KEY', '')}")
    if "seq" not in have:  # the change counter behind the DataFrame cache (not a df column)
        conn.execute("ALTER TABLE runs ADD COLUMN seq INTEGER")
    conn.execute("UPDATE runs SET seq = rowid WHERE seq IS NULL")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_status ON runs(status)")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_task ON runs(task_id)")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_created ON runs(created)")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_seq ON runs(seq)")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_fingerprint ON runs(fingerprint)")
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('log_id', ?)", [uuid.uuid4().hex])
    judgments.create_table(conn)
    conn.execute("CREATE TABLE IF NOT EXISTS locks (scope TEXT PRIMARY KEY, owner TEXT, until REAL)")
    return conn.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]


def where(since: Any = None, until: Any = None, **equals: Any) -> tuple[str, list[Any]]:
    """Keyword filters as an SQL condition and its parameters ("" when there are none): each column equals
    its value (a list means any of them, None means NULL), created in [since, until) (datetimes, pandas
    Timestamps or epoch seconds)."""
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
    return " AND ".join(clauses), params


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    import pandas as pd

    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.timestamp()


def from_rows(data: list[tuple]) -> pd.DataFrame:
    """Rows fetched as `SELECT` (NAMES, in order) as a typed DataFrame (see `typed`)."""
    import pandas as pd

    if data:
        try:
            import pyarrow as pa

            return _arrow_typed(pa.array(data, type=_struct(pa.large_string())), text_as_bytes=False)
        except _ODD_CELL:
            pass
    return typed(pd.DataFrame.from_records(data, columns=NAMES))


_TEXT = frozenset(i for i, (_, sql, _) in enumerate(COLUMNS) if sql.startswith("TEXT"))
# Text as bytes: Python's sqlite3 then skips a UTF-8 decode per cell; Arrow validates a whole column at once
SELECT_BYTES = f"SELECT {', '.join(f'CAST({c} AS BLOB)' if i in _TEXT else c for i, c in enumerate(NAMES))} FROM runs"
CHUNK_ROWS = 500  # rows fetched per Arrow conversion: the Python objects of one chunk alive at a time, not the log's
# what converting a column of unexpected cells raises (pyarrow's errors subclass these), or pyarrow missing
_ODD_CELL = (ImportError, ValueError, TypeError, OverflowError, NotImplementedError)


def read(conn: sqlite3.Connection, tail: str = "", params: Iterable[Any] = ()) -> pd.DataFrame:
    """`SELECT … {tail}` (a WHERE and an ORDER BY) as a typed DataFrame, in the caller's transaction and lock. Each
    chunk of rows becomes Arrow as it arrives, so a 100k-row read never holds 6.7M Python objects at once; a log
    with a cell Arrow cannot take (SQLite lets any column hold anything) is read again the general way."""
    import pandas as pd

    params = list(params)
    try:
        import pyarrow as pa

        struct = _struct(pa.large_binary())
        cur = conn.execute(SELECT_BYTES + tail, params)
        try:
            chunks = []
            while rows := cur.fetchmany(CHUNK_ROWS):
                chunks.append(pa.array(rows, type=struct))
        finally:
            cur.close()
        if not chunks:
            return typed(pd.DataFrame.from_records([], columns=NAMES))
        return _arrow_typed(pa.concat_arrays(chunks), text_as_bytes=True)
    except _ODD_CELL:
        return from_rows(conn.execute(SELECT + tail, params).fetchall())


def _struct(text: pa.DataType) -> pa.StructType:
    """A row of `runs` as Arrow sees it on the way in: numbers as stored, text as `text`."""
    import pyarrow as pa

    arrow = {"datetime": pa.float64(), "Float64": pa.float64(), "Int64": pa.int64(), "boolean": pa.int64()}
    return pa.struct([pa.field(name, arrow.get(kind, text)) for name, _, kind in COLUMNS])


def _arrow_typed(rows: pa.StructArray, text_as_bytes: bool) -> pd.DataFrame:
    """What `typed(DataFrame.from_records(rows))` gives, with no Python-level step per cell: each column goes to
    its pandas dtype through the dtype's own `__from_arrow__`, or through the very call `typed` makes where the
    result depends on the input (datetimes from float seconds, categoricals)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = rows.flatten()
    inferred = pd.Series(["x"]).dtype  # what from_records makes of a text column: object, or pandas 3's str
    out: dict[str, Any] = {}
    for (name, _, kind), col in zip(COLUMNS, columns, strict=True):
        if kind == "datetime":
            out[name] = pd.to_datetime(col.to_numpy(zero_copy_only=False), unit="s", utc=True)
        elif kind == "Float64":
            out[name] = pd.Float64Dtype().__from_arrow__(col)
        elif kind == "Int64":
            out[name] = pd.Int64Dtype().__from_arrow__(col)
        elif kind == "boolean":
            low, high = pc.min_max(col).values()
            if (low.as_py() or 0) < 0 or (high.as_py() or 0) > 1:
                raise ValueError(f"{name}: not 0/1")  # as `typed` refuses them
            out[name] = pd.BooleanDtype().__from_arrow__(col.cast(pa.bool_()))
        else:
            if text_as_bytes:
                col = col.cast(pa.large_string())  # validates UTF-8, as sqlite3's decode would
            if kind == "string":
                out[name] = pd.StringDtype().__from_arrow__(col)
                continue
            if col.null_count == len(col) or not isinstance(inferred, pd.StringDtype):
                raw: Any = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)  # None for a null
            else:
                raw = inferred.__from_arrow__(col)
            if kind == "resolution":
                out[name] = _resolution(raw)
            else:
                out[name] = pd.Series(raw, copy=False).astype("category").array
    return pd.DataFrame(out, copy=False)


def _resolution(values: Any) -> pd.Categorical:
    """Ordered 480P < 720P < 1080P; any other value missing (cleared first: pandas deprecates dropping them)."""
    import pandas as pd

    values = pd.Series(values, copy=False)
    return pd.Categorical(values.where(values.isin(RESOLUTIONS)), categories=RESOLUTIONS, ordered=True)


def seconds_unit(values: Any) -> Any:
    """Datetimes (a DatetimeArray) in the unit `typed` would give them from float seconds. pandas 3 picks it by
    the values (µs when every one is a whole second, else ns), so a merged column is brought back to it."""
    import numpy as np
    import pandas as pd

    ns = values.as_unit("ns")
    fractional = bool((ns.asi8[~ns.isna()] % 1_000_000_000).any())
    unit = pd.to_datetime(np.array([0.5 if fractional else 0.0]), unit="s", utc=True).unit  # ask pandas
    return ns.as_unit(unit)


def typed(raw: pd.DataFrame) -> pd.DataFrame:
    """Categorical resolution (ordered 480P < 720P < 1080P), nullable integers, tz-aware UTC datetimes."""
    import pandas as pd

    out = {}
    for name, _, kind in COLUMNS:
        col = raw[name]
        if kind == "datetime":
            out[name] = pd.to_datetime(col.astype("float64"), unit="s", utc=True)
        elif kind == "resolution":
            out[name] = _resolution(col)
        elif kind == "category":
            out[name] = col.astype("category")
        elif kind == "Int64":
            out[name] = pd.array(col, dtype="Int64") if len(col) else pd.array([], dtype="Int64")
        elif kind == "boolean":
            out[name] = pd.array(col.astype("object").where(col.notna(), None), dtype="boolean")
        elif kind == "Float64":
            out[name] = col.astype("Float64")
        else:
            out[name] = col.astype("string")
    return pd.DataFrame(out)
