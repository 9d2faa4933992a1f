"""`JobRunner` drives a job through upload → submit → reconcile → poll → download on the Lab's loop, and
is the only thing that moves a Job's state. HTTP is `_http.Http`'s; the pure decisions are in
`lifecycle` and `reconcile`; every retry goes through `retry.retrying`.

Rules it keeps:
- a submit is never blindly re-sent: an answer the host gave before accepting (429, 503, a connection
  that never opened) is retried; a timeout or a dropped connection after the body left is ambiguous and
  reconciled against the host's task list (DashScope) or reported with the body's fingerprint;
- terminal means the host said so: once a task may exist, anything but the host's FAILED / CANCELED /
  UNKNOWN detaches the job (its row stays unfinished, for resume);
- cancel is a request: a job that sent nothing is dropped; a task is cancelled on the host where it can
  be, and a task the host would not cancel (running, hence billed) is still downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from . import _download as download
from . import _lifecycle as lifecycle
from . import _reconcile as reconcile
from ._board import StatusBoard
from ._http import AMBIGUOUS, NOT_SENT, Http, TransportError
from ._wake import Wake
from .errors import ApiError, LostContact, WanlabError
from .jobs import Job, Status
from .limits import Limits
from .media import MediaStore
from .polling import LearnedPoll, PollPolicy, PollState, describe
from .providers.base import HttpRequest, HttpResponse, Provider, TaskSnapshot
from .retry import Outcome, RetryPolicy, parse_retry_after, retrying
from .secret import Secret

log = logging.getLogger("wanlab")

_SUBMIT_RETRYABLE = (429, 503)  # answers a host gives before it accepts a submit (no task)
_SUBMIT_AMBIGUOUS = (500, 502, 504)  # answers after which a submit may or may not have made a task
# Host seconds a poll may wait for others due after it, to share one list request. What it adds to a job's
# lateness is at most this, for the poll that sees the end, and only when that poll waited: an eighth of the
# default policy's accepted mean lateness (2 s). bench_client: 3.2 polls answered per list request (1 s: 4.6).
BOARD_WINDOW_S = 0.25


class JobRunner:
    def __init__(
        self,
        provider: Provider,
        secret: Secret,
        *,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        time_scale: float = 1.0,
        store: MediaStore | None = None,
        transport: Any = None,
        timeout: Any = None,
        submit_timeout: float = 60.0,
        rng: random.Random | None = None,
        known_task_ids: Callable[[], set[str]] | None = None,
        submit_turn: Callable[[], AbstractAsyncContextManager[None]] | None = None,
        claimants: Callable[[Job, float], list[tuple[float, str]]] | None = None,
    ):
        self.provider = provider
        self.secret = secret
        self.limits = limits or Limits.for_host(provider.name)
        self.retry = retry or RetryPolicy(time_scale=time_scale)
        self.poll_policy = poll or LearnedPoll()
        self.time_scale = time_scale
        self.store = store or MediaStore("wanlab-runs/media")
        self.submit_timeout = submit_timeout
        self.stats = {"requests": 0, "retries": 0, "submits": 0, "reconciled": 0, "resubmits": 0}
        self.http = Http(
            secret,
            self.limits,
            transport=transport,
            stats=self.stats,
            **({"timeout": timeout} if timeout is not None else {}),
        )
        self.rng = rng or random.Random()
        self._seen: set[str] = set()
        self._known_task_ids = known_task_ids or (lambda: set())
        # across processes on one log: one submit in flight per account, and who else awaits a task
        self._submit_turn = submit_turn or contextlib.nullcontext
        self._claimants = claimants or (lambda job, since: [])
        self._submit_lock: asyncio.Lock | None = None
        self._wake: dict[str, Wake] = {}  # job id → set when the user asks to cancel
        # polls due together share one list request where the host has one (see _board)
        self.board = (
            StatusBoard(provider, self._list_once, BOARD_WINDOW_S * time_scale) if provider.supports_list else None
        )
        self._tasks: dict[str, asyncio.Task] = {}

    def __repr__(self) -> str:
        return f"JobRunner({self.provider.describe()}, key={self.secret.masked})"

    def known_task_ids(self) -> set[str]:
        return self._seen | self._known_task_ids()

    async def aclose(self, grace: float = 2.0) -> None:
        """Cancel the jobs' tasks (each detaches: its row stays for the next Lab), give a submit in flight up
        to `grace` seconds to be answered, then close the HTTP client: closed first, the client would fail the
        jobs still polling as crashes."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        await self.http.aclose()

    # -- one idempotent call ---------------------------------------------------------------------
    async def call(self, req: HttpRequest, job: Job | None = None) -> HttpResponse:
        """A query, list, upload or cancel, retried on 429/5xx/transport errors. Returns the last answer
        (which may still be an error status for the caller to parse); LostContact if none came."""
        self.http.ensure()
        limiter = self.http.query_rate if req.route in ("query", "list", "cancel") else None

        async def attempt(_n: int) -> Outcome:
            if limiter is not None:
                await limiter.acquire()
            try:
                resp = await self.http.send(req)
            except TransportError as exc:
                return Outcome.retry(type(exc).__name__)
            if resp.status != 429 and resp.status < 500:
                return Outcome.done(resp)
            retry_after = parse_retry_after(resp.header("Retry-After"))
            if resp.status == 429 and retry_after is not None and limiter is not None:
                limiter.penalise(min(retry_after, self.retry.retry_after_cap_s))
            return Outcome.retry(f"HTTP {resp.status}", retry_after, resp)

        def give_up(out: Outcome, tries: int) -> HttpResponse:
            if out.value is not None:
                return out.value
            raise LostContact(
                f"{req.method} {req.route} to {self.provider.name} failed after {tries} tries ({out.why})"
            )

        return await retrying(
            attempt, self.retry, self.rng, give_up=give_up, on_retry=self._retry_event(job, req.route)
        )

    def _retry_event(self, job: Job | None, route: str) -> Callable[[Outcome, int, float], None]:
        def on_retry(out: Outcome, tries: int, delay: float) -> None:
            self.stats["retries"] += 1
            if job is not None:
                clamped = out.retry_after is not None and out.retry_after > self.retry.retry_after_cap_s
                job.emit(
                    "retry",
                    f"{route}: {out.why}; retrying in {delay:.2f} s",
                    route=route,
                    attempt=tries,
                    retry_after=out.retry_after,
                    clamped=clamped,
                )

        return on_retry

    async def _list_once(self, req: HttpRequest) -> HttpResponse:
        """One list request for the board, not retried: if it fails, each job queries its task instead."""
        self.http.ensure()
        limiter = self.http.query_rate
        assert limiter is not None
        await limiter.acquire()
        return await self.http.send(req)

    # -- the job's life --------------------------------------------------------------------------
    async def run(self, job: Job, phase: str = "submit") -> Job:
        """Drive `job` to a terminal state, or detach it. Always ends with the job done; errors land on it.
        `phase` says where a resumed job picks up: "submit" (never sent), "reconcile" (a submit was in flight
        when the process died), "poll" (the host has the task)."""
        self.http.ensure()
        slots = self.http.slots
        assert slots is not None
        holding = False
        self._wake[job.id] = Wake()
        task = asyncio.current_task()
        if task is not None:
            self._tasks[job.id] = task
        if job.cancel_requested:
            self._wake[job.id].set()
        try:
            await slots.acquire()
            holding = True
            if phase == "submit":
                snap = await self._submit(job, await self._upload_all(job))
            elif phase == "reconcile":
                snap = await self._resume_submit(job)
            else:
                task_id = job.task_id
                assert task_id is not None, "a job resumed in the poll phase has a task"
                snap = self.provider.parse_query(await self.call(self.provider.query(task_id), job), task_id)
            lifecycle.apply(job, snap)
            snap = await self._poll(job, snap)
            slots.release()
            holding = False
            if snap.status is Status.SUCCEEDED:  # the job shows DOWNLOADING until the file is verified
                if job.cancel_requested and not job.cancel_outcome:
                    job.emit("cancel", f"task {job.task_id} had already finished (paid): downloaded anyway")
                await self.download(job)
                job.set_status(Status.SUCCEEDED)
        except asyncio.CancelledError:
            if job.cancel_requested and not (job.task_id or job.status is Status.SUBMITTING):
                job.set_status(Status.CANCELED, "cancelled before anything was sent")
            else:  # the Lab closed: what it asked for stays in the log for the next Lab
                where = (
                    f"task {job.task_id} was left on the host"
                    if job.task_id
                    else ("its submit was in flight" if job.status is Status.SUBMITTING else "it was never sent")
                )
                self._detach(job, WanlabError(f"the Lab closed while job {job.id} was {job.status}; {where}"))
        except Exception as exc:  # noqa: BLE001 — every error ends the job visibly, as the host's word allows
            self._end_on_error(job, exc)
        finally:
            if holding:
                slots.release()
            self._wake.pop(job.id, None)
            self._tasks.pop(job.id, None)
            if self.board is not None and job.task_id:
                self.board.forget(job.task_id)
            job.finish()
        return job

    def _end_on_error(self, job: Job, exc: Exception) -> None:
        if isinstance(exc, WanlabError):
            err = exc
            job.error_code = getattr(exc, "code", "") or type(exc).__name__
        elif isinstance(exc, OSError):  # a full disk, an unwritable folder
            err = WanlabError(f"{type(exc).__name__}: {exc}")
            job.error_code = "wanlab.DiskError"
        else:  # a bug: still visible, never silent
            err = WanlabError(f"internal error: {exc!r}")
            job.error_code = "wanlab.InternalError"
            log.error("job %s crashed", job.id, exc_info=exc)
        job.error = err
        verdict = lifecycle.verdict(job, exc, self.provider.supports_list)
        if verdict == "detach":
            self._detach(job, err)
        else:
            job.set_status(Status.UNKNOWN if verdict == "unknown" else Status.FAILED, str(err))

    def _detach(self, job: Job, exc: WanlabError) -> None:
        """The host has (or may have) this task and we could not finish it: keep the row unfinished, so
        lab.resume() — here or in another kernel — polls, reconciles or downloads it later."""
        job.error = exc
        job.error_code = job.error_code or getattr(exc, "code", "") or type(exc).__name__
        job.detached = True
        what = f"task {job.task_id}" if job.task_id else "its submit (the host may have created a task)"
        job.emit(
            "detached", f"{exc} — while {job.status}; {what} stays in the log unfinished: lab.resume() picks it up"
        )

    def request_cancel(self, job: Job) -> None:
        """On the loop thread: the user asked to stop. A job that has sent nothing is dropped here; one that
        may have a task is woken, so its poll loop cancels on the host within one step."""
        wake = self._wake.get(job.id)
        if wake is not None:
            wake.set()
        task = self._tasks.get(job.id)
        if task is not None and job.status is Status.QUEUED:
            task.cancel()  # status is read on this thread: nothing can have left

    async def _nap(self, job: Job, seconds: float) -> None:
        """Sleep between polls, cut short once by a cancel request (the poll loop then acts on it)."""
        wake = self._wake.get(job.id)
        if wake is None:
            await asyncio.sleep(seconds)
        else:
            await wake.nap(seconds)

    async def _upload_all(self, job: Job) -> list[str]:
        urls: list[str] = []
        for role, media in job.request.media():
            if media.url is not None:  # media.is_remote
                urls.append(media.url)
                continue
            flow = self.provider.upload(media, job.model.id)
            req = next(flow)
            while True:
                resp = await self.call(req, job)
                try:
                    req = flow.send(resp)
                except StopIteration as done:
                    urls.append(done.value)
                    job.emit("uploaded", f"{role}: {media.describe()} → {done.value}")
                    break
        return urls

    def _lock(self) -> asyncio.Lock:
        if self._submit_lock is None:
            self._submit_lock = asyncio.Lock()
        return self._submit_lock

    async def _resume_submit(self, job: Job) -> TaskSnapshot:
        """A previous process died with this job's submit in flight: adopt the task it created, or submit
        it now if the host's list proves there is none."""
        job.fingerprint = job.fingerprint or ""
        sent_ms = int((job.timings["started"] or job.timings["created"] or time.time()) * 1000)
        async with self._lock(), self._submit_turn():
            snap = await reconcile.find_task(
                self, job, sent_ms, "the process that sent it ended before the answer", self._claimants
            )
        if snap is not None:
            return await self._accepted(job, snap)
        return await self._submit(job, await self._upload_all(job))

    async def _submit(self, job: Job, urls: list[str]) -> TaskSnapshot:
        req = self.provider.submit(job.model, job.request, urls)
        job.fingerprint = hashlib.sha256(json.dumps(req.json, sort_keys=True).encode()).hexdigest()
        rate = self.http.submit_rate
        assert rate is not None

        async def attempt(_n: int) -> Outcome:
            await rate.acquire()
            if job.status is not Status.SUBMITTING:
                # only now may the host have it: a crash before this leaves a QUEUED row (safe to send),
                # after it a SUBMITTING row (reconciled against the host's list on resume)
                job.set_status(Status.SUBMITTING)
            await job.durable()  # the SUBMITTING row is committed before the body leaves
            sent_ms = int(time.time() * 1000)
            self.stats["submits"] += 1
            try:
                resp = await self.http.send(req, timeout=self.submit_timeout)
            except NOT_SENT as exc:
                return Outcome.retry(f"{type(exc).__name__} before the request left")
            except AMBIGUOUS as exc:  # the body may have reached the host: find out, don't guess
                return await self._ambiguous(job, sent_ms, f"{type(exc).__name__} after the request left")
            if resp.status == 200:
                return Outcome.done(await self._accepted(job, self.provider.parse_submit(resp)))
            if resp.status in _SUBMIT_AMBIGUOUS:
                return await self._ambiguous(job, sent_ms, f"HTTP {resp.status}")
            if resp.status not in _SUBMIT_RETRYABLE:
                return Outcome.fail(lifecycle.no_task(self.provider.error(resp, "submit")))
            retry_after = parse_retry_after(resp.header("Retry-After"))
            if resp.status == 429 and retry_after is not None:
                rate.penalise(min(retry_after, self.retry.retry_after_cap_s))
            return Outcome.retry(f"HTTP {resp.status} (not accepted)", retry_after, resp)

        def give_up(out: Outcome, tries: int) -> TaskSnapshot:
            if out.value is not None:
                raise lifecycle.no_task(self.provider.error(out.value, "submit"))
            raise lifecycle.no_task(
                ApiError(f"submit not accepted after {tries} tries ({out.why})", host=self.provider.name)
            )

        # One submit in flight at a time per account (in this process and, through the log, across kernels):
        # an ambiguous one can then be matched to the single new task the host lists.
        async with self._lock(), self._submit_turn():
            return await retrying(
                attempt, self.retry, self.rng, give_up=give_up, on_retry=self._retry_event(job, "submit")
            )

    async def _ambiguous(self, job: Job, sent_ms: int, why: str) -> Outcome:
        snap = await reconcile.find_task(self, job, sent_ms, why, self._claimants)
        if snap is not None:
            return Outcome.done(await self._accepted(job, snap))
        return Outcome.retry(f"{why}; the host's task list shows no task from it")

    async def _accepted(self, job: Job, snap: TaskSnapshot) -> TaskSnapshot:
        job.task_id = snap.task_id
        job.request_id = snap.request_id or job.request_id
        job.timings["submitted"] = time.time()
        self._seen.add(snap.task_id)
        job.emit("submitted", f"task {snap.task_id}", task_id=snap.task_id, request_id=snap.request_id)
        # Observers (the experiment log) queue the task id's row; it is committed before any waiting on it.
        await job.durable()
        return snap

    async def _poll(self, job: Job, snap: TaskSnapshot) -> TaskSnapshot:
        assert job.task_id is not None
        expected = job.expected_run_s
        t0 = time.monotonic()
        last_poll = t0
        run_start = lifecycle.run_start(job, snap, None, t0)
        cancel_tries = 0
        history = tuple(job.run_history)
        said = False
        while not snap.status.terminal:
            now = time.monotonic()
            delay: float | None = None
            if job.cancel_requested and cancel_tries < 3 and not job.cancel_outcome:
                cancel_tries += 1
                await self._cancel_remote(job)
                if job.cancel_outcome == "cancelled":
                    delay = 0.0  # the host said yes: read its CANCELED now
            if delay is None:
                state = PollState(
                    polls=job.polls,
                    since_submit=(now - t0) / self.time_scale,
                    since_running=None if run_start is None else (now - run_start) / self.time_scale,
                    status=snap.status,
                    expected_run=expected,
                    history=history,
                )
                if not said:  # which policy polls this job, and why: once, in the job's events
                    said = True
                    job.emit("poll_policy", describe(self.poll_policy, state))
                delay = max(0.0, self.poll_policy.next_delay(state)) * self.time_scale
            board = self.board
            if board is not None:
                board.expect(job.task_id, delay)
            await self._nap(job, delay)
            if board is not None:
                if job.cancel_requested:  # its cancel is acted on at once, not in a batch
                    board.forget(job.task_id)
                elif await board.unchanged(job.task_id, snap.status):
                    job.polls += 1
                    last_poll = time.monotonic()
                    continue
            resp = await self.call(self.provider.query(job.task_id), job)
            job.polls += 1
            snap = self.provider.parse_query(resp, job.task_id)
            if run_start is None:
                run_start = lifecycle.run_start(job, snap, last_poll, time.monotonic())
            last_poll = time.monotonic()
            lifecycle.apply(job, snap)
        return snap

    async def _cancel_remote(self, job: Job) -> None:
        """Ask the host to cancel; `job.cancel_outcome` records its answer ("cancelled", "refused",
        "unsupported") and a "cancel" event says it in words (the log keeps it)."""
        req = self.provider.cancel(job.task_id) if self.provider.supports_cancel and job.task_id else None
        if req is None:
            job.cancel_outcome = "unsupported"
            job.emit(
                "cancel",
                f"{self.provider.name} has no cancel for a task it accepted: task {job.task_id} runs "
                f"to the end and is billed, so wanlab still downloads its video",
            )
            return
        try:
            resp = await self.call(req, job)
            self.provider.parse_cancel(resp)
            job.cancel_outcome = "cancelled"
            job.emit("cancel", f"task {job.task_id} cancelled on the host")
        except ApiError as exc:
            job.cancel_outcome = "refused"
            job.emit(
                "cancel",
                f"the host would not cancel task {job.task_id} ({exc.code or exc.status}: it is "
                f"probably running, hence billed); wanlab keeps polling and downloads the video",
            )
        except WanlabError as exc:
            job.emit("cancel", f"cancel request for task {job.task_id} failed ({exc}); trying again at the next poll")

    async def download(self, job: Job) -> Path:
        return await download.fetch_video(self, job)
