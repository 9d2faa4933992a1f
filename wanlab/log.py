"""`ExperimentLog`: every run, paid for or failed, in SQLite next to the notebook.

A row is written when the job is created (before anything is sent) and updated at every transition, so
a kernel that dies mid-wait leaves the task id behind for `lab.resume()`. WAL journal with
`synchronous=FULL`: a commit survives a crash of the process and of the machine. Several kernels may
share one file; a lease per row (`claimed_by`, `claimed_until`) keeps two of them from polling the
same task at once.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

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
    ("claimed_by", "TEXT", "string"),
    ("claimed_until", "REAL", "Float64"),
    ("updated", "REAL", "datetime"),
]
NAMES = [c for c, _, _ in COLUMNS]
TERMINAL = tuple(s.value for s in Status if s.terminal)
RESULT_TTL_S = 24 * 3600   # DashScope keeps task ids and result URLs 24 h


def default_home() -> Path:
    return Path(os.environ.get("WANLAB_HOME") or "wanlab-runs")


class ExperimentLog:
    def __init__(self, path: str | os.PathLike | None = None):
        home = default_home()
        self.path = Path(path) if path is not None else home / "runs.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        cols = ", ".join(f"{c} {t}" for c, t, _ in COLUMNS)
        with self._lock:
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS runs ({cols})")
            have = {r[1] for r in self._conn.execute("PRAGMA table_info(runs)")}
            for c, t, _ in COLUMNS:       # an older file gains new columns
                if c not in have:
                    self._conn.execute(f"ALTER TABLE runs ADD COLUMN {c} {t.replace(' PRIMARY KEY', '')}")
            self._conn.execute("CREATE INDEX IF NOT EXISTS runs_status ON runs(status)")
            self._conn.execute("CREATE INDEX IF NOT EXISTS runs_task ON runs(task_id)")

    def __repr__(self) -> str:
        return f"ExperimentLog({str(self.path)!r}, rows={len(self)})"

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- writing ---------------------------------------------------------------------------------
    def _write(self, run_id: str, values: dict[str, Any], insert: bool = False) -> None:
        values = {**values, "updated": time.time()}
        with self._lock:
            if insert:
                cols = ["run_id", *values]
                self._conn.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                   [run_id, *values.values()])
            else:
                sets = ", ".join(f"{k} = ?" for k in values)
                self._conn.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*values.values(), run_id])

    def insert(self, row: dict[str, Any]) -> None:
        """One durable row (a commit per call)."""
        row = dict(row)
        self._write(row.pop("run_id"), row, insert=True)

    def update(self, run_id: str, **values: Any) -> None:
        unknown = set(values) - set(NAMES)
        if unknown:
            raise KeyError(f"not log columns: {', '.join(sorted(unknown))}")
        self._write(run_id, values)

    def record_created(self, job: Job, params: dict[str, Any], inputs: dict[str, Any], **extra: Any) -> None:
        """The row for a new job, before anything is sent; the job then updates it via `observe`.
        `params` and `inputs` come from `requests.to_record` and are enough to rebuild the request."""
        req = job.request
        row = {"run_id": job.id, "created": job.timings["created"], "host": job.host, "region": job.region,
               "protocol": getattr(job, "protocol", ""), "model": job.model.id, "mode": req.mode,
               "prompt": req.prompt, "negative_prompt": req.negative_prompt, "resolution": req.resolution,
               "duration": req.duration, "seed": req.seed, "params": json.dumps(params, default=str),
               "inputs": json.dumps(inputs, default=str), "fingerprint": req.fingerprint(),
               "status": str(job.status), "polls": 0, "retries": 0, "claimed_by": self.owner,
               "claimed_until": time.time() + LEASE_S}
        row.update(extra)
        self.insert(row)

    def observe(self, job: Job, ev: JobEvent) -> None:
        """Job observer: write what changed. Runs on the Lab's loop thread."""
        values: dict[str, Any] = {}
        if ev.kind == "submitted":
            values.update(task_id=job.task_id, request_id=job.request_id, submitted=job.timings["submitted"],
                          status=str(job.status))
        elif ev.kind == "status":
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
            values.update(latency_s=job.latency, queue_s=job.queue_time, run_s=job.run_time)
            if job.status.terminal:
                values["claimed_until"] = 0.0
            if getattr(job, "cost", None) is not None:
                values["cost"] = job.cost
        elif ev.kind == "downloaded":
            info = job.video_info
            values.update(path=str(job.video_path), sha256=job.sha256, bytes=job.bytes, downloaded=job.timings[
                "downloaded"], width=info.get("width"), height=info.get("height"), fps=info.get("fps"),
                frames=info.get("frames"), video_seconds=info.get("duration"))
        elif ev.kind == "retry":
            with self._lock:
                self._conn.execute("UPDATE runs SET retries = COALESCE(retries, 0) + 1 WHERE run_id = ?", [job.id])
            return
        elif ev.kind == "detached":
            values["claimed_until"] = 0.0
        elif ev.kind == "heartbeat":
            values["claimed_until"] = time.time() + LEASE_S
        if values:
            self.update(job.id, **values)

    # -- leases (two kernels, one log) -----------------------------------------------------------
    def claim(self, run_id: str) -> bool:
        """Take the lease on a row unless another live process holds it."""
        now = time.time()
        with self._lock:
            cur = self._conn.execute(
                "UPDATE runs SET claimed_by = ?, claimed_until = ? WHERE run_id = ? AND "
                "(claimed_by IS NULL OR claimed_by = ? OR COALESCE(claimed_until, 0) < ?)",
                [self.owner, now + LEASE_S, run_id, self.owner, now])
            return cur.rowcount == 1

    # -- reading ---------------------------------------------------------------------------------
    def rows(self, where: str = "", params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(NAMES)} FROM runs" + (f" WHERE {where}" if where else "") + " ORDER BY created"
        with self._lock:
            return [dict(zip(NAMES, r)) for r in self._conn.execute(sql, list(params))]

    def get(self, run_id: str) -> dict[str, Any]:
        rows = self.rows("run_id = ?", [run_id])
        if not rows:
            raise KeyError(f"no run {run_id!r} in {self.path}")
        return rows[0]

    def unfinished(self) -> list[dict[str, Any]]:
        marks = ", ".join("?" * len(TERMINAL))
        return self.rows(f"status NOT IN ({marks})", TERMINAL)

    def known_task_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._conn.execute("SELECT task_id FROM runs WHERE task_id IS NOT NULL")}

    @property
    def df(self) -> "pd.DataFrame":
        return self.frame()

    def frame(self, where: str = "", params: Iterable[Any] = ()) -> "pd.DataFrame":
        """The log as a typed DataFrame: categorical resolution (ordered 480P < 720P < 1080P), nullable
        integers, tz-aware UTC datetimes."""
        import pandas as pd

        sql = f"SELECT {', '.join(NAMES)} FROM runs" + (f" WHERE {where}" if where else "") + " ORDER BY created"
        with self._lock:
            cur = self._conn.execute(sql, list(params))
            data = cur.fetchall()
        raw = pd.DataFrame.from_records(data, columns=NAMES)
        return _typed(raw)

    def filter(self, **equals: Any) -> "pd.DataFrame":
        """Rows where each column equals the value (a list means any of them): log.filter(status="FAILED")."""
        clauses, params = [], []
        for col, value in equals.items():
            if col not in NAMES:
                raise KeyError(f"{col!r} is not a log column; columns: {', '.join(NAMES)}")
            if isinstance(value, (list, tuple, set)):
                clauses.append(f"{col} IN ({', '.join('?' * len(value))})")
                params += list(value)
            else:
                clauses.append(f"{col} = ?")
                params.append(value)
        return self.frame(" AND ".join(clauses), params)

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
