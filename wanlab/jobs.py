"""`Job`: one generation's life, from the local queue to a verified file on disk, as a state machine.

`Status` and its transition table live here (as h11 keeps its states with its connection): a job moves
only along `TRANSITIONS`, and only the runner (`runner.JobRunner`, on the Lab's loop thread) moves it;
any thread may read it, wait on it, observe it or cancel it. A job rebuilt from the log starts where its
row left off (`Job.restore`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._hosttime import host_clock
from .catalog import ModelSpec
from .errors import JobCanceled, JobFailed, WanlabError
from .requests import Request

if TYPE_CHECKING:
    from .cost import Budget

TIMING_KEYS = ("created", "started", "submitted", "scheduled", "ended", "downloaded")


class Status(str, Enum):
    """A job's state. The host reports the six from PENDING on; QUEUED (waiting for a local slot),
    SUBMITTING and DOWNLOADING are wanlab's own."""

    QUEUED = "QUEUED"
    SUBMITTING = "SUBMITTING"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"
    DOWNLOADING = "DOWNLOADING"

    @property
    def terminal(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELED, Status.UNKNOWN)

    def __str__(self) -> str:
        return self.value


_HOST_ENDS = {Status.FAILED, Status.CANCELED, Status.UNKNOWN}
# Where a job may go from each state. SUCCEEDED is reached only through DOWNLOADING (the file verified);
# an adopted task may already be running or done when the job first hears of it.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.SUBMITTING, Status.CANCELED, Status.FAILED}),
    Status.SUBMITTING: frozenset(
        {Status.PENDING, Status.RUNNING, Status.DOWNLOADING, Status.CANCELED, Status.FAILED, Status.UNKNOWN}
    ),
    Status.PENDING: frozenset({Status.RUNNING, Status.DOWNLOADING} | _HOST_ENDS),
    Status.RUNNING: frozenset({Status.DOWNLOADING} | _HOST_ENDS),
    Status.DOWNLOADING: frozenset({Status.SUCCEEDED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELED: frozenset(),
    Status.UNKNOWN: frozenset(),
}


class IllegalTransition(WanlabError):
    """A bug: something tried to move a job along an edge the state machine does not have."""


@dataclass(frozen=True)
class JobEvent:
    """Something that happened to a job: a status change, a retry, a poll, a clamp, a reconciliation."""

    t: float  # epoch seconds, client clock
    kind: str  # "status" | "submitted" | "poll" | "retry" | "reconciled" | "downloaded" | "error" …
    status: Status
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


Observer = Callable[["Job", JobEvent], None]


class Job:
    """A handle on one generation. `await job`, `job.result(timeout)`, `job.cancel()`."""

    def __init__(self, request: Request, model: ModelSpec, host: str, region: str = "", run_id: str | None = None):
        self.id = run_id or uuid.uuid4().hex[:12]
        self.request = request
        self.model = model
        self.host = host
        self.region = region
        self.status: Status = Status.QUEUED
        self.task_id: str | None = None
        self.request_id: str | None = None
        self.timings: dict[str, float | None] = dict.fromkeys(TIMING_KEYS)
        self.timings["created"] = time.time()
        self.host_times: dict[str, str | None] = {"submit_time": None, "scheduled_time": None, "end_time": None}
        self.video_url: str | None = None
        self.video_path: Path | None = None
        self.sha256: str | None = None
        self.bytes: int | None = None
        self.video_info: dict[str, Any] = {}
        self.quality: dict[str, Any] | None = None  # the video's figures (wanlab.quality), once measured
        self.usage: dict[str, Any] = {}
        self.seed: int | None = request.seed
        self.error: WanlabError | None = None
        self.error_code: str = ""
        self.polls = 0
        self.fingerprint: str | None = None
        self.events: list[JobEvent] = []
        self._observers: list[Observer] = []
        self._lock = threading.Lock()
        self._done: concurrent.futures.Future[Job] = concurrent.futures.Future()
        self._cancel_hook: Callable[[], None] | None = None
        self._holds: list[concurrent.futures.Future[Any]] = []  # see hold_until
        self.cancel_requested = False
        self.cancel_outcome = ""  # what the host answered: "cancelled" | "refused" | "unsupported"
        self.log_error: Exception | None = None  # the experiment log could not record this job
        self.attached = ""  # why this handle follows a run that was already in the log, if it does
        self.detached = False  # ended without the host's word: the row stays unfinished for resume
        self.protocol = ""
        self.expected_run: float | None = None  # host seconds, from the log's history of similar runs
        self.run_history: tuple[float, ...] = ()  # run seconds of similar runs (host), for the poll policy
        self.est_cost: float | None = None
        self.cost: float | None = None
        self.cost_basis = ""  # how `cost` was arrived at (the host's billed seconds, the estimate, …)
        self.currency = ""
        self.budgets: list[Budget] = []  # the budgets this job's spend is counted in

    def restore_state(self, status: Status) -> None:
        """Start from the state a logged row left (a resume, a take-over): no transition is replayed."""
        self.status = status

    # -- reading ---------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done.done()

    @property
    def mode(self) -> str:
        return self.request.mode

    @property
    def latency(self) -> float | None:
        """Seconds from accepted submit to the end the host reported (client clock)."""
        s, e = self.timings["submitted"], self.timings["ended"]
        return e - s if s is not None and e is not None else None

    @property
    def queue_time(self) -> float | None:
        """Seconds queued on the host: its own submit → scheduled times where it reports them (a difference
        needs no time zone), else the client's view (accepted → first seen RUNNING)."""
        host = self._host_span("submit_time", "scheduled_time")
        s, r = self.timings["submitted"], self.timings["scheduled"]
        return host if host is not None else (r - s if s is not None and r is not None else None)

    @property
    def run_time(self) -> float | None:
        """Seconds the task ran on the host: its own scheduled → end times (DashScope) or its inference time
        (WaveSpeed's `timings.inference`) where it reports them, else the client's view (first seen RUNNING →
        seen ended), which carries the poll gaps: what the default poll policy learns from, so the host's
        figure where there is one."""
        host = self._host_span("scheduled_time", "end_time")
        if host is None and self.usage.get("inference_ms"):  # WaveSpeed's timings.inference: its own run time
            host = float(self.usage["inference_ms"]) / 1000
        r, e = self.timings["scheduled"], self.timings["ended"]
        return host if host is not None else (e - r if r is not None and e is not None else None)

    def _host_span(self, start: str, end: str) -> float | None:
        a, b = host_clock(self.host_times[start]), host_clock(self.host_times[end])
        return b - a if a is not None and b is not None and b >= a else None

    def result(self, timeout: float | None = None) -> Job:
        """Block until the job ends; returns the job, or raises JobFailed / JobCanceled / the error."""
        self._done.result(timeout)
        return self._raise_for_status()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or `timeout` passes); True if it ended. Raises nothing."""
        try:
            self._done.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def add_done_callback(self, fn: Callable[[Job], None]) -> None:
        """Call `fn(job)` once the job ends (at once if it has), on the thread that ended it."""
        self._done.add_done_callback(lambda _f: fn(self))

    def __await__(self) -> Generator[Any, None, Job]:
        return self.outcome().__await__()

    async def outcome(self) -> Job:
        """Await the end from any event loop; a waiter that gives up does not cancel the job."""
        # shielded: a waiter that gives up (timeout, cancelled cell) must not cancel the job's own future
        await asyncio.shield(asyncio.wrap_future(self._done))
        return self._raise_for_status()

    def _raise_for_status(self) -> Job:
        if self.log_error is not None:  # warned in the caller's thread: that is where the user looks
            warnings.warn(
                f"job {self.id}: the experiment log could not record it ({self.log_error}); what it "
                f"knows (task {self.task_id}, video {self.video_path}) is in this Job only — free "
                f"space or fix permissions before the next run",
                RuntimeWarning,
                stacklevel=3,
            )
        if self.status is Status.SUCCEEDED:
            return self
        if self.status is Status.CANCELED:
            raise JobCanceled(f"job {self.id} (task {self.task_id}) was cancelled")
        if self.error is not None and not isinstance(self.error, JobFailed):
            raise self.error
        raise self.error or JobFailed(f"job {self.id} ended {self.status}", status=str(self.status))

    def observe(self, fn: Observer) -> Observer:
        """Call `fn(job, event)` on every event, on the Lab's loop thread (set widget traits there; don't
        print). Events already recorded are replayed first, so a late observer misses nothing."""
        with self._lock:
            past = list(self.events)
            self._observers.append(fn)
        for ev in past:
            fn(self, ev)
        return fn

    # -- acting ----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop paying: a job not yet sent ends CANCELED at once; a task the host has is cancelled there when
        the host can (DashScope: while PENDING), and ends CANCELED when it says so. A task the host would not
        cancel (already running, hence billed) is still polled and downloaded: it is paid for. A submit in
        flight is answered (or reconciled) first. Returns at once; `job.events` say what happened."""
        if self.done or self.cancel_requested:
            return
        self.cancel_requested = True
        if self._cancel_hook is not None:
            self._cancel_hook()

    # -- updates (loop thread) -------------------------------------------------------------------
    @property
    def expected_run_s(self) -> float:
        """Host seconds the task should run: the median of similar runs in the log, else the model's prior."""
        return self.expected_run or self.model.expected_latency(self.request.resolution, self.request.output_seconds())

    def emit(self, kind: str, detail: str = "", **data: Any) -> JobEvent:
        ev = JobEvent(time.time(), kind, self.status, detail, data)
        with self._lock:
            self.events.append(ev)
            observers = list(self._observers)
        for fn in observers:
            try:
                fn(self, ev)
            except Exception as exc:  # an observer's bug must not kill the job
                self.events.append(JobEvent(time.time(), "observer_error", self.status, repr(exc)))
        return ev

    def hold_until(self, fut: concurrent.futures.Future[Any]) -> None:
        """An observer's work the runner must see finished before it waits on the host (the experiment log's
        row with SUBMITTING or the task id, committed by its writer thread). Loop thread."""
        self._holds.append(fut)

    async def durable(self) -> None:
        """Wait, with the loop free, for what observers hold this job for (`hold_until`). A failure there is
        the observer's to report (the log puts it on the job as `log_error`); the job goes on either way."""
        while self._holds:
            holds, self._holds = self._holds, []
            for fut in holds:
                if not fut.done():
                    with contextlib.suppress(Exception):
                        await asyncio.wrap_future(fut)

    def adopt_end(self, status: Status, detail: str) -> None:
        """A follower takes the end another process's job reached (read from the log), whatever path led there."""
        if not status.terminal:
            raise IllegalTransition(f"job {self.id}: adopt_end({status}) takes a terminal state")
        self.status = status
        self.emit("status", detail)

    def set_canceller(self, fn: Callable[[], None]) -> None:
        """The runner's way to act on `cancel()` (it knows the loop and the task)."""
        self._cancel_hook = fn

    def set_status(self, status: Status, detail: str = "", **data: Any) -> None:
        """Move along the state machine (only the runner calls this). Staying put with a `detail` records
        an event; an edge `TRANSITIONS` lacks raises IllegalTransition."""
        if status is self.status:
            if detail:
                self.emit("status", detail, **data)
            return
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(f"job {self.id}: {self.status} → {status} is not a transition a job makes")
        self.status = status
        now = time.time()
        if status is Status.SUBMITTING and self.timings["started"] is None:
            self.timings["started"] = now
        if status is Status.RUNNING and self.timings["scheduled"] is None:
            self.timings["scheduled"] = now
        if status.terminal or status is Status.DOWNLOADING:
            if self.timings["ended"] is None and self.timings["submitted"] is not None:
                self.timings["ended"] = now
        self.emit("status", detail, **data)

    def finish(self) -> None:
        if not self._done.done():
            self._done.set_result(self)

    # -- display ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        extra = f" task={self.task_id}" if self.task_id else ""
        path = f" video={self.video_path}" if self.video_path else ""
        err = f" error={self.error_code or type(self.error).__name__}" if self.error else ""
        return f"<Job {self.id} {self.mode} {self.model.id} {self.status}{extra}{path}{err}>"

    def _repr_html_(self) -> str:
        from ._views import job_html

        return job_html(self)
