"""The pure decisions in a job's life, apart from any I/O so they can be tested alone: what a host's
snapshot does to a job, when its task began running, and what an error means for a job that may or may
not have a task on the host."""

from __future__ import annotations

import time

from ._hosttime import host_clock
from .errors import JobFailed, UnconfirmedSubmit, WanlabError
from .jobs import Job, Status
from .providers.base import TaskSnapshot


def apply(job: Job, snap: TaskSnapshot) -> None:
    """Take in what a poll said. SUCCEEDED on the host means "download now": the job shows DOWNLOADING
    until its file is verified."""
    if snap.request_id and not job.request_id:
        job.request_id = snap.request_id
    for key in job.host_times:
        value = getattr(snap, key)
        if value:
            job.host_times[key] = value
    if snap.usage:
        job.usage = dict(snap.usage)
    if snap.video_url:
        job.video_url = snap.video_url
    if snap.seed is not None:
        job.seed = snap.seed
    if snap.error_code or snap.error_message:
        job.error_code = snap.error_code
        job.error = JobFailed(
            f"{job.host} task {job.task_id} {snap.status}: {snap.error_code or 'error'}: {snap.error_message}".rstrip(
                ": "
            ),
            code=snap.error_code,
            status=str(snap.status),
        )
    if snap.status is Status.UNKNOWN and job.error is None:
        job.error = JobFailed(
            f"{job.host} answers UNKNOWN for task {job.task_id}: never seen, or older than the host's 24 h window",
            code="UNKNOWN",
            status="UNKNOWN",
        )
    status = Status.DOWNLOADING if snap.status is Status.SUCCEEDED else snap.status
    if status is Status.PENDING and job.status is Status.RUNNING:
        return  # a lagging replica's older view: the job does not go back
    if status is not job.status:
        job.set_status(status)


def verdict(job: Job, exc: BaseException, supports_list: bool) -> str:
    """How an error ends a job: "failed" when nothing can exist on the host (nothing left the machine, or
    the host refused the submit), "unknown" when the host may have a task no list will ever show, else
    "detach" — the row stays unfinished for resume, since only the host's answer ends a paid run."""
    may_exist = bool(job.task_id) or job.status is Status.SUBMITTING
    if getattr(exc, "no_task", False) or not may_exist:
        return "failed"
    if isinstance(exc, UnconfirmedSubmit) and not supports_list:
        return "unknown"
    return "detach"


def no_task(exc: WanlabError) -> WanlabError:
    """Marks an error as the host's proof that the submit created no task: the job may end FAILED."""
    exc.no_task = True  # type: ignore[attr-defined]
    return exc


def run_start(
    job: Job, snap: TaskSnapshot, prev_poll: float | None, this_poll: float, now: float | None = None
) -> float | None:
    """When the task began running, on time.monotonic(). The host's scheduled_time is put on our clock
    through its submit_time, which happened when our submit was accepted: no time zone needed. Without
    host times, the midpoint between the poll that last saw PENDING and this one."""
    if snap.status is Status.PENDING:
        return None
    sched, sub = host_clock(snap.scheduled_time), host_clock(snap.submit_time or job.host_times["submit_time"])
    accepted = job.timings["submitted"]
    if sched is not None and sub is not None and accepted is not None:
        wall = accepted + (sched - sub)
        return this_poll - max(0.0, (time.time() if now is None else now) - wall)
    if snap.status is Status.RUNNING or snap.status.terminal:
        return this_poll if prev_poll is None else (prev_poll + this_poll) / 2
    return None
