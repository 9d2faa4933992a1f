"""`Lab`: the notebook user's handle. It picks the host, owns the private loop and the client, turns
requests into jobs, and hands every job's events to observers (the experiment log, the UI)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sys
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import httpx

from . import catalog, cost
from ._loop import LoopThread
from .catalog import ModelSpec, PriceTable, default_prices
from .client import ApiClient
from .cost import Budget, Estimate
from .errors import CatalogError, ConfigError, WanlabError
from .inputs import Media
from .jobs import Job, JobEvent
from .limits import Limits
from .log import RESULT_TTL_S, ExperimentLog, default_home
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
        provider = provider or os.environ.get("WANLAB_PROVIDER") or None
        if provider is None:
            if api_key and not region:
                raise ConfigError("api_key given without provider=: say provider='dashscope' or 'wavespeed'")
            if os.environ.get(KEY_ENV["dashscope"]):
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
        if provider == "sim":
            self.protocol = protocol or "dashscope"
            if self.protocol not in KEY_ENV:
                raise ConfigError(f"protocol={protocol!r}; the sim speaks 'dashscope' or 'wavespeed'")
            self.region = (region or "singapore") if self.protocol == "dashscope" else ""
            self.time_scale = 0.01 if time_scale is None else time_scale
            if base_url is None:
                from .sim import SimServer

                self.sim = SimServer(time_scale=self.time_scale, **(sim_options or {})).start()
                base_url = (self.sim.dashscope_url(self.region) if self.protocol == "dashscope"
                            else self.sim.wavespeed_url)
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
        try:
            self.provider = make_provider(self.protocol, self.region or None, base_url)
        except ConfigError:
            if self.sim is not None:
                self.sim.stop()
            raise
        self.home = Path(home) if home is not None else default_home()
        self.store = MediaStore(media_dir if media_dir is not None else self.home / "media")
        self.log = log if isinstance(log, ExperimentLog) else ExperimentLog(log or self.home / "runs.sqlite")
        self.prices = prices or default_prices()
        self.budget = Budget(budget)
        self._loop = LoopThread()
        self.client = ApiClient(self.provider, self.secret, limits=limits, retry=retry, poll=poll,
                                time_scale=self.time_scale, store=self.store, transport=transport,
                                submit_timeout=submit_timeout, known_task_ids=self.log.known_task_ids)
        self.jobs: list[Job] = []
        self._observers: list[Callable[[Job, JobEvent], None]] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._loop, self.client, self.sim, self.jobs)
        if resume:
            self.resume()

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
               budget: Budget | None = None) -> Job:
        """Validate, price, log, then start the job in the background; returns at once.

        Raises `BudgetExceeded` (nothing sent, nothing logged) when the estimate would take the Lab's
        budget — or `budget`, a sweep's own `cost.Budget` — past its limit, or when actual spend has reached it."""
        spec = self.resolve(req)
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
            self.log.record_created(job, params, inputs, study=study, base_url=self.provider.base_url,
                                    est_cost=est.amount, currency=est.currency, price_source=est.source,
                                    tags=json.dumps(tags) if tags else None)
        except BaseException:
            for b in admitted:
                b.settle(job.id, None)       # release the reservation: nothing was sent
            raise
        return self._start(job, "submit")

    def _new_job(self, req: Request, spec: ModelSpec, run_id: str | None = None) -> Job:
        job = Job(req, spec, host=self.host, region=self.region, lab=self, run_id=run_id)
        job.protocol = self.protocol
        return job

    def _start(self, job: Job, phase: str) -> Job:
        job.expected_run = self._run_time_history(job)
        job.observe(self._settle)          # cost first, so the log's terminal write includes it
        job.observe(self.log.observe)
        self.log.hold(job.id)              # heartbeat: this process keeps the row's lease while the job runs
        for fn in self._observers:
            job.observe(fn)
        self.jobs.append(job)
        fut = self._loop.submit(self.client.run(job, phase))
        job._cancel_hook = fut.cancel
        return job

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

    def resume(self) -> list[Job]:
        """Pick up this host's unfinished runs from the log (a kernel restart, a crash): poll, download,
        or submit what never left. Runs older than the host's 24 h window become UNKNOWN, with the
        reason. A run another live process is watching (its lease is being renewed) is left to it; so is
        a run this Lab is already running."""
        jobs = []
        now = time.time()
        mine = {j.id for j in self.jobs if not j.done}
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
                continue          # another process is on it
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
            try:
                req = from_record(row["mode"], row, json.loads(row["params"] or "{}"), json.loads(row["inputs"] or "{}"))
                spec = catalog.get_model(row["model"], host=self.protocol)
            except (WanlabError, ValueError, OSError) as exc:
                self.log.update(row["run_id"], status="FAILED", error_code="wanlab.CannotResume",
                                error_message=f"cannot rebuild the request: {exc}", claimed_until=0.0)
                continue
            job = self._new_job(req, spec, run_id=row["run_id"])
            for key in ("created", "started", "submitted", "scheduled"):
                job.timings[key] = row[key]
            job.task_id, job.request_id = row["task_id"], row["request_id"]
            job.est_cost, job.currency = row["est_cost"], row["currency"] or ""
            job.polls = row["polls"] or 0
            status = row["status"]
            if job.task_id:
                phase = "poll"
                job.status = Status(status) if status in ("PENDING", "RUNNING") else Status.PENDING
            elif status == "SUBMITTING":
                phase = "reconcile"
                job.status = Status.SUBMITTING
            else:
                phase = "submit"
            est = Estimate(job.est_cost, job.currency, 0.0, "the log's estimate")
            if phase == "submit":
                try:                    # never sent: it spends only if the budget admits it now
                    self.budget.admit(job.id, est)
                except cost.BudgetExceeded as exc:
                    self._end_row(row, "wanlab.BudgetExceeded", f"not sent on resume: {exc}", status="CANCELED")
                    continue
            else:                       # may already be running (and billed) on the host: count it
                self.budget.reserve(job.id, job.est_cost)
            job.budgets = [self.budget]
            job.emit("resumed", f"resumed from the log at phase {phase}")
            jobs.append(self._start(job, phase))
        return jobs

    def _end_row(self, row: dict[str, Any], code: str, why: str, status: str = "UNKNOWN") -> None:
        self.log.update(row["run_id"], status=status, error_code=code, error_message=why, claimed_until=0.0,
                        ended=row["ended"] or time.time())

    def rerun(self, run_id: str, **changes: Any) -> Job:
        """Submit a logged run again — same request and seed unless `changes` say otherwise
        (`lab.rerun(run_id, resolution="1080P")`). Local inputs come back from the media store. The new
        run is logged under the same study, tagged with the run it reproduces."""
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

    async def run(self, req: Request, timeout: float | None = None) -> Job:
        """`await lab.run(req)` from any event loop (a notebook cell, pytest-asyncio, a script's).
        The kernel's interrupt does not reach an awaiting cell (ipykernel #881): `timeout=` (or
        `job.cancel()` from another cell) cancels the job."""
        job = self.submit(req)
        try:
            return await asyncio.wait_for(job._await(), timeout)
        except asyncio.TimeoutError:
            job.cancel()
            raise TimeoutError(f"job {job.id} not done after {timeout} s; cancelled") from None
        except asyncio.CancelledError:
            job.cancel()
            raise

    def run_sync(self, req: Request, timeout: float | None = None) -> Job:
        """Block until the job ends. An interrupt (Ctrl-C, the kernel's stop button) or the timeout cancels
        the job."""
        job = self.submit(req)
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
        """Stop the loop (jobs still running on the host are left there) and the embedded sim."""
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


def _shutdown(loop: LoopThread, client: ApiClient, sim: Any, jobs: list[Job]) -> None:
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
