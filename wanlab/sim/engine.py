"""The sim's task engine: clock, per-key limits, task lives (PENDING → RUNNING → SUCCEEDED / FAILED),
latency draws and rendering off the event loop.

Everything here runs on the server's event loop thread, except `SimClock` (read from any thread) and
the render workers (a thread pool). Host-specific JSON lives in the route modules; the engine keeps
host-neutral state and lets routes phrase it.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..catalog import ModelSpec
from .defect_tags import merge_defects, parse_defect_arg
from .faults import FaultPlan
from .settings import SimSettings
from .store import BlobStore

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "DELETED")


def key_fingerprint(key: str) -> str:
    """What stats, logs and errors may show of a key: never the key itself."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


class SimClock:
    """Two clocks. Wall time (what hosts report) = real wall time + the manual advance, so reported
    timestamps agree with a client's own clock. Sim time (what the 24 h expiry measures) = real
    elapsed / time_scale + the manual advance."""

    def __init__(self, time_scale: float):
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.time_scale = time_scale
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        # NaN slips past `< 0`, and one NaN offset makes every later timestamp NaN (unanswerable JSON)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise ValueError(f"advance takes a finite number of seconds, not {seconds!r}")
        if seconds < 0:
            raise ValueError("the sim clock only moves forward")
        with self._lock:
            self._offset += seconds

    @property
    def offset(self) -> float:
        return self._offset

    def wall(self) -> float:
        return time.time() + self._offset

    def sim(self) -> float:
        return (time.monotonic() - self._t0) / self.time_scale + self._offset


class RateWindow:
    """A sliding one-window counter per key (real seconds: a client's limiter runs on real time)."""

    def __init__(self, limit: float | None, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window_s
        self.clock = clock  # tests freeze it: a busy machine must not slide the window for them
        self._hits: dict[str, collections.deque[float]] = {}

    def allow(self, key: str) -> bool:
        if not self.limit:
            return True
        now = self.clock()
        q = self._hits.setdefault(key, collections.deque())
        while q and now - q[0] >= self.window:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        return True


class KeySlots:
    """At most `limit` RUNNING tasks per key; the rest wait in submit order."""

    def __init__(self, limit: int):
        self.limit = max(1, int(limit))
        self.running = 0
        self.max_running = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self) -> None:
        if self.running < self.limit and not self._waiters:
            self._take()
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            else:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            raise

    def _take(self) -> None:
        self.running += 1
        self.max_running = max(self.max_running, self.running)

    def release(self) -> None:
        self.running -= 1
        while self._waiters and self.running < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self._take()
                fut.set_result(None)


@dataclass
class Task:
    id: str
    host: str  # "dashscope" | "wavespeed"
    key_fp: str
    region: str  # DashScope region; "" on WaveSpeed
    model: ModelSpec
    mode: str
    prompt: str
    resolution: str
    ratio: str
    width: int
    height: int
    duration: float  # output seconds
    seed: int
    seed_drawn: bool
    spec: Any  # render.RenderSpec, or None when the task is planned to fail
    submit_wall: float
    submit_sim: float
    queue_s: float  # host seconds
    run_s: float  # host seconds
    request_id: str = ""
    input_video_s: float = 0.0
    status: str = "PENDING"
    scheduled_wall: float | None = None
    end_wall: float | None = None
    fail: tuple[str, str] | None = None  # planned (code, message)
    moderation: bool = False
    video_name: str | None = None
    video_url: str | None = None
    video_bytes: int = 0
    extra: dict = field(default_factory=dict)  # host-specific echo (size string, prompt_extend …)
    _life: asyncio.Task | None = None

    @property
    def inference_ms(self) -> int:
        """Run time in milliseconds of the sim's clock, like its DashScope times (what WaveSpeed reports as
        timings.inference): with a time scale, both are compressed alike, so a client reads one clock."""
        if self.scheduled_wall is not None and self.end_wall is not None:
            return int(round((self.end_wall - self.scheduled_wall) * 1000))
        return int(round(self.run_s * 1000))


