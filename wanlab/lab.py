"""`Lab`: the notebook user's handle. It picks the host, owns the private loop and the client, turns
requests into jobs, and hands every job's events to observers (the experiment log, the UI)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import statistics
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _arguments as arguments
from . import _hosts as hosts
from . import _recovery as recovery
from . import _submission as submission
from . import catalog, cost, polling
from ._loop import LoopThread, interrupt_cancels
from ._outcomes import LabOutcomes, Measurer
from ._runner import JobRunner
from .catalog import ModelSpec
from .cost import Budget, Estimate
from .errors import WanlabError
from .inputs import Media
from .jobs import Job, JobEvent
from .limits import Limits
from .log import ExperimentLog, default_home
from .media import MediaStore
from .polling import PollPolicy
from .prices import PriceTable, default_prices
from .providers import make_provider
from .requests import Request
from .retry import RetryPolicy

if TYPE_CHECKING:
    import httpx

    from .sweep import Sweep


class Lab(LabOutcomes):
    """Where generations run.

    `Lab()` reads the environment: `WANLAB_PROVIDER` (dashscope | wavespeed | sim), `DASHSCOPE_API_KEY`
    with `DASHSCOPE_REGION`, `WAVESPEED_API_KEY`; with no key it starts the embedded simulator and says
    so. Explicitly: `Lab(provider="dashscope", api_key=…, region="beijing")`, `Lab(provider="wavespeed")`,
    `Lab(provider="sim", protocol="wavespeed", time_scale=0.01)`, or any host at `base_url=`.

    Runs are logged to `home/runs.sqlite` (`home` defaults to `$WANLAB_HOME` or ./wanlab-runs) and
    videos land in `home/media`; on start, unfinished runs of this host are resumed (`resume=False`
    to skip). `budget=` refuses any run whose estimate would pass it: a number is in the currency of this
    host's prices (CNY on Beijing, USD elsewhere), `(5, "USD")` names it, a `cost.Budget` may be shared.
    """

    def __init__(
        self,
        provider: str | None = None,
        *,
        api_key: str | None = None,
        region: str | None = None,
        base_url: str | None = None,
        protocol: str | None = None,
        time_scale: float | None = None,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        home: str | os.PathLike | None = None,
        media_dir: str | os.PathLike | None = None,
        log: ExperimentLog | str | os.PathLike | None = None,
        budget: float | tuple[float, str] | Budget | None = None,
        prices: PriceTable | None = None,
        resume: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        submit_timeout: float = 60.0,
        sim_options: dict[str, Any] | None = None,
        quiet: bool = False,
        measure: bool = True,
        clip_model: str | os.PathLike | None = None,
    ):
        # every keyword checked before a sim starts or a file is made, so a refused Lab leaks nothing
        budget, time_scale, submit_timeout = arguments.lab_arguments(
            provider=provider,
            region=region,
            base_url=base_url,
            protocol=protocol,
            time_scale=time_scale,
            limits=limits,
            retry=retry,
            poll=poll,
            home=home,
            media_dir=media_dir,
            log=log,
            budget=budget,
            prices=prices,
            resume=resume,
            transport=transport,
            submit_timeout=submit_timeout,
            sim_options=sim_options,
            quiet=quiet,
            measure=measure,
        )
        where = hosts.choose(
            provider, api_key=api_key, region=region, protocol=protocol, time_scale=time_scale, quiet=quiet
        )
        self.protocol, self.region, self.time_scale = where.protocol, where.region, where.time_scale
        self.secret, self.host = where.secret, where.host
        self.quiet = quiet
        self._noted: set[str] = set()  # modes whose model substitution was said once (see resolve)
        self.sim = None
        self.closed_reason = ""
        self.resumed: list[Job] = []
        self.left_to_others: list[str] = []
        try:
            self._setup(
                where.provider,
                base_url,
                limits or where.limits,
                retry,
                poll,
                home,
                media_dir,
                log,
                budget,
                prices,
                transport,
                submit_timeout,
                sim_options,
            )
            self.measurer = Measurer(self.log, measure, arguments.clip_dir(clip_model) if measure else None)
            owned_log = None if isinstance(log, ExperimentLog) else self.log
            turns = (self.log, f"{id(self):x}")  # this Lab's submit turn (see _submit_turn)
            self._finalizer = weakref.finalize(
                self, recovery.shutdown, self._loop, self.client, self.sim, self.jobs, owned_log, turns
            )
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

    def _setup(
        self,
        provider: str,
        base_url: str | None,
        limits: Limits | None,
        retry: RetryPolicy | None,
        poll: PollPolicy | None,
        home: Any,
        media_dir: Any,
        log: Any,
        budget: Budget,
        prices: PriceTable | None,
        transport: Any,
        submit_timeout: float,
        sim_options: dict[str, Any] | None,
    ) -> None:
        if provider == "sim" and base_url is None:
            make_provider(self.protocol, self.region or None, "http://127.0.0.1:1")  # checks region first
        else:
            self.provider = make_provider(self.protocol, self.region or None, base_url)
        self.home = Path(home) if home is not None else default_home()
        self.log = log if isinstance(log, ExperimentLog) else ExperimentLog(log or self.home / "runs.sqlite")
        self.store = MediaStore(media_dir if media_dir is not None else self.home / "media")
        self.prices = prices or default_prices()
        self.budget = budget.for_prices(
            cost.currency_of(self.prices, self.protocol, self.region or None), hosts.place(self.host, self.region)
        )
        if provider == "sim" and base_url is None:  # last: nothing above can fail and leave it running
            from .sim import SimServer

            self.sim = SimServer(time_scale=self.time_scale, **(sim_options or {})).start()
            base_url = self.sim.dashscope_url(self.region) if self.protocol == "dashscope" else self.sim.wavespeed_url
            self.provider = make_provider(self.protocol, self.region or None, base_url)
        self._loop = LoopThread()
        self.client = JobRunner(
            self.provider,
            self.secret,
            limits=limits,
            retry=retry,
            poll=poll,
            time_scale=self.time_scale,
            store=self.store,
            transport=transport,
            submit_timeout=submit_timeout,
            known_task_ids=self.log.known_task_ids,
            submit_turn=self._submit_turn,
            claimants=self._claimants,
        )
        self.jobs: list[Job] = []
        self._observers: list[Callable[[Job, JobEvent], None]] = []

    # -- models ----------------------------------------------------------------------------------
    def resolve(self, req: Request) -> ModelSpec:
        """The exact model this Lab's host runs for `req`, checked against it. Raises before any I/O. A
        region serving another version than asked (Virginia: WAN 2.6) is said once per mode (unless quiet)."""
        if not isinstance(req, Request):
            raise TypeError(
                f"expected a wanlab request (T2V, I2V, FLF2V, Grid9, Ref2V, Edit, Extend), got {type(req).__name__}"
            )
        return hosts.resolve(self.protocol, self.region, req, None if self.quiet else self._noted)

    def models(self, mode: str | None = None) -> list[ModelSpec]:
        return catalog.models(host=self.protocol, mode=mode, region=self.region or None)

    def sweep(self, base: Request, *, study: str | None = None, reuse: bool = True, **axes: Any) -> Sweep:
        """The grid of `base` over `axes` (resolution=[…], duration=[…], seed=[…], prompt=[…], …):
        `.estimate()`, `.run(budget=…, max_concurrency=…)`, `.df`, `.show()`."""
        from .sweep import Sweep

        return Sweep(self, base, study=study, reuse=reuse, **axes)

    # -- running ---------------------------------------------------------------------------------
    def observe(self, fn: Callable[[Job, JobEvent], None]) -> None:
        """Call `fn(job, event)` for every event of every job submitted from now on (on the loop thread)."""
        self._observers.append(fn)

    def estimate(self, req: Request | Iterable[Request] | Any) -> Estimate:
        """What a request, a list of them or a sweep (anything with `.requests` or `.expand()`) would cost on
        this Lab's host, before anything is sent: catalog unit price × billed seconds for the resolution, per
        model and host; `str(estimate)` names the price table's source and date. An unknown price is
        reported as unknown (amount None), never as zero."""
        reqs = cost.requests_in(req)
        return cost.total(cost.estimate(r, self.resolve(r), self.prices, self.region or None) for r in reqs)

    def submit(
        self,
        req: Request,
        *,
        study: str | None = None,
        tags: dict[str, Any] | None = None,
        budget: Budget | None = None,
        fresh: bool = False,
    ) -> Job:
        """Validate, price, log, then start the job in the background; returns at once.

        A run is identified by what it asks for: a seeded request that matches an unfinished run in the log
        (running here, resumed, held by another live kernel, or left by a dead one) is attached to — the
        returned job follows that run, nothing is sent again. An unseeded request, or `fresh=True`, is a
        new paid sample.

        Raises `BudgetExceeded` (nothing sent, nothing logged) when the estimate would take the Lab's
        budget — or `budget`, a sweep's own `cost.Budget` — past its limit, or when actual spend has reached it."""
        job = submission.submit(self, req, study=study, tags=tags, budget=budget, fresh=fresh)
        assert isinstance(job, Job)
        return job

    def _attach(self, row: dict[str, Any]) -> Job:
        return recovery.attach(self, row)

    def _new_job(self, req: Request, spec: ModelSpec, run_id: str | None = None) -> Job:
        job = Job(req, spec, host=self.host, region=self.region, run_id=run_id)
        job.protocol = self.protocol
        return job

    def _start(self, job: Job, phase: str) -> Job:
        # what the default poll policy learns from: this host's similar runs, scaled to this job's duration
        req = job.request
        runs = self.log.run_history(
            model=job.model.id,
            resolution=req.resolution,
            durations=polling.duration_band(req.duration),
            host=self.host,
            region=self.region,
        )
        job.run_history = polling.scaled_history(job.model, req.resolution, req.output_seconds(), runs, self.time_scale)
        job.expected_run = statistics.median(job.run_history) if len(job.run_history) >= 3 else None
        job.observe(self._settle)  # cost first, so the log's terminal write includes it
        job.observe(self.log.observe_loudly)
        job.observe(self.measurer.after)  # after the row says SUCCEEDED
        self.log.hold(job.id)  # heartbeat: this process keeps the row's lease while the job runs
        for fn in self._observers:
            job.observe(fn)
        self.jobs.append(job)
        self._loop.submit(self.client.run(job, phase))
        job.set_canceller(lambda: self._loop.call_soon(self.client.request_cancel, job))
        return job

    def _submit_turn(self) -> Any:
        """One submit in flight per account across every kernel on this log (see reconcile.by_rank)."""
        key = hashlib.sha256(self.secret.reveal().encode()).hexdigest()[:16]
        hold = self.client.submit_timeout * 3 + 300  # a submit, its retries and a reconciliation
        # lingers 0.5 s: a sweep's submits (≥ 0.2 s apart at 5/s) take the cross-kernel lock once per 2 s
        return self.log.turn(f"submit|{self.protocol}|{self.provider.base_url}|{key}", f"{id(self):x}", hold, 0.5)

    def _check_open(self) -> None:
        if self.closed:
            raise WanlabError("this Lab is closed: nothing was logged or sent; create a new Lab()")

    def _claimants(self, job: Job, since: float) -> list[tuple[float, str]]:
        return self.log.submitting(job.model.id, since, exclude=job.id)

    def _reserve(self, job: Job, phase: str) -> None:
        """A resumed run may already be running (and billed) on the host: count it in the budget."""
        self.budget.reserve(job.id, job.est_cost)
        job.budgets = [self.budget]

    def _keep(self, media: Media) -> str:
        ext = Path(media.name).suffix or {"image": ".png", "video": ".mp4", "audio": ".wav"}[media.kind]
        return str(self.store.put_bytes(media.data or b"", ext))

    def _settle(self, job: Job, ev: JobEvent) -> None:
        """At the end, the actual cost replaces the reservation in the budget(s) (see `cost.settle`)."""
        if ev.kind != "status" or not job.status.terminal or job.cost is not None:
            return
        job.cost, job.currency, job.cost_basis = cost.settle(job, self.prices, self.region or None)
        for b in job.budgets or [self.budget]:
            b.settle(job.id, job.cost)

    @property
    def spent(self) -> float:
        return self.budget.spent

    def resume(self, report: bool = False) -> list[Job]:
        """Pick up this host's unfinished runs from the log (a kernel restart, a crash): poll, download,
        reconcile, or submit what never left. Runs older than the host's 24 h window become UNKNOWN, with
        the reason. A run whose owner lives (another kernel, or a job of this Lab) is left to it; a dead
        owner's runs are taken at once on this machine, after their lease on another. `lab.resumed` and
        `lab.left_to_others` say which; with `report`, one line says it too."""
        return recovery.resume(self, report)

    def rerun(self, run_id: str, **changes: Any) -> Job:
        """Submit a logged run again — same request and seed unless `changes` say otherwise
        (`lab.rerun(run_id, resolution="1080P")`). Local inputs come back from the media store. The new
        run is logged under the same study, tagged with the run it reproduces."""
        return recovery.rerun(self, run_id, changes)

    async def run(self, req: Request, timeout: float | None = None, *, fresh: bool = False) -> Job:
        """`await lab.run(req)` from any event loop (a notebook cell, pytest-asyncio, a script's).
        The kernel's stop button (SIGINT), `timeout=`, or cancelling the awaiting task cancels the job —
        on the host where the host can; a task the host would not cancel is still downloaded."""
        job = self.submit(req, fresh=fresh)
        with interrupt_cancels(job.cancel) as pressed:
            try:
                return await asyncio.wait_for(job.outcome(), timeout)
            except asyncio.TimeoutError:
                job.cancel()
                raise TimeoutError(f"job {job.id} not done after {timeout} s; cancelled") from None
            except asyncio.CancelledError:
                job.cancel()
                if pressed:
                    raise KeyboardInterrupt(
                        f"stopped: job {job.id} cancelled ({job.status}); job.events say what the host answered"
                    ) from None
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
        deadline = None if timeout is None else time.monotonic() + timeout
        for j in jobs:
            if not j.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
                break
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
        self.secret.forget()  # nothing of this Lab sends the key any more: stop masking it in log records

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.provider.describe()
        if self.sim is not None:
            where = f"embedded sim, {self.protocol} protocol at {self.provider.base_url}"
        budget = f", budget={self.budget!r}" if self.budget.limit is not None else ""
        return f"Lab({where}, host={self.host}, key={self.secret.masked}, jobs={len(self.jobs)}{budget})"
