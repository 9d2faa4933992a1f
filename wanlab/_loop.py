"""The one private event loop, in a daemon thread, that owns every loop-bound object (the httpx client,
the limiters). Callers on any thread — a script, pytest, a notebook cell with or without top-level await,
a widget callback — hand it coroutines; nothing here calls `nest_asyncio.apply()`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "wanlab-loop"):
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if not self.running:
            coro.close()
            raise RuntimeError("this Lab is closed; create a new one")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.in_loop_thread:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def run_sync(
        self, coro: Coroutine[Any, Any, T], timeout: float | None = None, on_interrupt: Callable[[], None] | None = None
    ) -> T:
        """Block the calling thread until `coro` finishes on the loop. Ctrl-C (a kernel interrupt)
        cancels it and runs `on_interrupt`."""
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError("run_sync called from wanlab's own loop thread; use `await` there")
        fut = self.submit(coro)
        try:
            return fut.result(timeout)
        except KeyboardInterrupt:
            fut.cancel()
            if on_interrupt is not None:
                on_interrupt()
            raise
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` from any other event loop (the kernel's, pytest-asyncio's, a user's)."""
        fut = self.submit(coro)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            fut.cancel()
            raise

    def close(self, timeout: float = 5.0) -> None:
        if not self.running:
            return

        async def _shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if not self.in_loop_thread:
            try:
                asyncio.run_coroutine_threadsafe(_shutdown(), self.loop).result(timeout)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


# The awaits a SIGINT cancels (main thread only) and the handler that was there before the first of them.
# One handler for all: awaits ending in another order than they began (`asyncio.gather(lab.run(a),
# lab.run(b))`) would otherwise each restore what it found and leave a finished await's handler installed.
_awaiting: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Task, Callable[[], None], list[bool]]] = {}
_before: list[Any] = []


def _on_interrupt(signum: int, frame: Any) -> None:
    for loop, task, cancel, pressed in list(_awaiting.values()):
        pressed.append(True)
        cancel()
        loop.call_soon_threadsafe(task.cancel)  # wakes the loop from its select()


@contextlib.contextmanager
def interrupt_cancels(cancel: Callable[[], None]) -> Any:
    """While a cell awaits a job on the main thread's loop, the kernel's interrupt (SIGINT) calls `cancel` and
    cancels the await. Without this the signal never reaches a cell suspended in `await` (ipykernel #881) and the
    task keeps running, and billing, until it ends. Yields a list that is non-empty once the button was pressed."""
    pressed: list[bool] = []
    task = asyncio.current_task()
    if threading.current_thread() is not threading.main_thread() or task is None:
        yield pressed
        return
    if not _awaiting:
        try:
            _before[:] = [signal.signal(signal.SIGINT, _on_interrupt)]
        except (ValueError, OSError):  # not settable here: no stop button, nothing broken
            yield pressed
            return
    key = id(pressed)
    _awaiting[key] = (asyncio.get_running_loop(), task, cancel, pressed)
    try:
        yield pressed
    finally:
        del _awaiting[key]
        if not _awaiting:
            before = _before.pop()  # None: set outside Python, not restorable; Python's own default then
            signal.signal(signal.SIGINT, before if before is not None else signal.default_int_handler)
