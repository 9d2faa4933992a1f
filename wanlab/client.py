"""The one module that does HTTP: upload → submit → poll → download, on the Lab's loop.

Rules it keeps:
- a submit is never blindly re-sent. An answer the host gave before accepting (429, 503, or a
  connection that never opened) is retried; a timeout or a dropped connection after the body left is
  ambiguous, and is reconciled against the host's task list (DashScope) or reported with the body's
  fingerprint (UnconfirmedSubmit) — never a second paid task;
- polls and downloads retry 429 / 5xx / transport errors with jittered backoff, honouring
  `Retry-After` (seconds or HTTP date) up to a cap, within a retry budget;
- the key goes only to the API host (httpx auth on requests marked `auth`), never to upload targets or
  result-download hosts.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncContextManager, Callable

import httpx

from .errors import ApiError, DownloadError, LostContact, UnconfirmedSubmit, WanlabError
from .jobs import Job
from .limits import Limits, RateLimiter
from .media import MediaStore
from .polling import HostCadence, PollPolicy, PollState
from .providers.base import HttpRequest, HttpResponse, Provider, Status, TaskSnapshot
from .retry import RetryPolicy, parse_retry_after
from .secret import Secret

log = logging.getLogger("wanlab")

# Transport errors that prove the request never reached the server: safe to re-send even a submit.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Answers a host gives before it accepts a submit (it did not create a task).
_SUBMIT_RETRYABLE = (429, 503)
# Answers after which a submit may or may not have created a task.
_SUBMIT_AMBIGUOUS = (500, 502, 504)


class _Bearer(httpx.Auth):
    """Adds the key at send time, so no request object of ours ever holds it."""

    def __init__(self, secret: Secret):
        self._secret = secret

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = f"Bearer {self._secret.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"_Bearer({self._secret!r})"


class ApiClient:
    def __init__(self, provider: Provider, secret: Secret, *, limits: Limits | None = None,
                 retry: RetryPolicy | None = None, poll: PollPolicy | None = None, time_scale: float = 1.0,
                 store: MediaStore | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: httpx.Timeout | float = httpx.Timeout(30.0, connect=10.0),
                 submit_timeout: float = 60.0, rng: random.Random | None = None,
                 known_task_ids: Callable[[], set[str]] | None = None,
                 submit_turn: Callable[[], AsyncContextManager[None]] | None = None,
                 claimants: Callable[[Job, float], list[tuple[float, str]]] | None = None):
        self.provider = provider
        self.secret = secret
        self.limits = limits or Limits.for_host(provider.name)
        self.retry = retry or RetryPolicy(time_scale=time_scale)
        self.poll_policy = poll or HostCadence()
        self.time_scale = time_scale
        self.store = store or MediaStore("wanlab-runs/media")
        self.submit_timeout = submit_timeout
        self._rng = rng or random.Random()
        self._transport = transport
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._auth = _Bearer(secret)
        self._submit_rate: RateLimiter | None = None
        self._query_rate: RateLimiter | None = None
        self._slots: asyncio.Semaphore | None = None
        self._submit_lock: asyncio.Lock | None = None
        self._seen: set[str] = set()
        self._known_task_ids = known_task_ids or (lambda: set())
        # across processes on one log: one submit in flight per account, and who else awaits a task
        self._submit_turn = submit_turn or contextlib.nullcontext
        self._claimants = claimants or (lambda job, since: [])
        self._wake: dict[str, asyncio.Event] = {}          # job id → set when the user asks to cancel
        self._tasks: dict[str, asyncio.Task] = {}
        self.stats = {"requests": 0, "retries": 0, "submits": 0, "reconciled": 0, "resubmits": 0}

    def __repr__(self) -> str:
        return f"ApiClient({self.provider.describe()}, key={self.secret.masked})"

    # Loop-bound objects are created lazily, on the loop that uses them.
    def _ensure(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(transport=self._transport, timeout=self._timeout,
                                           follow_redirects=True, trust_env=False)
            # Hosts count requests in sliding windows of unpublished exactness: an even drip (burst 1),
            # 5 % under the published rate; RateLimiter adds the margin against late arrivals.
            self._submit_rate = RateLimiter(self.limits.submits_per_s * 0.95, burst=1)
            self._query_rate = RateLimiter(self.limits.queries_per_s * 0.95, burst=1)
            self._slots = asyncio.Semaphore(self.limits.concurrent_jobs)
            self._submit_lock = asyncio.Lock()
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- one HTTP exchange -----------------------------------------------------------------------
    async def _send(self, req: HttpRequest, timeout: float | None = None) -> HttpResponse:
        http = self._ensure()
        self.stats["requests"] += 1
        kwargs: dict[str, Any] = {"headers": dict(req.headers), "params": req.params}
        if req.json is not None:
            kwargs["content"] = json.dumps(req.json).encode()
        elif req.files is not None:
            kwargs["data"], kwargs["files"] = req.data, req.files
        elif req.data is not None:
            kwargs["data"] = req.data
        elif req.content is not None:
            kwargs["content"] = req.content
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=min(10.0, timeout))
        resp = await http.request(req.method, req.url, auth=self._auth if req.auth else None, **kwargs)
        return HttpResponse(resp.status_code, dict(resp.headers), resp.content)

    async def call(self, req: HttpRequest, job: Job | None = None) -> HttpResponse:
        """An idempotent call (query, list, upload policy, cancel) with retries on 429/5xx/transport errors.
        Returns the final answer (which may still be an error status for the caller to parse)."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            limiter = self._query_rate if req.route in ("query", "list", "cancel") else None
            if limiter is not None:
                await limiter.acquire()
            retry_after: float | None = None
            try:
                resp = await self._send(req)
                if resp.status != 429 and resp.status < 500:
                    return resp
                retry_after = parse_retry_after(resp.header("Retry-After"))
                if resp.status == 429 and retry_after is not None and limiter is not None:
                    limiter.penalise(min(retry_after, self.retry.retry_after_cap_s))
                why = f"HTTP {resp.status}"
            except httpx.TransportError as exc:
                resp = None
                why = type(exc).__name__
            if attempt >= self.retry.max_attempts or time.monotonic() - started > self.retry.budget_s:
                if resp is not None:
                    return resp
                raise LostContact(f"{req.method} {req.route} to {self.provider.name} failed after {attempt} tries "
                                  f"({why})") from None
            delay = self.retry.delay(attempt, retry_after, self._rng)
            self.stats["retries"] += 1
            if job is not None:
                clamped = retry_after is not None and retry_after > self.retry.retry_after_cap_s
                job.emit("retry", f"{req.route}: {why}; retrying in {delay:.2f} s", route=req.route, attempt=attempt,
                         retry_after=retry_after, clamped=clamped)
            await asyncio.sleep(delay)

    # -- the job's life --------------------------------------------------------------------------
    async def run(self, job: Job, phase: str = "submit") -> Job:
        """Drive `job` to a terminal state, or detach it. Always ends with job.finish(); errors land on the job.

        `phase` says where a resumed job picks up: "submit" (never sent), "reconcile" (a submit was
        in flight when the process died), "poll" (the host has the task), "download".

        Terminal means the host said so: once a task may exist (a submit left, or the host accepted it),
        only the host's FAILED / CANCELED / UNKNOWN ends the row. Anything else — lost contact, 401/403
        after acceptance, a disk that cannot take the file, a bug — detaches the job: the row stays
        unfinished, with its reason, for `lab.resume()`."""
        self._ensure()
        assert self._slots is not None
        holding = False
        self._wake[job.id] = asyncio.Event()
        task = asyncio.current_task()
        if task is not None:
            self._tasks[job.id] = task
        if job.cancel_requested:
            self._wake[job.id].set()
        try:
            if phase in ("submit", "reconcile", "poll"):
                await self._slots.acquire()
                holding = True
            if phase == "submit":
                urls = await self._upload_all(job)
                snap = await self._submit(job, urls)
            elif phase == "reconcile":
                snap = await self._resume_submit(job)
            else:
                snap = self.provider.parse_query(await self.call(self.provider.query(job.task_id), job), job.task_id)
            job.apply(snap)
            snap = await self._poll(job, snap)
            if holding:
                self._slots.release()
                holding = False
            if snap.status is Status.SUCCEEDED:      # the job shows DOWNLOADING until the file is verified
                if job.cancel_requested and not job.cancel_outcome:
                    job.emit("cancel", f"task {job.task_id} had already finished (paid): downloaded anyway")
                await self.download(job)
                job.set_status(Status.SUCCEEDED)
        except asyncio.CancelledError:
            if job.cancel_requested and not (job.task_id or job.status is Status.SUBMITTING):
                job.set_status(Status.CANCELED, "cancelled before anything was sent")
            else:         # the Lab closed: what it asked for stays in the log for the next Lab
                where = f"task {job.task_id} was left on the host" if job.task_id else (
                    "its submit was in flight" if job.status is Status.SUBMITTING else "it was never sent")
                self._detach(job, WanlabError(f"the Lab closed while job {job.id} was {job.status}; {where}"))
        except WanlabError as exc:
            job.error = exc
            job.error_code = getattr(exc, "code", "") or type(exc).__name__
            if getattr(exc, "no_task", False) or not (job.task_id or job.status is Status.SUBMITTING):
                job.set_status(Status.FAILED, str(exc))        # the host refused it, or nothing left the machine
            elif isinstance(exc, UnconfirmedSubmit) and not self.provider.supports_list:
                job.set_status(Status.UNKNOWN, str(exc))       # no list to ever look at: the console is the way
            else:
                self._detach(job, exc)
        except Exception as exc:  # a full disk, an unwritable folder, a bug: must still end visibly
            err = WanlabError(f"{type(exc).__name__}: {exc}") if isinstance(exc, OSError) else \
                WanlabError(f"internal error: {exc!r}")
            job.error = err
            job.error_code = "wanlab.DiskError" if isinstance(exc, OSError) else "wanlab.InternalError"
            if job.task_id or job.status is Status.SUBMITTING:
                self._detach(job, err)
            else:
                job.set_status(Status.FAILED, str(err))
            if not isinstance(exc, OSError):
                log.exception("job %s crashed", job.id)
        finally:
            if holding:
                self._slots.release()
            self._wake.pop(job.id, None)
            self._tasks.pop(job.id, None)
            job.finish()
        return job

    def _detach(self, job: Job, exc: WanlabError) -> None:
        """The host has (or may have) this task and we could not finish it: keep the row unfinished, so
        lab.resume() — here or in another kernel — polls, reconciles or downloads it later."""
        job.error = exc
        job.error_code = job.error_code or getattr(exc, "code", "") or type(exc).__name__
        job.detached = True
        what = f"task {job.task_id}" if job.task_id else "its submit (the host may have created a task)"
        job.emit("detached", f"{exc} — while {job.status}; {what} stays in the log unfinished: lab.resume() "
                             f"picks it up")

    def request_cancel(self, job: Job) -> None:
        """On the loop thread: the user asked to stop. A job that has sent nothing is dropped here; one that
        may have a task is woken, so its poll loop cancels on the host within one step."""
        wake = self._wake.get(job.id)
        if wake is not None:
            wake.set()
        task = self._tasks.get(job.id)
        if task is not None and job.status is Status.QUEUED:
            task.cancel()                # status is read on this thread: nothing can have left

    async def _nap(self, job: Job, seconds: float) -> None:
        """Sleep between polls, cut short once by a cancel request (the poll loop then acts on it)."""
        wake = self._wake.get(job.id)
        if wake is None:
            await asyncio.sleep(seconds)
        elif wake.is_set():
            wake.clear()
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), seconds)
            wake.clear()

    async def _resume_submit(self, job: Job) -> TaskSnapshot:
        """A previous process died with this job's submit in flight: adopt the task it created, or submit
        it now if the host's list proves there is none."""
        assert self._submit_lock is not None
        job.fingerprint = job.fingerprint or ""
        sent_ms = int((job.timings["started"] or job.timings["created"] or time.time()) * 1000)
        async with self._submit_lock, self._submit_turn():
            snap = await self._reconcile(job, sent_ms, "the process that sent it ended before the answer")
        if snap is not None:
            return self._accepted(job, snap)
        return await self._submit(job, await self._upload_all(job))

    async def _upload_all(self, job: Job) -> list[str]:
        urls = []
        for role, media in job.request.media():
            if media.is_remote:
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

    async def _submit(self, job: Job, urls: list[str]) -> TaskSnapshot:
        assert self._submit_rate is not None and self._submit_lock is not None
        req = self.provider.submit(job.model, job.request, urls)
        body = json.dumps(req.json, sort_keys=True).encode()
        job.fingerprint = hashlib.sha256(body).hexdigest()
        attempt = 0
        # One submit in flight at a time per client: an ambiguous one can then be matched to the single
        # new task the host lists.
        async with self._submit_lock, self._submit_turn():
            while True:
                attempt += 1
                await self._submit_rate.acquire()
                if job.status is not Status.SUBMITTING:
                    # only now may the host have it: a crash before this leaves a QUEUED row (safe to send),
                    # after it a SUBMITTING row (reconciled against the host's list on resume)
                    job.set_status(Status.SUBMITTING)
                sent_ms = int(time.time() * 1000)
                retry_after: float | None = None
                self.stats["submits"] += 1
                try:
                    resp = await self._send(req, timeout=self.submit_timeout)
                except _NOT_SENT as exc:
                    resp, why = None, f"{type(exc).__name__} before the request left"
                except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                    # The body may have reached the host: find out, don't guess.
                    snap = await self._reconcile(job, sent_ms, f"{type(exc).__name__} after the request left")
                    if snap is not None:
                        return self._accepted(job, snap)
                    resp, why = None, f"{type(exc).__name__}; the host's task list shows no task from it"
                if resp is not None:
                    if resp.status == 200:
                        return self._accepted(job, self.provider.parse_submit(resp))
                    if resp.status not in _SUBMIT_RETRYABLE + _SUBMIT_AMBIGUOUS:
                        raise _no_task(self.provider.error(resp, "submit"))
                    if resp.status in _SUBMIT_AMBIGUOUS:
                        snap = await self._reconcile(job, sent_ms, f"HTTP {resp.status}")
                        if snap is not None:
                            return self._accepted(job, snap)
                        why = f"HTTP {resp.status}; the host's task list shows no task from it"
                    else:
                        retry_after = parse_retry_after(resp.header("Retry-After"))
                        if resp.status == 429 and retry_after is not None:
                            self._submit_rate.penalise(min(retry_after, self.retry.retry_after_cap_s))
                        why = f"HTTP {resp.status} (not accepted)"
                if attempt >= self.retry.max_attempts:
                    if resp is not None and resp.status in _SUBMIT_RETRYABLE:
                        raise _no_task(self.provider.error(resp, "submit"))
                    raise _no_task(ApiError(f"submit not accepted after {attempt} tries ({why})",
                                            host=self.provider.name))
                delay = self.retry.delay(attempt, retry_after, self._rng)
                self.stats["retries"] += 1
                job.emit("retry", f"submit: {why}; retrying in {delay:.2f} s", route="submit", attempt=attempt,
                         retry_after=retry_after,
                         clamped=retry_after is not None and retry_after > self.retry.retry_after_cap_s)
                await asyncio.sleep(delay)

    def _accepted(self, job: Job, snap: TaskSnapshot) -> TaskSnapshot:
        job.task_id = snap.task_id
        job.request_id = snap.request_id or job.request_id
        job.timings["submitted"] = time.time()
        self._seen.add(snap.task_id)
        # Observers (the experiment log) write the task id here, before any waiting.
        job.emit("submitted", f"task {snap.task_id}", task_id=snap.task_id, request_id=snap.request_id)
        return snap

    async def _reconcile(self, job: Job, sent_ms: int, why: str) -> TaskSnapshot | None:
        """After an ambiguous submit: find the task it created, prove there is none (returns None, so the
        caller may re-send), or raise UnconfirmedSubmit."""
        if not self.provider.supports_list:
            raise UnconfirmedSubmit(
                f"submit to {self.provider.name} ended ambiguously ({why}): the host may have created (and will "
                f"bill) a task, and it has no task list to check. Not re-sent. Request fingerprint "
                f"sha256:{job.fingerprint}; look for it in the host's console.", job.fingerprint or "")
        known = self._seen | self._known_task_ids()
        slack_ms = 120_000   # host and client clocks may disagree
        for look in range(3):
            if look:
                await asyncio.sleep(max(0.05, 1.0 * self.time_scale) * look)
            candidates = []
            page = 1
            while True:
                req = self.provider.list_tasks(job.model.id, page)
                assert req is not None
                resp = await self.call(req, job)
                items, more = self.provider.parse_list(resp)
                candidates += [t for t in items if t.task_id not in known and t.model == job.model.id
                               and (t.created_ms is None or t.created_ms >= sent_ms - slack_ms)]
                if not more or page >= 20:
                    break
                page += 1
            snaps = {}
            for t in candidates[:10]:
                snap = self.provider.parse_query(await self.call(self.provider.query(t.task_id), job), t.task_id)
                theirs = (snap.raw.get("output") or {}).get("orig_prompt") if isinstance(snap.raw, dict) else None
                if theirs is None or theirs == job.request.wire_prompt():   # unknown until it ends, or ours
                    snaps[t.task_id] = replace(snap, request_id=snap.request_id or t.request_id)
            candidates = [t for t in candidates if t.task_id in snaps]
            if len(candidates) > 1:
                candidates = self._by_rank(job, candidates, sent_ms - slack_ms)
            if len(candidates) == 1:
                self.stats["reconciled"] += 1
                t = candidates[0]
                job.emit("reconciled", f"submit ended ambiguously ({why}); the host lists task {t.task_id} "
                                       f"created then: adopted, not re-sent", task_id=t.task_id)
                return snaps[t.task_id]
            if len(candidates) > 1:
                raise UnconfirmedSubmit(
                    f"submit ended ambiguously ({why}) and the host lists {len(candidates)} unknown "
                    f"{job.model.id} tasks since then ({', '.join(c.task_id for c in candidates[:5])}); "
                    f"not re-sent. Fingerprint sha256:{job.fingerprint}", job.fingerprint or "")
        self.stats["resubmits"] += 1
        job.emit("reconciled", f"submit ended ambiguously ({why}); no new task on the host after 3 looks: "
                               f"safe to re-send")
        return None

    def _by_rank(self, job: Job, candidates: list, since_ms: float) -> list:
        """Several unknown tasks and several rows (in any process on this log) still waiting to learn their
        task id: submits to one account go one at a time (the submit turn), so the host created the tasks in
        the order the rows were sent. Match by rank when the counts agree; otherwise leave it ambiguous."""
        if any(t.created_ms is None for t in candidates):
            return candidates
        rows = self._claimants(job, since_ms / 1000) + [(job.timings["started"] or 0.0, job.id)]
        if len(rows) != len(candidates):
            return candidates
        rank = sorted(rows).index((job.timings["started"] or 0.0, job.id))
        return [sorted(candidates, key=lambda t: t.created_ms)[rank]]

    async def _poll(self, job: Job, snap: TaskSnapshot) -> TaskSnapshot:
        assert job.task_id is not None
        expected = job.expected_run or job.model.expected_latency(job.request.resolution,
                                                                   job.request.output_seconds())
        t0 = time.monotonic()
        last_poll = t0
        run_start = _run_start(job, snap, None, t0)
        cancel_tries = 0
        while not snap.status.terminal:
            now = time.monotonic()
            delay: float | None = None
            if job.cancel_requested and cancel_tries < 3 and not job.cancel_outcome:
                cancel_tries += 1
                await self._cancel_remote(job)
                if job.cancel_outcome == "cancelled":
                    delay = 0.0          # the host said yes: read its CANCELED now
            if delay is None:
                state = PollState(polls=job.polls, since_submit=(now - t0) / self.time_scale,
                                  since_running=None if run_start is None else (now - run_start) / self.time_scale,
                                  status=snap.status, expected_run=expected)
                delay = max(0.0, self.poll_policy.next_delay(state)) * self.time_scale
            await self._nap(job, delay)
            resp = await self.call(self.provider.query(job.task_id), job)
            job.polls += 1
            snap = self.provider.parse_query(resp, job.task_id)
            if run_start is None:
                run_start = _run_start(job, snap, last_poll, time.monotonic())
            last_poll = time.monotonic()
            job.apply(snap)
        return snap

    async def _cancel_remote(self, job: Job) -> None:
        """Ask the host to cancel; `job.cancel_outcome` records its answer ("cancelled", "refused",
        "unsupported") and a "cancel" event says it in words (the log keeps it)."""
        req = self.provider.cancel(job.task_id) if self.provider.supports_cancel and job.task_id else None
        if req is None:
            job.cancel_outcome = "unsupported"
            job.emit("cancel", f"{self.provider.name} has no cancel for a task it accepted: task {job.task_id} runs "
                               f"to the end and is billed, so wanlab still downloads its video")
            return
        try:
            resp = await self.call(req, job)
            self.provider.parse_cancel(resp)
            job.cancel_outcome = "cancelled"
            job.emit("cancel", f"task {job.task_id} cancelled on the host")
        except ApiError as exc:
            job.cancel_outcome = "refused"
            job.emit("cancel", f"the host would not cancel task {job.task_id} ({exc.code or exc.status}: it is "
                               f"probably running, hence billed); wanlab keeps polling and downloads the video")
        except WanlabError as exc:
            job.emit("cancel", f"cancel request for task {job.task_id} failed ({exc}); trying again at the next poll")

    # -- download --------------------------------------------------------------------------------
    async def download(self, job: Job) -> Path:
        """Stream the result to disk, resuming with Range after a cut, then verify length and that it is
        a playable MP4. The key is never sent (result URLs are pre-signed, on another host)."""
        from .video import probe_file

        if not job.video_url:
            raise DownloadError(f"task {job.task_id} SUCCEEDED without a video URL")
        part = self.store.partial(job.id)
        http = self._ensure()
        started = time.monotonic()
        attempt = 0
        total: int | None = None
        part.unlink(missing_ok=True)
        while True:
            attempt += 1
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            why = ""
            retry_after = None
            try:
                async with http.stream("GET", job.video_url, headers=headers) as resp:
                    if resp.status_code in (401, 403, 404, 410):
                        body = (await resp.aread())[:300].decode("utf-8", "replace")
                        expired = "expire" in body.lower()
                        raise DownloadError(
                            f"result URL for task {job.task_id} answered HTTP {resp.status_code}"
                            + (": the link expired (hosts keep result URLs 24 h)" if expired else f": {body}"))
                    if resp.status_code == 429 or resp.status_code >= 500:
                        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                        raise _Retry(f"HTTP {resp.status_code}")
                    if resp.status_code == 206 and have:
                        mode = "ab"
                        crange = resp.headers.get("Content-Range", "")
                        if "/" in crange and crange.rsplit("/", 1)[1].isdigit():
                            total = int(crange.rsplit("/", 1)[1])
                    else:
                        mode = "wb"   # the server ignored Range: start over
                        have = 0
                        if resp.headers.get("Content-Length", "").isdigit():
                            total = int(resp.headers["Content-Length"])
                    with open(part, mode) as fh:
                        async for chunk in resp.aiter_bytes():   # as received: a cut keeps what arrived
                            fh.write(chunk)
                size = part.stat().st_size
                if total is not None and size < total:
                    raise _Retry(f"got {size} of {total} bytes")
                break
            except (_Retry, httpx.TransportError) as exc:
                why = str(exc) if isinstance(exc, _Retry) else type(exc).__name__
            if attempt >= self.retry.max_attempts or time.monotonic() - started > self.retry.budget_s:
                raise LostContact(f"download of task {job.task_id}'s video failed after {attempt} tries ({why}); "
                                  f"the URL stays valid 24 h: lab.resume() can fetch it later")
            got = part.stat().st_size if part.exists() else 0
            job.emit("retry", f"download: {why}; resuming at byte {got}", route="download", attempt=attempt)
            self.stats["retries"] += 1
            await asyncio.sleep(self.retry.delay(attempt, retry_after, self._rng))
        size = part.stat().st_size
        if total is not None and size != total:
            raise DownloadError(f"download of task {job.task_id}: {size} bytes on disk, {total} announced")
        try:
            info = await asyncio.to_thread(probe_file, part)
        except ValueError as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(f"task {job.task_id}'s file is not a playable MP4 ({exc})") from None
        job.sha256 = info.pop("sha256")
        final = self.store.ingest(part, job.sha256)
        job.video_path = final
        job.bytes = size
        job.video_info = info
        job.timings["downloaded"] = time.time()
        job.emit("downloaded", f"{size} bytes → {final}", path=str(final))
        return final


