"""`wanlab runs` (the log, filtered, as a table, CSV, JSON or Parquet), `wanlab show RUN_ID` (every field of
one run) and `wanlab export csv|parquet|mlflow` (the log's own exporters). They read the log only: no Lab,
no simulator. The table and `show` need nothing beyond the base install; CSV, JSON and Parquet are the log's
typed DataFrame, which needs pandas (the `jupyter` extra)."""

from __future__ import annotations

import argparse
import json
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..log.schema import COLUMNS, NAMES
from ..providers.base import Status
from ._common import BadInput, add_home_flag, aligned, emit, open_log, say

if TYPE_CHECKING:
    import pandas as pd

    from ..log import ExperimentLog

TABLE_LIMIT = 50  # a table shows the newest 50 runs unless --limit says otherwise
_TIMES = {c for c, _, kind in COLUMNS if kind == "datetime"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NEEDS_PANDAS = "needs pandas and pyarrow: pip install 'wanlab[jupyter]' (or use --format table)"


def since_epoch(text: str, now: float | None = None) -> float:
    """'2h', '3d', '30m', '1w' before now, or an ISO date or time (local time unless it names a zone)."""
    relative = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if relative:
        return (time.time() if now is None else now) - float(relative[1]) * _UNITS[relative[2]]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(
            f"--since {text!r}: give a relative age ('2h', '3d', '30m', '1w') or an ISO date or time "
            f"('2026-07-01', '2026-07-01T09:30')"
        ) from None
    return when.astimezone().timestamp() if when.tzinfo is None else when.timestamp()


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.study:
        out["study"] = args.study
    if args.status:
        out["status"] = list(args.status)
    if args.since:
        out["since"] = since_epoch(args.since)
    return out


def _cmd_runs(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise BadInput(f"--limit {args.limit}: give a number of runs ≥ 0 (0 = all)")
    if args.format == "parquet" and not args.out:
        raise BadInput("--format parquet writes a file: give --out FILE.parquet")
    limit = args.limit if args.limit is not None else (TABLE_LIMIT if args.format == "table" else 0)
    with open_log(args) as log:
        if args.format == "table":
            rows = log.rows(**_filters(args))
            shown = rows[-limit:] if limit else rows
            _write(args, table(shown))
            if len(shown) < len(rows):
                say(f"wanlab: the newest {len(shown)} of {len(rows)} runs; --limit 0 shows all")
            return 0
        frame = _frame(log, args, limit)
        if args.format == "parquet":
            try:
                frame.to_parquet(args.out, index=False)
            except ImportError:
                raise BadInput(f"--format parquet {_NEEDS_PANDAS}") from None
            say(f"wanlab: {len(frame)} runs → {args.out}")
        elif args.format == "csv":
            _write(args, frame.to_csv(index=False))
        else:
            _write(args, frame.to_json(orient="records", date_format="iso") + "\n")
    return 0


def _frame(log: ExperimentLog, args: argparse.Namespace, limit: int) -> pd.DataFrame:
    try:
        frame = log.frame(**_filters(args))
    except ImportError:
        raise BadInput(f"--format {args.format} {_NEEDS_PANDAS}") from None
    frame = frame.sort_values("created", kind="stable")
    return frame.tail(limit) if limit else frame


def _write(args: argparse.Namespace, text: str) -> None:
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        emit(args, text, end="")


def _local(epoch: float | None, seconds: bool = False) -> str:
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def table(rows: list[dict[str, Any]]) -> str:
    """The useful columns, aligned; the prompt last, cut to fit."""
    head = ("run_id", "created", "study", "mode", "model", "res", "dur", "seed", "status", "latency", "cost", "prompt")
    body = [
        (
            r["run_id"],
            _local(r["created"]),
            r["study"] or "",
            r["mode"] or "",
            r["model"] or "",
            r["resolution"] or "",
            "" if r["duration"] is None else str(r["duration"]),
            "" if r["seed"] is None else str(r["seed"]),
            r["status"] or "",
            "" if r["latency_s"] is None else f"{r['latency_s']:.1f} s",
            "" if r["cost"] is None else f"{r['cost']:.2f} {r['currency'] or ''}".rstrip(),
            _cut(r["prompt"] or "", 48),
        )
        for r in rows
    ]
    return aligned(head, body)


def _cut(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# -- show ------------------------------------------------------------------------------------------
def find_run(log: ExperimentLog, run_id: str) -> dict[str, Any]:
    """The run whose id is `run_id` or starts with it; BadInput when none or several match."""
    exact = log.rows(run_id=run_id)
    if exact:
        return exact[0]
    matches = [r for r in log.rows() if r["run_id"].startswith(run_id)] if run_id else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise BadInput(f"no run {run_id!r} in {log.path}; `wanlab runs` lists them")
    listed = "\n".join(
        f"  {r['run_id']}  {_local(r['created'])}  {r['status']}  {_cut(r['prompt'] or '', 40)}" for r in matches[:10]
    ) + (f"\n  … and {len(matches) - 10} more" if len(matches) > 10 else "")
    raise BadInput(f"{run_id!r} matches {len(matches)} runs; give more of the id:\n{listed}")


def iso(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its times as ISO 8601 in UTC (the log keeps epoch seconds)."""
    return {
        k: datetime.fromtimestamp(v, timezone.utc).isoformat() if k in _TIMES and v is not None else v
        for k, v in row.items()
    }


def _cmd_show(args: argparse.Namespace) -> int:
    with open_log(args) as log:
        row = find_run(log, args.run_id)
    if args.json:
        emit(args, json.dumps(iso(row)))
        return 0
    width = max(len(n) for n in NAMES)
    for name in NAMES:
        value = row[name]
        text = "—" if value is None else _local(value, seconds=True) if name in _TIMES else str(value)
        emit(args, f"{name.ljust(width)}  {text}")
    return 0


# -- export ----------------------------------------------------------------------------------------
def _cmd_export(args: argparse.Namespace) -> int:
    out = args.out or f"runs.{args.what}"
    with open_log(args) as log:
        try:
            if args.what == "mlflow":
                return _to_mlflow(args, log)
            path = log.to_csv(out) if args.what == "csv" else log.to_parquet(out)
        except ImportError as exc:
            needs = "mlflow: pip install 'wanlab[mlflow]'" if args.what == "mlflow" else _NEEDS_PANDAS
            raise BadInput(f"export {args.what} {needs} ({exc})") from None
        except OSError as exc:
            raise BadInput(f"cannot write {out} ({exc}); choose another --out") from None
        emit(args, f"{len(log)} runs → {path}")
    return 0


def _to_mlflow(args: argparse.Namespace, log: ExperimentLog) -> int:
    try:
        n = log.to_mlflow(experiment=args.experiment, tracking_uri=args.tracking_uri)
    except ImportError:
        raise
    except Exception as exc:  # noqa: BLE001 — MLflow's own errors (tracking URI, store): its words, exit 1
        say(f"wanlab export: MLflow refused the export: {type(exc).__name__}: {exc}")
        return 1
    emit(args, f"{n} runs → MLflow experiment {args.experiment!r}")
    return 0


def add_runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list the logged runs (table, csv, json, parquet)", description=__doc__)
    p.add_argument("--study", help="only this study")
    p.add_argument("--status", nargs="+", type=str.upper, choices=[s.value for s in Status], metavar="STATUS")
    p.add_argument("--since", help="created since: '2h', '3d', '1w', or an ISO date/time (local unless zoned)")
    p.add_argument("--limit", type=int, help=f"the newest N runs (default: {TABLE_LIMIT} for a table, all otherwise)")
    p.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table")
    p.add_argument("--out", help="write to this file instead of stdout (required for parquet)")
    add_home_flag(p)
    p.set_defaults(func=_cmd_runs, results=True)

    s = sub.add_parser("show", help="every field of one run", description="Every field of one logged run.")
    s.add_argument("run_id", help="the run id, or a unique start of it")
    s.add_argument("--json", action="store_true", help="one JSON object (times in ISO 8601, UTC)")
    add_home_flag(s)
    s.set_defaults(func=_cmd_show, results=True)

    e = sub.add_parser(
        "export", help="the whole log to CSV, Parquet or MLflow", description="The whole log to another tool."
    )
    e.add_argument("what", choices=("csv", "parquet", "mlflow"))
    e.add_argument("--out", help="the file (default runs.csv / runs.parquet here)")
    e.add_argument("--experiment", default="wanlab", help="MLflow experiment (default wanlab)")
    e.add_argument("--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else ./mlflow.db)")
    add_home_flag(e)
    e.set_defaults(func=_cmd_export, results=True)
