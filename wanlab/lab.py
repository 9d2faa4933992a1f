"""`Lab`: the notebook user's handle. It picks the host, owns the private loop and the client, turns
requests into jobs, and hands every job's events to observers (the experiment log, the UI)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import weakref
from typing import Any, Callable

import httpx

from . import catalog
from ._loop import LoopThread
from .catalog import ModelSpec
from .client import ApiClient
from .errors import CatalogError, ConfigError
from .jobs import Job, JobEvent
from .limits import Limits
from .polling import PollPolicy
from .providers import make_provider
from .requests import Request
from .retry import RetryPolicy
from .secret import Secret

KEY_ENV = {"dashscope": "DASHSCOPE_API_KEY", "wavespeed": "WAVESPEED_API_KEY"}
SIM_KEY = "sk-wanlab-sim-local"   # the embedded sim accepts any non-empty key


class Lab:
    """Where generations run.

    `Lab()` reads the environment: `WANLAB_PROVIDER` (dashscope | wavespeed | sim), `DASHSCOPE_API_KEY`
    with `DASHSCOPE_REGION`, `WAVESPEED_API_KEY`; with no key it starts the embedded simulator and says
    so. Explicitly: `Lab(provider="dashscope", api_key=…, region="beijing")`, `Lab(provider="wavespeed")`,
    `Lab(provider="sim", protocol="wavespeed", time_scale=0.01)`, or any host at `base_url=`.
    """

    def __init__(self, provider: str | None = None, *, api_key: str | None = None, region: str | None = None,
                 base_url: str | None = None, protocol: str | None = None, time_scale: float | None = None,
                 limits: Limits | None = None, retry: RetryPolicy | None = None, poll: PollPolicy | None = None,
                 media_dir: str | os.PathLike | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 submit_timeout: float = 60.0, sim_options: dict[str, Any] | None = None, quiet: bool = False):
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
                if provider == "dashscope" else ""
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
        self._loop = LoopThread()
        self.client = ApiClient(self.provider, self.secret, limits=limits, retry=retry, poll=poll,
                                time_scale=self.time_scale, media_dir=media_dir or "wanlab-runs/media",
                                transport=transport, submit_timeout=submit_timeout)
        self.jobs: list[Job] = []
        self._observers: list[Callable[[Job, JobEvent], None]] = []
        self._finalizer = weakref.finalize(self, _shutdown, self._loop, self.client, self.sim, self.jobs)

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

    # -- running ---------------------------------------------------------------------------------
    def observe(self, fn: Callable[[Job, JobEvent], None]) -> None:
        """Call `fn(job, event)` for every event of every job submitted from now on (on the loop thread)."""
        self._observers.append(fn)

    def submit(self, req: Request) -> Job:
        """Validate, then start the job in the background; returns at once."""
        spec = self.resolve(req)
        job = Job(req, spec, host=self.host, region=self.region, lab=self)
        for fn in self._observers:
            job.observe(fn)
        self.jobs.append(job)
        fut = self._loop.submit(self.client.run(job))
        job._cancel_hook = fut.cancel
        return job

    async def run(self, req: Request) -> Job:
        """`await lab.run(req)` from any event loop (a notebook cell, pytest-asyncio, a script's)."""
        job = self.submit(req)
        try:
            return await job
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
