"""`wanlab generate` (one run, watched to its end; Ctrl-C cancels it on the host) and `wanlab resume` (the
log's unfinished runs, followed to their end). Both report each run from its log row: on stdout, as text or
`--json`; the host's error code and message also on stderr. Exit 0 when every run SUCCEEDED, 1 otherwise,
130 after Ctrl-C."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from .. import _submission as submission
from .._recovery import finished_twin
from ..log import TERMINAL
from ._common import INTERRUPTED, add_host_flags, add_request_flags, emit, lab_from_flags, request_from_flags, say
from ._progress import Watch, cancel, fmt_s

if TYPE_CHECKING:
    from ..jobs import Job
    from ..lab import Lab

# what a finished run is reported by (the `--json` keys), read from its log row
RESULT = (
    "run_id",
    "status",
    "task_id",
    "path",
    "latency_s",
    "cost",
    "currency",
    "model",
    "host",
    "error_code",
    "error_message",
)


def _cmd_generate(args: argparse.Namespace) -> int:
    req = request_from_flags(args)  # bad input fails here, before a Lab starts a sim or opens the log
    with lab_from_flags(args) as lab:
        spec = lab.resolve(req)
        est = lab.estimate(req)
        job: Job | str | None = None if args.fresh else finished_twin(lab, req, spec.id)
        if job is None:
            say(f"wanlab: {spec.id} on {lab.host}; estimate {est}")
            # the twin asked for again where the new run would be logged: another process may have finished it
            job = submission.submit(lab, req, study=args.study, fresh=args.fresh, reuse=not args.fresh)
        if isinstance(job, str):
            say(f"wanlab: reusing run {job}: this seeded request already SUCCEEDED here (--fresh pays for a new one)")
            return _report(args, [lab.log.get(job)], single=True, reused=True)
        note = (
            f"wanlab: run {job.id} {job.attached} — the same seeded request was unfinished; nothing sent again"
            if job.attached
            else f"wanlab: run {job.id} queued"
        )
        return _follow(args, lab, [job], single=True, note=note)


def _cmd_resume(args: argparse.Namespace) -> int:
    with lab_from_flags(args) as lab:
        jobs = lab.resume(report=True)
        if not jobs:
            say(f"wanlab: nothing to resume for {lab.host} in {lab.log.path}")
            if args.json:
                emit(args, "[]")
            return 0
        return _follow(args, lab, jobs, single=False)


def _follow(args: argparse.Namespace, lab: Lab, jobs: list[Job], *, single: bool, note: str = "") -> int:
    try:
        if note:
            say(note)
        Watch(jobs, lab.time_scale).wait()
    except KeyboardInterrupt:
        cancel(jobs)
        _report(args, _rows(lab, jobs), single=single)
        return INTERRUPTED
    return _report(args, _rows(lab, jobs), single=single)


def _rows(lab: Lab, jobs: list[Job]) -> list[dict[str, Any]]:
    """Each job's log row: complete (cost settled, path, error) by the time the job is done; what the job
    itself knows when the log could not record it (a full disk, a read-only folder)."""
    out = []
    for job in jobs:
        if job.log_error is not None:
            say(f"wanlab: the log could not record run {job.id} ({job.log_error}); reporting what the job knows")
            out.append(_from_job(job))
        else:
            out.append(lab.log.get(job.id))
    return out


def _from_job(job: Job) -> dict[str, Any]:
    return {
        "run_id": job.id,
        "status": str(job.status),
        "task_id": job.task_id,
        "path": str(job.video_path) if job.video_path else None,
        "latency_s": job.latency,
        "cost": job.cost,
        "currency": job.currency,
        "model": job.model.id,
        "host": job.host,
        "error_code": job.error_code or None,
        "error_message": str(job.error) if job.error else None,
    }


def _report(args: argparse.Namespace, rows: list[dict[str, Any]], *, single: bool, reused: bool = False) -> int:
    results = [{k: row.get(k) for k in RESULT} | {"reused": reused} for row in rows]
    if args.json:
        emit(args, json.dumps(results[0] if single else results))
    else:
        for r in results:
            emit(args, _text(r))
    for r in results:
        if r["status"] == "SUCCEEDED":
            continue
        why = ": ".join(str(x) for x in (r["error_code"], r["error_message"]) if x)
        if r["status"] not in TERMINAL:
            why = "; ".join(x for x in (why, "unfinished: `wanlab resume` follows it up") if x)
        elif not why:
            why = "cancelled" if r["status"] == "CANCELED" else "the host gave no reason"
        say(f"wanlab: run {r['run_id']} {r['status']}: {why}")
    return 0 if all(r["status"] == "SUCCEEDED" for r in results) else 1


def _text(r: dict[str, Any]) -> str:
    cost = "—" if r["cost"] is None else f"{r['cost']:.2f} {r['currency'] or ''}".rstrip()
    latency = "—" if r["latency_s"] is None else fmt_s(r["latency_s"])
    lines = [f"{r['status']}  run {r['run_id']}  task {r['task_id'] or '—'}  ({r['model']} on {r['host']})"]
    lines += [f"  video    {r['path'] or '—'}", f"  latency  {latency}", f"  cost     {cost}"]
    return "\n".join(lines)


def add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="make one video: progress on stderr, then its path, latency and cost",
        description="Validate, price and submit one request, show its progress (Ctrl-C cancels it on the host), "
        "then print the video's path, latency, cost and run id. A seeded request that already succeeded here is "
        "reused, and one still unfinished is followed: the same seeded command never pays twice. "
        "Exit 0 done, 1 the run failed on the host, 2 bad input (nothing sent), 130 interrupted.",
    )
    add_request_flags(p)
    p.add_argument("--study", help="a name grouping runs in the log")
    p.add_argument("--fresh", action="store_true", help="a new paid sample even if this seeded request was run")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_host_flags(p)
    p.set_defaults(func=_cmd_generate, results=True)


def add_resume(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "resume",
        help="finish the log's unfinished runs on this host (poll, download, or send what never left)",
        description="Pick up the unfinished runs of this host from the log (a crash, a closed terminal, Ctrl-C "
        "on a task the host would not cancel), follow them to their end and report each. Exit 1 if any failed.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of the runs on stdout")
    add_host_flags(p)
    p.set_defaults(func=_cmd_resume, results=True)