class RenderPool:
    """render() off the event loop, with identical specs rendered once (bounded LRU of bytes)."""

    def __init__(self, workers: int, max_entries: int, max_mb: float):
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="wanlab-sim-render")
        self._cache: collections.OrderedDict[Any, bytes] = collections.OrderedDict()
        self._cache_bytes = 0
        self._max_entries = max_entries
        self._max_bytes = int(max_mb * 1024 * 1024)
        self._inflight: dict[Any, asyncio.Future] = {}
        self.renders = 0
        self.render_seconds = 0.0
        self.cache_hits = 0

    def _timed_render(self, spec: Any) -> tuple[bytes, float]:
        # Imported on first render: PyAV and PIL take ~0.15 s to import, which importing wanlab.sim
        # (or a sim that never renders) need not pay.
        from . import render as _render

        t0 = time.perf_counter()
        data = _render.render(spec)
        return data, time.perf_counter() - t0

    async def get(self, spec: Any) -> bytes:
        try:
            hit = self._cache.get(spec)
        except TypeError:  # an unhashable spec: never cached
            hit, spec_key = None, None
        else:
            spec_key = spec
        if hit is not None:
            self._cache.move_to_end(spec)
            self.cache_hits += 1
            return hit
        if spec_key is not None and spec_key in self._inflight:
            self.cache_hits += 1
            return await asyncio.shield(self._inflight[spec_key])
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._pool, self._timed_render, spec)
        wrapped: asyncio.Future = asyncio.ensure_future(self._finish(fut, spec_key))
        if spec_key is not None:
            self._inflight[spec_key] = wrapped
        return await asyncio.shield(wrapped)

    async def _finish(self, fut: asyncio.Future, spec_key: Any) -> bytes:
        try:
            data, secs = await fut
        finally:
            if spec_key is not None:
                self._inflight.pop(spec_key, None)
        self.renders += 1
        self.render_seconds += secs
        if spec_key is not None and len(data) <= self._max_bytes:
            self._cache[spec_key] = data
            self._cache_bytes += len(data)
            while self._cache and (len(self._cache) > self._max_entries or self._cache_bytes > self._max_bytes):
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= len(old)
        return data

    async def cancel_all(self) -> None:
        pending = [f for f in self._inflight.values() if not f.done()]
        for f in pending:
            f.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Engine:
    """Holds every task and moves them along; routes call submit / get / cancel."""

    def __init__(self, settings: SimSettings, faults: FaultPlan, store: BlobStore):
        self.settings = settings
        self.clock = SimClock(settings.time_scale)
        self.faults = faults
        self.store = store
        self.tasks: dict[str, Task] = {}
        self.renderer = RenderPool(settings.render_workers, settings.render_cache_entries, settings.render_cache_mb)
        self._slots: dict[tuple[str, str], KeySlots] = {}
        self.submits = 0
        self.submits_by_host = {"dashscope": 0, "wavespeed": 0}
        self.requests: collections.Counter[str] = collections.Counter()
        self._count = 0
        # set by the app: builds the result URL once the video is stored
        self.result_url: Callable[[Task], str] = lambda t: ""

    # ---- draws ------------------------------------------------------------------------------------
    def _rng(self) -> random.Random:
        self._count += 1
        return random.Random(f"task:{self.settings.seed}:{self._count}")

    def _lognormal(self, rng: random.Random, median: float) -> float:
        return median * math.exp(self.settings.latency_sigma * rng.gauss(0.0, 1.0))

    def draw(self, model: ModelSpec, resolution: str, duration: float) -> tuple[float, float, int]:
        """(queue seconds, run seconds, a seed) in host seconds at the reference profile, deterministic in
        the sim seed and the number of tasks drawn so far; `start` shapes them by the task's host."""
        rng = self._rng()
        queue = self._lognormal(rng, self.settings.queue_base_s) if self.settings.queue_base_s > 0 else 0.0
        run = self._lognormal(rng, model.expected_latency(resolution, duration))
        seed = rng.randrange(0, 2**31 - 1)
        return queue, run, seed

    def shape(self, task: Task) -> None:
        """The task's host's latency profile (settings.latency_profiles) on its draws: a factor on the
        queue and one on the run, so the draws stay deterministic and keep their log-normal spread."""
        queue_factor, run_factor = self.settings.profile(task.host, task.region)
        task.queue_s *= queue_factor
        task.run_s *= run_factor

    # ---- lifecycle --------------------------------------------------------------------------------
    def slots(self, host: str, key_fp: str) -> KeySlots:
        s = self._slots.get((host, key_fp))
        if s is None:
            limit = self.settings.dashscope_concurrency if host == "dashscope" else self.settings.wavespeed_concurrency
            s = self._slots[(host, key_fp)] = KeySlots(limit)
        return s

    def start(self, task: Task) -> None:
        """Register a created task and start its life on the running loop."""
        self.shape(task)
        self.tasks[task.id] = task
        self.submits += 1
        self.submits_by_host[task.host] = self.submits_by_host.get(task.host, 0) + 1
        fault = self.faults.pick("task", ("fail", "moderation"))
        if fault is not None and task.fail is None:
            if fault.kind == "moderation":
                task.moderation = True
            else:
                task.extra["fault_fail"] = fault.arg or ""  # the route phrases the host's code and message
        if self._will_render(task):
            # `task:defect` rules count (and fire on) tasks planned to succeed only.
            rules = self.faults.pick_all("task", ("defect",))
            if rules:
                picked = tuple(parse_defect_arg(f.arg) for f in rules)
                task.spec = dataclasses.replace(task.spec, defects=merge_defects(task.spec.defects, picked))
            # ground truth for /_sim/tasks/{id}: what the render will carry (prompt tag + rules)
            task.extra["defects"] = dict(task.spec.defects)
        else:
            task.extra["defects"] = {}
        task._life = asyncio.get_running_loop().create_task(self._live(task))

    @staticmethod
    def _will_render(task: Task) -> bool:
        """Planned to succeed: no planned failure, moderation or fail fault, and a spec to render."""
        return task.fail is None and not task.moderation and "fault_fail" not in task.extra and task.spec is not None

    async def _live(self, task: Task) -> None:
        scale = self.settings.time_scale
        slots = self.slots(task.host, task.key_fp)
        try:
            await asyncio.sleep(task.queue_s * scale)
            await slots.acquire()
        except asyncio.CancelledError:
            return
        render = None
        try:
            task.status = "RUNNING"
            task.scheduled_wall = self.clock.wall()
            deadline = asyncio.get_running_loop().time() + task.run_s * scale
            if self._will_render(task):
                render = asyncio.ensure_future(self.renderer.get(task.spec))
            await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
            if render is None:
                task.status = "FAILED"
            else:
                try:
                    data = await render
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 — a renderer bug becomes the host's internal error
                    task.status = "FAILED"
                    task.extra["fault_fail"] = ""
                    task.extra["render_error"] = f"{type(exc).__name__}: {exc}"
                else:
                    name = f"{task.id}.mp4"
                    self.store.put(
                        "files",
                        name,
                        data,
                        "video/mp4",
                        self.clock.wall(),
                        self.clock.sim(),
                        self.settings.ttl_s if task.host == "dashscope" else self.settings.wavespeed_result_ttl_s,
                    )
                    task.video_name = name
                    task.video_bytes = len(data)
                    task.end_wall = self.clock.wall()
                    task.video_url = self.result_url(task)
                    task.status = "SUCCEEDED"
            task.end_wall = task.end_wall or self.clock.wall()
        except asyncio.CancelledError:
            task.end_wall = self.clock.wall()
            if render is not None:
                render.cancel()
            raise
        finally:
            slots.release()

    def cancel(self, task: Task, status: str = "CANCELED") -> None:
        if task._life is not None and not task._life.done():
            task._life.cancel()
        task.status = status
        task.end_wall = task.end_wall or self.clock.wall()

    def get(self, task_id: str, host: str, key_fp: str | None = None) -> Task | None:
        """A task this key may see, or None when unknown, of another key or older than the TTL."""
        task = self.tasks.get(task_id)
        if task is None or task.host != host or (key_fp is not None and task.key_fp != key_fp):
            return None
        ttl = self.settings.ttl_s if host == "dashscope" else self.settings.wavespeed_result_ttl_s
        if self.clock.sim() - task.submit_sim > ttl:
            return None
        return task

    def new_id(self) -> str:
        return str(uuid.uuid4())

    # ---- introspection ----------------------------------------------------------------------------
    def stats(self) -> dict:
        by_status: collections.Counter[str] = collections.Counter(t.status for t in self.tasks.values())
        running: dict[str, int] = {}
        peak: dict[str, int] = {}
        for (_host, fp), s in self._slots.items():
            running[fp] = running.get(fp, 0) + s.running
            peak[fp] = max(peak.get(fp, 0), s.max_running)
        return {
            "submits": self.submits,
            "submits_by_host": dict(self.submits_by_host),
            "tasks": {s: by_status.get(s, 0) for s in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED")}
            | {
                s: n for s, n in by_status.items() if s not in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED")
            },
            "running_by_key": running,
            "max_running_by_key": peak,
            "requests": dict(self.requests),
            "faults": dict(self.faults.injected),
            "renders": self.renderer.renders,
            "render_seconds": round(self.renderer.render_seconds, 4),
            "render_cache_hits": self.renderer.cache_hits,
            "sim_time_s": round(self.clock.sim(), 3),
            "clock_offset_s": self.clock.offset,
        }

    async def shutdown(self) -> None:
        lives = [t._life for t in self.tasks.values() if t._life is not None and not t._life.done()]
        for life in lives:
            life.cancel()
        if lives:
            await asyncio.gather(*lives, return_exceptions=True)
        await self.renderer.cancel_all()
        self.renderer.shutdown()
