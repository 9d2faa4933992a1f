"""What a job's events write into its log row (`changes`), and how the log tells a job that a deferred write of
them failed (`tell_when_written`, `failed`): once logged, always on the job, never silent."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..jobs import Job, JobEvent, Status
from ..providers.base import billed_seconds
from .schema import NEXT_SEQ, RESULT_TTL_S

RETRY_SQL = f"UPDATE runs SET retries = COALESCE(retries, 0) + 1, seq = {NEXT_SEQ} WHERE run_id = ?"


def changes(job: Job, ev: JobEvent, lease_until: Callable[[], float]) -> dict[str, Any]:
    """The columns `ev` changes (empty when it changes none; a retry is `RETRY_SQL`)."""
    values: dict[str, Any] = {}
    if ev.kind == "submitted":
        values.update(
            task_id=job.task_id,
            request_id=job.request_id,
            submitted=job.timings["submitted"],
            status=str(job.status),
        )
    elif ev.kind == "status":
        # a job is SUCCEEDED only once its file is verified (Job.apply), so a crash while downloading
        # leaves a DOWNLOADING row for resume(), never a SUCCEEDED row without a video
        timings = job.timings
        values.update(
            status=str(job.status),
            polls=job.polls,
            started=timings["started"],
            scheduled=timings["scheduled"],
            ended=timings["ended"],
        )
        if job.task_id:
            values["task_id"] = job.task_id
        if job.video_url:
            values["video_url"] = job.video_url
            values["url_expires"] = (timings["ended"] or time.time()) + RESULT_TTL_S
        if job.usage:
            values["billed_seconds"] = billed_seconds(job.usage)
        if job.error is not None:
            values["error_code"] = job.error_code or type(job.error).__name__
            values["error_message"] = str(job.error)
        if job.seed is not None and job.request.seed is None:
            values["seed"] = job.seed  # the seed the host drew: rerun() reproduces it
        values.update(latency_s=job.latency, queue_s=job.queue_time, run_s=job.run_time)
        if job.status.terminal:
            values["claimed_until"] = 0.0
        if getattr(job, "cost", None) is not None:
            values["cost"] = job.cost
            if job.currency:
                values["currency"] = job.currency
            if getattr(job, "cost_basis", None):
                values["price_source"] = job.cost_basis
    elif ev.kind == "downloaded":
        info = job.video_info
        values.update(
            path=str(job.video_path),
            sha256=job.sha256,
            bytes=job.bytes,
            downloaded=job.timings["downloaded"],
            width=info.get("width"),
            height=info.get("height"),
            fps=info.get("fps"),
            frames=info.get("frames"),
            video_seconds=info.get("duration"),
        )
    elif ev.kind == "detached":
        values["claimed_until"] = 0.0
        values["error_code"] = job.error_code or (type(job.error).__name__ if job.error else "")
        values["error_message"] = f"detached, resumable: {ev.detail}"
    elif ev.kind == "cancel":
        values["cancel"] = ev.detail
    elif ev.kind == "heartbeat":
        values["claimed_until"] = lease_until()
    return values


def tell_when_written(
    fut: concurrent.futures.Future[None], path: Path, job: Job, ev: JobEvent, loop: asyncio.AbstractEventLoop
) -> None:
    """Once the writer thread is done with `fut`, a failure goes to `failed` on `loop` (the Lab's, where jobs
    move). The writes a crash must not lose before the runner waits on the host — the SUBMITTING row before the
    body leaves, the task id before the first poll — are held on the job (`Job.hold_until`) until they are
    committed or their failure is told."""
    held: concurrent.futures.Future[None] | None = None
    if ev.kind == "submitted" or (ev.kind == "status" and ev.status is Status.SUBMITTING):
        held = concurrent.futures.Future()
        held.set_running_or_notify_cancel()  # a runner cancelled while it waits must not cancel the hold
        job.hold_until(held)
    fut.add_done_callback(functools.partial(_written, loop, path, job, ev.kind, held))


def _written(
    loop: asyncio.AbstractEventLoop,
    path: Path,
    job: Job,
    kind: str,
    held: concurrent.futures.Future[None] | None,
    fut: concurrent.futures.Future[None],
) -> None:
    """On the writer thread."""
    exc = fut.exception()
    if exc is None:
        if held is not None:
            held.set_result(None)
        return
    try:
        loop.call_soon_threadsafe(failed, path, job, kind, exc, held)
    except RuntimeError:  # the Lab's loop is closed (the Lab is closing): tell it from here
        failed(path, job, kind, exc, held)


def failed(
    path: Path, job: Job, kind: str, exc: BaseException, held: concurrent.futures.Future[None] | None = None
) -> None:
    """Put the failure on the job (`log_error`, a "log_error" event; its awaiter is warned) and log it once."""
    try:
        first = job.log_error is None
        job.log_error = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
        job.emit("log_error", f"the experiment log {path} could not record {kind}: {exc}")
        if first:
            logging.getLogger("wanlab").error(
                "experiment log %s: cannot record job %s (%s); its task id %s is in memory only",
                path,
                job.id,
                exc,
                job.task_id,
            )
    finally:
        if held is not None:  # told: the runner goes on, the task id in memory
            held.set_result(None)
