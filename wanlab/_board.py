"""`StatusBoard`: the polls of several jobs that fall due together, answered by one task-list request.

Why: a sweep's jobs are submitted together and polled on the same plan, so their polls fall close together
(DashScope takes 5 submits a second: 0.2 s apart). DashScope's task list (`GET /tasks?status=RUNNING`)
answers all of them at once: one request against the account's shared query rate (20 QPS over all its keys)
and this process's CPU, where each job would send its own.

The list only ever says "unchanged". A task it shows in the status its job already knows needs no query; a
task it shows in another status, or does not show (the list may lag, or hold more than one page), and every
job when the list fails, is queried as before; after a client error other than 429 the list is not sent again.
So each change a job sees — running, done, failed, its video URL and usage — still comes from the task's own
query, and a list that lies can only make a job later, by one poll. A poll waits at most `window` for others
due after it; a poll with none due in that window is sent at once, alone, and never waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .errors import ApiError
from .jobs import Status
from .providers.base import HttpRequest, HttpResponse, Provider

_LISTED = (Status.PENDING, Status.RUNNING)  # the states a list can confirm: the ones that change nothing
_SLACK = 0.001


class _Batch:
    __slots__ = ("members", "answer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.members: dict[str, Status] = {}  # task id → the status its job knows
        self.answer: asyncio.Future[dict[str, Status]] = loop.create_future()


class StatusBoard:
    """One per runner (one account), on its loop. Jobs say when their next poll is due (`expect`); at that
    time they ask `unchanged` before querying."""

    def __init__(
        self,
        provider: Provider,
        send: Callable[[HttpRequest], Awaitable[HttpResponse]],
        window: float,
    ) -> None:
        self._provider = provider
        self._send = send
        self.window = window  # loop seconds a poll may wait for others due after it
        self._due: dict[str, float] = {}  # task id → loop time its next poll is due
        self._batch: _Batch | None = None
        self._answering: set[asyncio.Task[None]] = set()
        self.stats = {"lists": 0, "answered": 0, "list_failures": 0}
        # set when the host answered a list with a client error (not 429): a request it will refuse again is
        # not sent again, for this board's life; every poll is a query from then on
        self.refused = ""

    def expect(self, task_id: str, delay: float) -> None:
        """The job polling `task_id` will ask again in `delay` loop seconds."""
        self._due[task_id] = asyncio.get_running_loop().time() + delay

    def forget(self, task_id: str) -> None:
        self._due.pop(task_id, None)

    async def unchanged(self, task_id: str, status: Status) -> bool:
        """True when the host's list shows `task_id` still in `status`, so this poll needs no query. Every job
        that called `expect` calls this (or `forget`) when its poll is due."""
        self._due.pop(task_id, None)
        if status not in _LISTED or self.refused:
            return False
        loop = asyncio.get_running_loop()
        batch = self._batch
        if batch is None:
            # due already but not here yet counts too: that job's nap has ended, or ends in this step of the loop
            horizon = loop.time() + self.window
            soon = [t for t in self._due.values() if t <= horizon]
            if not soon:
                return False
            batch = self._batch = _Batch(loop)
            # a hop through call_soon, and a millisecond: a job whose nap ends with this timer (or lags with it on
            # a busy loop) runs its step first, and joins
            loop.call_at(max(soon) + _SLACK, loop.call_soon, self._close, batch)
        batch.members[task_id] = status
        # shielded: a job cancelled while it waits must not cancel the answer the others wait for
        listed = await asyncio.shield(batch.answer)
        return listed.get(task_id) is status

    def _close(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None  # polls from now on start the next batch
        wanted = [s for s in _LISTED if sum(1 for m in batch.members.values() if m is s) >= 2]
        if not wanted:  # a lone poll per status: its own query costs less than a list
            batch.answer.set_result({})
            return
        task = asyncio.get_running_loop().create_task(self._answer(batch, wanted))
        self._answering.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._answering.discard)

    async def _answer(self, batch: _Batch, wanted: list[Status]) -> None:
        listed: dict[str, Status] = {}
        try:
            for status in wanted:
                req = self._provider.list_tasks(None, 1, status)
                if req is None:
                    break
                self.stats["lists"] += 1
                items, _more = self._provider.parse_list(await self._send(req))
                # only the members waiting on this status: a row for another task says nothing here
                listed.update((t.task_id, t.status) for t in items if batch.members.get(t.task_id) is status)
        except Exception as exc:  # noqa: BLE001 — any failure of the list: each job queries its task as before
            self.stats["list_failures"] += 1
            listed = {}
            if isinstance(exc, ApiError) and 400 <= exc.status < 500 and exc.status != 429:
                self.refused = f"{exc.status} {exc.code}".strip()  # the host refuses this list: stop asking
        self.stats["answered"] += len(listed)
        batch.answer.set_result(listed)