class _Retry(Exception):
    pass


def _no_task(exc: WanlabError) -> WanlabError:
    """Marks an error as the host's proof that the submit created no task: the job may end FAILED."""
    exc.no_task = True   # type: ignore[attr-defined]
    return exc


def _host_clock(value: str | None) -> float | None:
    """A DashScope time ("2026-04-02 14:13:41.783", zone unstated) as seconds on a naive UTC reading."""
    if not value:
        return None
    try:
        return datetime.strptime(value[:23], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _run_start(job: Job, snap: TaskSnapshot, prev_poll: float | None, this_poll: float) -> float | None:
    """When the task began running, on time.monotonic(). The host's scheduled_time is put on our clock
    through its submit_time, which happened when our submit was accepted: no time zone needed. Without
    host times, the midpoint between the poll that last saw PENDING and this one."""
    if snap.status is Status.PENDING:
        return None
    sched, sub = _host_clock(snap.scheduled_time), _host_clock(snap.submit_time or job.host_times["submit_time"])
    accepted = job.timings["submitted"]
    if sched is not None and sub is not None and accepted is not None:
        wall = accepted + (sched - sub)
        return this_poll - max(0.0, time.time() - wall)
    if snap.status is Status.RUNNING or snap.status.terminal:
        return this_poll if prev_poll is None else (prev_poll + this_poll) / 2
    return None

