"""The `judgments` table: one row per blind side-by-side judgment of two runs (who, when, which run was
shown left, the choice). Judgments are of runs; rankings by prompt, seed or model are drawn from them."""

from __future__ import annotations

import sqlite3
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from .db import Db

CHOICES = ("a", "b", "tie", "skip")
COLUMNS = ("judgment_id", "time", "judge", "a", "b", "choice", "left", "by")


def create_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS judgments (judgment_id TEXT PRIMARY KEY, time REAL, judge TEXT, "
        "a TEXT, b TEXT, choice TEXT, left TEXT, by TEXT)"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS judgments_time ON judgments(time)")


def add(db: Db, a: str, b: str, choice: str, *, judge: str, left: str, by: str | None = None) -> str:
    """One durable judgment; `choice` is relative to (a, b); `left` is the run shown on the left."""
    if choice not in CHOICES:
        raise ValueError(f"choice={choice!r}: use one of {', '.join(CHOICES)}")
    if not (isinstance(a, str) and isinstance(b, str) and a and b and a != b):
        raise ValueError(f"a={a!r}, b={b!r}: a judgment compares two different run ids")
    if left not in (a, b):
        raise ValueError(f"left={left!r}: the run shown on the left is a or b")
    if not isinstance(judge, str) or not judge.strip():
        raise ValueError(f"judge={judge!r}: name who judged (a non-empty string)")
    jid = uuid.uuid4().hex[:12]
    db.write(
        "INSERT INTO judgments (judgment_id, time, judge, a, b, choice, left, by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [jid, time.time(), judge.strip(), a, b, choice, left, by],
    )
    return jid


def frame(db: Db, **equals: Any) -> pd.DataFrame:
    """Judgments oldest first, where each column equals the value (a list means any of them)."""
    import pandas as pd

    clauses, params = [], []
    for col, value in equals.items():
        if col not in COLUMNS:
            raise KeyError(f"{col!r} is not a judgments column; columns: {', '.join(COLUMNS)}")
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        clauses.append(f"{col} IN ({', '.join('?' * len(values))})")
        params += values
    sql = f"SELECT {', '.join(COLUMNS)} FROM judgments"
    rows = db.query(sql + (f" WHERE {' AND '.join(clauses)}" if clauses else "") + " ORDER BY time", params)
    df = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    out = {c: df[c].astype("string") for c in COLUMNS if c != "time"}
    out["time"] = pd.to_datetime(df["time"].astype("float64"), unit="s", utc=True)
    return pd.DataFrame({c: out[c] for c in COLUMNS})
