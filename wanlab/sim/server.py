"""SimServer: the sim served by uvicorn in a daemon thread with its own event loop (embedded mode for
notebooks and tests), or in the foreground (the CLI)."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
from typing import Any

import uvicorn
from uvicorn.logging import DefaultFormatter

from .app import DS_REGIONS, SimApp
from .control import sim_task_info
from .faults import FaultPlan
from .settings import SimSettings

_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class _UvicornLogging:
    """uvicorn's loggers, set up while at least one sim server runs and put back as they were when the
    last one stops. What uvicorn's default set-up would do (`Config(log_config=LOGGING_CONFIG)`) is done
    here by hand for its own loggers only: that default runs `logging.config.dictConfig`, which also
    closes every other handler in the process. So: messages go to stderr through the `uvicorn` logger
    (not propagated further), `uvicorn.error` propagates to it, and levels are the server's `log_level`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: list[tuple[logging.Logger, int, list[logging.Handler], bool, bool]] = []

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            loggers = [logging.getLogger(name) for name in _UVICORN_LOGGERS]
            self._saved = [(lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in loggers]
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
            top = loggers[0]
            top.handlers, top.propagate, top.disabled = [handler], False, False
            top.setLevel(logging.INFO)
            for lg in loggers[1:]:
                lg.disabled = False
            loggers[1].propagate = True

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            for lg, level, handlers, propagate, disabled in self._saved:
                lg.setLevel(level)
                lg.handlers, lg.propagate, lg.disabled = handlers, propagate, disabled
            self._saved = []


_uvicorn_logging = _UvicornLogging()


class SimServer:
    """An offline stand-in for DashScope and WaveSpeed on loopback.

    >>> with SimServer(time_scale=0.01) as sim:
    ...     sim.dashscope_url()        # 'http://127.0.0.1:PORT/api/v1'
    """

    def __init__(
        self,
        time_scale: float = 1.0,
        faults: str | None = None,
        keys: list[str] | None = None,
        key_regions: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        **settings: Any,
    ):
        self.settings = SimSettings.build(time_scale=time_scale, seed=seed, **settings)
        plan = FaultPlan(seed=seed)
        plan.set(faults)  # parse errors surface here, before anything starts
        self.app = SimApp(self.settings, plan, keys, key_regions)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._stopped = False
        self._logging = False  # holds _uvicorn_logging

    # ---- lifecycle ----
    def bind(self) -> socket.socket:
        """Bind the listening socket now (port 0 → a free port), so `url` is known before serving."""
        if self._sock is not None:
            return self._sock
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for that protocol, and
        # without it every answer on a kept-alive connection waits ~40 ms for a delayed ACK
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self.app.public_url = self.url
        return sock

    def _config(self, log_level: str = "warning") -> uvicorn.Config:
        """Only called as a server starts: uvicorn.Config sets its loggers' levels (log_config=None keeps
        it from reconfiguring the process's logging; _UvicornLogging does the rest and undoes it all)."""
        if not self._logging:
            self._logging = True
            _uvicorn_logging.acquire()
        return uvicorn.Config(
            self.app,
            log_level=log_level,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
            backlog=2048,
            http="h11",
            ws="none",
        )

    def _release_logging(self) -> None:
        if self._logging:
            self._logging = False
            _uvicorn_logging.release()

    def start(self) -> SimServer:
        if self._thread is not None:
            return self
        sock = self.bind()
        # No signal-handler override is needed off the main thread: uvicorn >= 0.29 (the pinned floor) has no
        # Server.install_signal_handlers any more, and its capture_signals() does nothing outside the main thread.
        self._server = server = uvicorn.Server(self._config())
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)

            async def serve() -> None:
                task = asyncio.ensure_future(server.serve(sockets=[sock]))
                while not server.started and not task.done():
                    await asyncio.sleep(0.005)
                ready.set()
                await task

            try:
                loop.run_until_complete(serve())
            except BaseException as exc:  # noqa: BLE001 — reported to start()
                errors.append(exc)
            finally:
                ready.set()
                loop.close()

        self._thread = threading.Thread(target=run, name=f"wanlab-sim:{self.port}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors or not server.started:
            if not self._thread.is_alive():
                self._release_logging()
            raise RuntimeError(f"wanlab sim failed to start on {self.url}: {errors[0] if errors else 'timeout'}")
        return self

    def serve_forever(self, log_level: str = "info") -> None:
        """Foreground mode (the CLI): blocks until interrupted."""
        sock = self.bind()
        self._server = uvicorn.Server(self._config(log_level))
        try:
            self._server.run(sockets=[sock])
        finally:
            self._stopped = True
            self.app.engine.renderer.shutdown()
            self._release_logging()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.app.engine.renderer.shutdown()
        self._release_logging()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- URLs ----
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def dashscope_url(self, region: str = "singapore") -> str:
        region = region.lower()
        if region not in DS_REGIONS:
            raise ValueError(f"region must be one of {', '.join(DS_REGIONS)}, not {region!r}")
        return f"{self.url}/api/v1" if region == "singapore" else f"{self.url}/{region}/api/v1"

    @property
    def wavespeed_url(self) -> str:
        return self.url

    # ---- control ----
    @property
    def faults(self) -> FaultPlan:
        return self.app.faults

    @property
    def clock(self):
        return self.app.engine.clock

    def advance(self, seconds: float) -> None:
        self.app.engine.clock.advance(seconds)

    def _on_loop(self, fn):
        if self._loop is None or not self._loop.is_running():
            return fn()

        async def call():
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(10)

    def stats(self) -> dict:
        return self._on_loop(self.app.engine.stats)

    def task_info(self, task_id: str) -> dict | None:
        """Sim-only facts about a task (drawn seed, latency draws, catalog price)."""

        def get():
            t = self.app.engine.tasks.get(task_id)
            return None if t is None else sim_task_info(self.app, t)

        return self._on_loop(get)

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("running" if self._thread else "not started")
        return f"SimServer({self.url}, time_scale={self.settings.time_scale}, {state})"
