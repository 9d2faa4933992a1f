"""`Lab`: the notebook user's handle. It picks the host, owns the private loop and the client, turns
requests into jobs, and hands every job's events to observers (the experiment log, the UI)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import os
import signal
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import httpx

from . import catalog, checks, cost
from ._loop import LoopThread
from .catalog import ModelSpec, PriceTable, default_prices
from .client import ApiClient
from .cost import Budget, Estimate
from .errors import CatalogError, ConfigError, WanlabError
from .inputs import Media
from .jobs import Job, JobEvent
from .limits import Limits
from .log import RESULT_TTL_S, TERMINAL, ExperimentLog, default_home, describe_owner
from .media import MediaStore
from .polling import PollPolicy
from .providers import make_provider
from .providers.base import Status
from .requests import Request, from_record, to_record
from .retry import RetryPolicy
from .secret import Secret

if TYPE_CHECKING:
    from .sweep import Sweep

KEY_ENV = {"dashscope": "DASHSCOPE_API_KEY", "wavespeed": "WAVESPEED_API_KEY"}
SIM_KEY = "sk-wanlab-sim-local"   # the embedded sim accepts any non-empty key


class Lab:
    """Where generations run.

    `Lab()` reads the environment: `WANLAB_PROVIDER` (dashscope | wavespeed | sim), `DASHSCOPE_API_KEY`
    with `DASHSCOPE_REGION`, `WAVESPEED_API_KEY`; with no key it starts the embedded simulator and says
    so. Explicitly: `Lab(provider="dashscope", api_key=…, region="beijing")`, `Lab(provider="wavespeed")`,
    `Lab(provider="sim", protocol="wavespeed", time_scale=0.01)`, or any host at `base_url=`.

    Runs are logged to `home/runs.sqlite` (`home` defaults to `$WANLAB_HOME` or ./wanlab-runs) and
    videos land in `home/media`; on start, unfinished runs of this host are resumed (`resume=False`
    to skip). `budget=` refuses any run whose estimate would pass it.
    """

    def __init__(self, provider: str | None = None, *, api_key: str | None = None, region: str | None = None,
                 base_url: str | None = None, protocol: str | None = None, time_scale: float | None = None,
                 limits: Limits | None = None, retry: RetryPolicy | None = None, poll: PollPolicy | None = None,
                 home: str | os.PathLike | None = None, media_dir: str | os.PathLike | None = None,
                 log: "ExperimentLog | str | os.PathLike | None" = None, budget: float | None = None,
                 prices: PriceTable | None = None, resume: bool = True,
                 transport: httpx.AsyncBaseTransport | None = None, submit_timeout: float = 60.0,
                 sim_options: dict[str, Any] | None = None, quiet: bool = False):
        # every keyword checked before a sim starts or a file is made, so a refused Lab leaks nothing
        budget, time_scale, submit_timeout = checks.lab_arguments(
            provider=provider, region=region, base_url=base_url, protocol=protocol, time_scale=time_scale,
            limits=limits, retry=retry, poll=poll, home=home, media_dir=media_dir, log=log, budget=budget,
            prices=prices, resume=resume, transport=transport, submit_timeout=submit_timeout,
            sim_options=sim_options, quiet=quiet)
        provider = provider or os.environ.get("WANLAB_PROVIDER") or None
        if provider is None:
            if api_key and not region:
                raise ConfigError("api_key given without provider=: say provider='dashscope' or 'wavespeed'")
            if api_key:                      # a key and a region: only DashScope has regions
                provider = "dashscope"
            elif os.environ.get(KEY_ENV["dashscope"]):
                provider = "dashscope"
            elif os.environ.get(KEY_ENV["wavespeed"]):
                provider = "wavespeed"
            else:
                provider = "sim"
                if not quiet:
                    print("wanlab: no DASHSCOPE_API_KEY or WAVESPEED_API_KEY set — using the embedded simulator "
                          "(offline, free, simulated videos).", file=sys.stdout)
        if provider not in ("dashscope", "wavespeed", "sim"):
            raise ConfigError(f"provider={provider!r}; use 'dashscope', 'wavespeed' or 'sim'")
        self.sim = None
        self.closed_reason = ""
        self.resumed: list[Job] = []
        self.left_to_others: list[str] = []
        try:
            self._setup(provider, api_key, region, base_url, protocol, time_scale, limits, retry, poll, home,
                        media_dir, log, budget, prices, transport, submit_timeout, sim_options, quiet)
            owned_log = None if isinstance(log, ExperimentLog) else self.log
            self._finalizer = weakref.finalize(self, _shutdown, self._loop, self.client, self.sim, self.jobs,
                                               owned_log)
            if resume:
                self.resume(report=not quiet)
        except BaseException:
            # a Lab that could not start leaves nothing behind: no sim thread, no loop, no open log
            if getattr(self, "_loop", None) is not None:
                self._loop.close()
            if self.sim is not None:
                self.sim.stop()
            if getattr(self, "log", None) is not None and not isinstance(log, ExperimentLog):
                self.log.close()
            raise

    def _setup(self, provider: str, api_key: str | None, region: str | None, base_url: str | None,
               protocol: str | None, time_scale: float | None, limits: Limits | None, retry: RetryPolicy | None,
               poll: PollPolicy | None, home: Any, media_dir: Any, log: Any, budget: float | None,
               prices: PriceTable | None, transport: Any, submit_timeout: float, sim_options: dict[str, Any] | None,
               quiet: bool) -> None:
        if provider == "sim":
            self.protocol = protocol or "dashscope"
            if self.protocol not in KEY_ENV:
                raise ConfigError(f"protocol={protocol!r}; the sim speaks 'dashscope' or 'wavespeed'")
            self.region = (region or "singapore") if self.protocol == "dashscope" else ""
            self.time_scale = 0.01 if time_scale is None else time_scale
            self.secret = Secret(api_key or SIM_KEY)
            self.host = "sim"
            # The sim enforces DashScope's published limits on both protocols by default.
            limits = limits or Limits.for_host("dashscope")
        else:
            self.protocol = provider
            self.region = (region or os.environ.get("DASHSCOPE_REGION") or "singapore") \
                if provider == "dashscope" else (region or "")
            self.time_scale = 1.0 if time_scale is None else time_scale
            self.secret = Secret(api_key) if api_key else Secret(env=KEY_ENV[provider])
            if not self.secret:
                raise ConfigError(f"provider={provider!r} needs an API key: set {KEY_ENV[provider]} or pass "
                                  f"api_key=…; or use provider='sim' to work offline")
            self.host = provider
        if provider == "sim" and base_url is None:
            make_provider(self.protocol, self.region or None, "http://127.0.0.1:1")   # checks region first
        else:
            self.provider = make_provider(self.protocol, self.region or None, base_url)
        self.home = Path(home) if home is not None else default_home()
        self.log = log if isinstance(log, ExperimentLog) else ExperimentLog(log or self.home / "runs.sqlite")
        self.store = MediaStore(media_dir if media_dir is not None else self.home / "media")
        self.prices = prices or default_prices()
        self.budget = Budget(budget)
        if provider == "sim" and base_url is None:     # last: nothing above can fail and leave it running
            from .sim import SimServer

            self.sim = SimServer(time_scale=self.time_scale, **(sim_options or {})).start()
            base_url = self.sim.dashscope_url(self.region) if self.protocol == "dashscope" else self.sim.wavespeed_url
            self.provider = make_provider(self.protocol, self.region or None, base_url)
        self._loop = LoopThread()
        self.client = ApiClient(self.provider, self.secret, limits=limits, retry=retry, poll=poll,
                                time_scale=self.time_scale, store=self.store, transport=transport,
                                submit_timeout=submit_timeout, known_task_ids=self.log.known_task_ids,
                                submit_turn=self._submit_turn, claimants=self._claimants)
        self.jobs: list[Job] = []
        self._observers: list[Callable[[Job, JobEvent], None]] = []

    # -- models ----------------------------------------------------------------------------------
    def resolve(self, req: Request) -> ModelSpec:
        """The exact model this Lab's host runs for `req`, checked against it. Raises before any I/O."""
        if not isinstance(req, Request):
            raise TypeError(f"expected a wanlab request (T2V, I2V, FLF2V, Grid9, Ref2V, Edit), got "
                            f"{type(req).__name__}")
        if req.model is not None:
            spec = catalog.get_model(req.model, host=self.protocol)
        else:
            spec = catalog.default_model(self.protocol, req.mode, self.region or None)
        if self.protocol == "dashscope" and self.region not in spec.regions:
            note = " (Virginia serves WAN 2.6 only)" if self.region == "virginia" else ""
            served = ", ".join(spec.regions)
            raise CatalogError(f"{spec.id} is not served in DashScope {self.region}{note}; it is served in {served}")
        req.validate_for(spec)
        return spec

    def models(self, mode: str | None = None) -> list[ModelSpec]:
        return catalog.models(host=self.protocol, mode=mode, region=self.region or None)

    def sweep(self, base: Request, *, study: str | None = None, reuse: bool = True, **axes: Any) -> "Sweep":
        """The grid of `base` over `axes` (resolution=[…], duration=[…], seed=[…], prompt=[…], …):
        `.estimate()`, `.run(budget=…, max_concurrency=…)`, `.df`, `.show()`."""
        from .sweep import Sweep

        return Sweep(self, base, study=study, reuse=reuse, **axes)

    # -- running ---------------------------------------------------------------------------------
    def observe(self, fn: Callable[[Job, JobEvent], None]) -> None:
        """Call `fn(job, event)` for every event of every job submitted from now on (on the loop thread)."""
        self._observers.append(fn)

    def estimate(self, req: "Request | Iterable[Request] | Any") -> Estimate:
        """What a request, a list of them or a sweep (anything with `.requests` or `.expand()`) would cost on
        this Lab's host, before anything is sent: catalog unit price × billed seconds for the resolution, per
        model and host; `str(estimate)` names the price table's source and date. An unknown price is
        reported as unknown (amount None), never as zero."""
        if isinstance(req, Request):
            reqs = [req]
        elif hasattr(req, "requests") and not callable(req.requests):
            reqs = list(req.requests)
        elif callable(getattr(req, "expand", None)):
            reqs = list(req.expand())
        else:
            reqs = list(req)
        for r in reqs:
            if not isinstance(r, Request):
                raise TypeError(f"estimate() takes requests; got {type(r).__name__}")
        return cost.total(cost.estimate(r, self.resolve(r), self.prices, self.region or None) for r in reqs)

    def submit(self, req: Request, *, study: str | None = None, tags: dict[str, Any] | None = None,
               budget: Budget | None = None, fresh: bool = False) -> Job:
        """Validate, price, log, then start the job in the background; returns at once.

        A run is identified by what it asks for: a seeded request that matches an unfinished run in the log
        (running here, resumed, held by another live kernel, or left by a dead one) is attached to — the
        returned job follows that run, nothing is sent again. An unseeded request, or `fresh=True`, is a
        new paid sample.

        Raises `BudgetExceeded` (nothing sent, nothing logged) when the estimate would take the Lab's
        budget — or `budget`, a sweep's own `cost.Budget` — past its limit, or when actual spend has reached it."""
        self._check_open()
        spec = self.resolve(req)
        if tags is not None:
            tags = checks.json_value("tags", tags, where="submit")
        if study is not None:
            study = checks.check_text("study", study, maximum=200, where="submit")
        attach = req.seed is not None and not fresh
        job = self._new_job(req, spec)
        est = cost.estimate(req, spec, self.prices, self.region or None)
        params, inputs = to_record(req, self._keep)
        budgets = [b for b in (self.budget, budget) if b is not None]
        admitted: list[Budget] = []
        try:
            for b in budgets:
                b.admit(job.id, est)
                admitted.append(b)
            job.budgets = admitted
            job.est_cost, job.currency = est.amount, est.currency
            existing = self.log.record_created(job, params, inputs, attach=attach, study=study,
                                               base_url=self.provider.base_url, est_cost=est.amount,
                                               currency=est.currency, price_source=est.source,
                                               tags=json.dumps(tags) if tags else None)
        except BaseException:
            for b in admitted:
                b.settle(job.id, None)       # release the reservation: nothing was sent
            raise
        if existing is None:
            return self._start(job, "submit")
        for b in admitted:
            b.settle(job.id, None)           # nothing new is spent: the run it attaches to is counted already
        return self._attach(existing)

    def _attach(self, row: dict[str, Any]) -> Job:
        """A handle on the logged, unfinished run `row`: this Lab's own job when it runs here; the run itself,
        resumed, when its owner is gone; else a follower that waits on the row another kernel is driving
        (and takes it over should that kernel die)."""
        for job in self.jobs:
            if job.id == row["run_id"] and not job.done:
                return job
        job = self._job_from_row(row)
        if job is None:
            raise WanlabError(f"run {row['run_id']} in the log matches this request but cannot be rebuilt; "
                              f"pass fresh=True to send a new one")
        if self.log.claim(row["run_id"]):
            job.attached = "resumed: its owner is gone"
            self._reserve(job, _phase(row))
            job.emit("resumed", f"attached to logged run {job.id}: resumed at phase {_phase(row)}")
            return self._start(job, _phase(row))
        holder = describe_owner(self.log.holder(row["run_id"]))
        job.attached = f"following: {holder} is running it"
        job.emit("attached", f"the same request is running in another kernel ({holder}): following its run "
                             f"{job.id}, nothing sent")
        self.jobs.append(job)
        for fn in self._observers:
            job.observe(fn)
        fut = self._loop.submit(self._follow(job))
        job._cancel_hook = lambda: self._loop.call_soon(fut.cancel)
        return job

    async def _follow(self, job: Job) -> None:
        """Wait on a row another live process drives; mirror its end. If that process dies, take the run over."""
        try:
            while True:
                row = self.log.get(job.id)
                if row["status"] in TERMINAL:
                    _mirror(job, row, self.store)
                    break
                if self.log.claim(job.id):
                    fresh = self._job_from_row(row)
                    job.task_id, job.timings = fresh.task_id, fresh.timings
                    job.status, job.polls = fresh.status, fresh.polls
                    job.attached = "taken over: the kernel that ran it is gone"
                    self._reserve(job, _phase(row))
                    job.observe(self._settle)
                    job.observe(self._log_writer)
                    self.log.hold(job.id)
                    job.emit("resumed", f"the kernel that ran {job.id} is gone: taken over at phase {_phase(row)}")
                    await self.client.run(job, _phase(row))
                    return
                await asyncio.sleep(min(1.0, self.log.lease_s / 8))
        except asyncio.CancelledError:
            job.set_status(job.status, "stopped following (the run goes on in the kernel that owns it)")
        finally:
            job.finish()

    def _new_job(self, req: Request, spec: ModelSpec, run_id: str | None = None) -> Job:
        job = Job(req, spec, host=self.host, region=self.region, run_id=run_id)
        job.protocol = self.protocol
        return job

    def _start(self, job: Job, phase: str) -> Job:
        job.expected_run = self._run_time_history(job)
        job.observe(self._settle)          # cost first, so the log's terminal write includes it
        job.observe(self._log_writer)
        self.log.hold(job.id)              # heartbeat: this process keeps the row's lease while the job runs
        for fn in self._observers:
            job.observe(fn)
        self.jobs.append(job)
        self._loop.submit(self.client.run(job, phase))
        job._cancel_hook = lambda: self._loop.call_soon(self.client.request_cancel, job)
        return job

    def _log_writer(self, job: Job, ev: JobEvent) -> None:
        """The log's observer, made loud: a write that fails (disk full, read-only) is on the job, in the
        wanlab logger (stderr by default) and warned about where the user waits — never silent."""
        if ev.kind == "log_error":
            return
        try:
            self.log.observe(job, ev)
        except Exception as exc:
            first = job.log_error is None
            job.log_error = exc
            job.emit("log_error", f"the experiment log {self.log.path} could not record {ev.kind}: {exc}")
            if first:
                import logging

                logging.getLogger("wanlab").error("experiment log %s: cannot record job %s (%s); its task id %s is "
                                                  "in memory only", self.log.path, job.id, exc, job.task_id)

    def _check_open(self) -> None:
        if self.closed:
            raise WanlabError("this Lab is closed: nothing was logged or sent; create a new Lab()")

    @contextlib.asynccontextmanager
    async def _submit_turn(self) -> Any:
        """One submit in flight per account across every kernel on this log (see ApiClient._by_rank)."""
        key = hashlib.sha256(self.secret.reveal().encode()).hexdigest()[:16]
        scope = f"submit|{self.protocol}|{self.provider.base_url}|{key}"
        token = f"{self.log.owner}#{id(self):x}"
        hold = self.client.submit_timeout * 3 + 300    # a submit, its retries and a reconciliation
        while not self.log.try_lock(scope, token, hold):
            await asyncio.sleep(0.02)
        try:
            yield
        finally:
            self.log.unlock(scope, token)

    def _claimants(self, job: Job, since: float) -> list[tuple[float, str]]:
        return self.log.submitting(job.model.id, since, exclude=job.id)

    def _reserve(self, job: Job, phase: str) -> None:
        """A resumed run may already be running (and billed) on the host: count it in the budget."""
        self.budget.reserve(job.id, job.est_cost)
        job.budgets = [self.budget]

    def _run_time_history(self, job: Job, at_least: int = 3) -> float | None:
        """Median host run time of this host's successful runs like `job` (host seconds), once there are
        a few: the poll policy's prior then follows what the host really does, not the catalog's guess."""
        runs = sorted(self.log.similar("run_s", model=job.model.id, resolution=job.request.resolution,
                                       duration=job.request.duration, host=self.host))
        return runs[len(runs) // 2] / self.time_scale if len(runs) >= at_least else None

    def _keep(self, media: Media) -> str:
        ext = Path(media.name).suffix or {"image": ".png", "video": ".mp4", "audio": ".wav"}[media.kind]
        return str(self.store.put_bytes(media.data or b"", ext))

    def _settle(self, job: Job, ev: JobEvent) -> None:
        """At the end: the actual cost (from the host's usage) replaces the reservation in the budget(s).
        FAILED, or never scheduled on the host: not billed, 0. Cancelled or unknown after it ran: the estimate,
        assumed billed."""
        if ev.kind != "status" or not job.status.terminal or job.cost is not None:
            return
        basis = ""
        if job.status is Status.SUCCEEDED:
            amount, currency, basis = cost.actual_for(job, self.prices, self.region or None)
            if amount is None:          # no price row: keep the estimate rather than count it as free
                amount, basis = job.est_cost, "estimate (no price row for the billed seconds)"
        elif job.status is Status.FAILED or job.timings["scheduled"] is None:
            amount, currency, basis = 0.0, job.currency, "not billed (failed or never ran)"
        else:
            amount, currency = job.est_cost, job.currency   # cancelled/unknown after it ran: assume billed
            basis = f"estimate: {job.status} after it ran, assumed billed"
        job.cost, job.currency, job.cost_basis = amount, currency or job.currency, basis
        for b in getattr(job, "budgets", None) or [self.budget]:
            b.settle(job.id, amount)

    @property
    def spent(self) -> float:
        return self.budget.spent

    def resume(self, report: bool = False) -> list[Job]:
        """Pick up this host's unfinished runs from the log (a kernel restart, a crash): poll, download,
        reconcile, or submit what never left. Runs older than the host's 24 h window become UNKNOWN, with
        the reason. A run whose owner lives (another kernel, or a job of this Lab) is left to it; a dead
        owner's runs are taken at once on this machine, after their lease on another. `lab.resumed` and
        `lab.left_to_others` say which; with `report`, one line says it too."""
        self._check_open()
        jobs = []
        now = time.time()
        mine = {j.id for j in self.jobs if not j.done}
        others: dict[str, int] = {}
        for row in self.log.unfinished():
            if row["run_id"] in mine:
                continue
            if row["protocol"] != self.protocol or (row["region"] or "") != self.region:
                continue
            if row["base_url"] != self.provider.base_url:
                if row["host"] == "sim" and self.host == "sim" and self.log.claim(row["run_id"]):
                    self._end_row(row, "wanlab.SimGone", "the embedded simulator that ran this task has stopped")
                continue
            if not self.log.claim(row["run_id"]):
                holder = describe_owner(self.log.holder(row["run_id"]))
                others[holder] = others.get(holder, 0) + 1
                self.left_to_others.append(row["run_id"])
                continue
            age = now - (row["submitted"] or row["created"])
            if age > RESULT_TTL_S:
                if row["task_id"]:
                    why = (f"submitted {age / 3600:.0f} h ago: past the host's 24 h window for task ids and "
                           f"result URLs")
                elif row["status"] == "SUBMITTING":
                    why = (f"its submit was in flight {age / 3600:.0f} h ago and the host's task list no longer "
                           f"covers that time: it may have run (and been billed); not re-sent")
                else:
                    why = (f"queued {age / 3600:.0f} h ago and never sent; not sent automatically after 24 h: "
                           f"lab.rerun({row['run_id']!r}) sends it")
                self._end_row(row, "wanlab.Expired", why)
                continue
            job = self._job_from_row(row)
            if job is None:
                continue
            phase = _phase(row)
            if phase == "submit":
                try:                    # never sent: it spends only if the budget admits it now
                    self.budget.admit(job.id, Estimate(job.est_cost, job.currency, 0.0, "the log's estimate"))
                except cost.BudgetExceeded as exc:
                    self._end_row(row, "wanlab.BudgetExceeded", f"not sent on resume: {exc}", status="CANCELED")
                    continue
                job.budgets = [self.budget]
            else:
                self._reserve(job, phase)
            job.emit("resumed", f"resumed from the log at phase {phase}")
            jobs.append(self._start(job, phase))
        self.resumed += jobs
        if report and (jobs or others):
            phases = {}
            for j in jobs:
                phases[str(j.status)] = phases.get(str(j.status), 0) + 1
            said = [f"resumed {len(jobs)} unfinished run(s) from {self.log.path} "
                    f"({', '.join(f'{n} {k}' for k, n in sorted(phases.items()))})"] if jobs else []
            said += [f"left {n} to the live kernel that runs them ({who})" for who, n in others.items()]
            print("wanlab: " + "; ".join(said), file=sys.stdout)
        return jobs

    def _job_from_row(self, row: dict[str, Any]) -> Job | None:
        """A Job for a logged run, as the log left it; None (and the row marked FAILED) if it cannot be rebuilt."""
        try:
            req = from_record(row["mode"], row, json.loads(row["params"] or "{}"), json.loads(row["inputs"] or "{}"))
            spec = catalog.get_model(row["model"], host=self.protocol)
        except (WanlabError, ValueError, OSError) as exc:
            self.log.update(row["run_id"], status="FAILED", error_code="wanlab.CannotResume",
                            error_message=f"cannot rebuild the request: {exc}", claimed_until=0.0)
            return None
        job = self._new_job(req, spec, run_id=row["run_id"])
        for key in ("created", "started", "submitted", "scheduled"):
            job.timings[key] = row[key]
        job.task_id, job.request_id = row["task_id"], row["request_id"]
        job.est_cost, job.currency = row["est_cost"], row["currency"] or ""
        job.polls = row["polls"] or 0
        phase = _phase(row)
        if phase == "poll":
            job.status = Status(row["status"]) if row["status"] in ("PENDING", "RUNNING") else Status.PENDING
        elif phase == "reconcile":
            job.status = Status.SUBMITTING
        return job

    def _end_row(self, row: dict[str, Any], code: str, why: str, status: str = "UNKNOWN") -> None:
        self.log.update(row["run_id"], status=status, error_code=code, error_message=why, claimed_until=0.0,
                        ended=row["ended"] or time.time())

    def rerun(self, run_id: str, **changes: Any) -> Job:
        """Submit a logged run again — same request and seed unless `changes` say otherwise
        (`lab.rerun(run_id, resolution="1080P")`). Local inputs come back from the media store. The new
        run is logged under the same study, tagged with the run it reproduces."""
        checks.rerun_arguments(self.log, run_id, changes)
        row = self.log.get(run_id)
        req = from_record(row["mode"], row, json.loads(row["params"] or "{}"), json.loads(row["inputs"] or "{}"))
        if req.seed is None and "seed" not in changes:
            raise WanlabError(f"run {run_id} has no seed in the log (the host did not report the one it drew): "
                              f"its video cannot be reproduced; pass seed=… to rerun it with a chosen seed")
        tags = json.loads(row["tags"]) if row["tags"] else {}
        if not isinstance(tags, dict):
            tags = {"tags": tags}
        tags["rerun_of"] = run_id
        return self.submit(req.replace(**changes) if changes else req, study=row["study"], tags=tags)

    async def run(self, req: Request, timeout: float | None = None, *, fresh: bool = False) -> Job:
        """`await lab.run(req)` from any event loop (a notebook cell, pytest-asyncio, a script's).
        The kernel's stop button (SIGINT), `timeout=`, or cancelling the awaiting task cancels the job —
        on the host where the host can; a task the host would not cancel is still downloaded."""
        job = self.submit(req, fresh=fresh)
        with _stop_button(job) as pressed:
            try:
                return await asyncio.wait_for(job._await(), timeout)
            except asyncio.TimeoutError:
                job.cancel()
                raise TimeoutError(f"job {job.id} not done after {timeout} s; cancelled") from None
            except asyncio.CancelledError:
                job.cancel()
                if pressed:
                    raise KeyboardInterrupt(f"stopped: job {job.id} cancelled ({job.status}); job.events say what "
                                            f"the host answered") from None
                raise

    def run_sync(self, req: Request, timeout: float | None = None, *, fresh: bool = False) -> Job:
        """Block until the job ends. An interrupt (Ctrl-C, the kernel's stop button) or the timeout cancels
        the job."""
        job = self.submit(req, fresh=fresh)
        try:
            return job.result(timeout)
        except KeyboardInterrupt:
            job.cancel()
            raise
        except concurrent.futures.TimeoutError:
            job.cancel()
            raise TimeoutError(f"job {job.id} not done after {timeout} s; cancelled") from None

    def wait(self, jobs: list[Job] | None = None, timeout: float | None = None) -> list[Job]:
        """Block until the given jobs (default: all of this Lab's) end; returns them."""
        jobs = list(self.jobs if jobs is None else jobs)
        concurrent.futures.wait([j._done for j in jobs], timeout)
        return jobs

    # -- notebook UI (wanlab.ui owns the widgets; these are the one-line entry points) --------------
    def form(self, **defaults: Any) -> Any:
        """An ipywidgets form for every WAN mode, with live job cards."""
        from .ui import form

        return form(self, **defaults)

    def card(self, job: Job) -> Any:
        """A live job card widget for `job`."""
        from .ui import card

        return card(self, job)

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the loop (tasks still running on the host are left there, their rows resumable at once by
        another Lab), the embedded sim, and the log this Lab opened (checkpointed into one file)."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.provider.describe()
        if self.sim is not None:
            where = f"embedded sim, {self.protocol} protocol at {self.provider.base_url}"
        return f"Lab({where}, key={self.secret.masked}, jobs={len(self.jobs)})"


@contextlib.contextmanager
def _stop_button(job: Job) -> Any:
    """While a cell awaits `job` on the main thread's loop, the kernel's interrupt (SIGINT) cancels the job
    and the await. Without this the signal never reaches a cell suspended in `await` (ipykernel #881) and the
    task keeps running, and billing, until it ends. Yields a list that is non-empty once the button was pressed."""
    pressed: list[bool] = []
    task = asyncio.current_task()
    if threading.current_thread() is not threading.main_thread() or task is None:
        yield pressed
        return
    loop = asyncio.get_running_loop()

    def on_interrupt(signum: int, frame: Any) -> None:
        pressed.append(True)
        job.cancel()
        loop.call_soon_threadsafe(task.cancel)    # wakes the loop from its select()

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except (ValueError, OSError):                 # not settable here: no stop button, nothing broken
        yield pressed
        return
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def _phase(row: dict[str, Any]) -> str:
    """Where a logged, unfinished run picks up."""
    if row["task_id"]:
        return "poll"
    return "reconcile" if row["status"] == "SUBMITTING" else "submit"


def _mirror(job: Job, row: dict[str, Any], store: MediaStore) -> None:
    """Copy a finished run's outcome from its log row onto a job that followed it."""
    from .errors import JobFailed

    job.task_id, job.request_id = row["task_id"], row["request_id"]
    for key in ("submitted", "scheduled", "ended", "downloaded"):
        job.timings[key] = row[key]
    if row["path"]:
        job.video_path = Path(row["path"])
    job.sha256, job.bytes = row["sha256"], row["bytes"]
    job.video_info = {k: row[c] for k, c in (("width", "width"), ("height", "height"), ("fps", "fps"),
                                             ("frames", "frames"), ("duration", "video_seconds")) if row[c] is not None}
    job.cost, job.currency, job.polls = row["cost"], row["currency"] or job.currency, row["polls"] or 0
    if row["status"] != "SUCCEEDED":
        job.error_code = row["error_code"] or ""
        job.error = JobFailed(row["error_message"] or f"run {job.id} ended {row['status']}", code=job.error_code,
                              status=row["status"])
    job.set_status(Status(row["status"]), "the kernel that ran it finished it")


def _shutdown(loop: LoopThread, client: ApiClient, sim: Any, jobs: list[Job], log: ExperimentLog | None) -> None:
    for job in jobs:
        job.detached = True   # closing detaches: tasks on the host are not cancelled, nor marked so
    if loop.running:
        try:
            loop.submit(client.aclose()).result(5)
        except Exception:
            pass
        loop.close()
    if sim is not None:
        sim.stop()
    if log is not None:
        log.close()           # checkpoints: runs.sqlite alone is then the whole log
