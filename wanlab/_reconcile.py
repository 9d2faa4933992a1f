"""After an ambiguous submit (a timeout, a dropped connection, a 5xx after the body left): find the task
it created on the host, prove there is none, or say it cannot be told — never send a second paid task
blindly. The filters are pure functions; `find_task` does the looking through the runner's calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from .errors import UnconfirmedSubmit
from .jobs import Job
from .providers.base import ListedTask, TaskSnapshot

if TYPE_CHECKING:
    from ._runner import JobRunner

SLACK_MS = 120_000  # host and client clocks may disagree
LOOKS = 3  # a task may show up in the list a moment after it was made


def candidates(items: Iterable[ListedTask], known: set[str], model: str, sent_ms: float) -> list[ListedTask]:
    """Tasks the host lists that may be ours: unknown to this log, of our model, made since we sent."""
    return [
        t
        for t in items
        if t.task_id not in known and t.model == model and (t.created_ms is None or t.created_ms >= sent_ms - SLACK_MS)
    ]


def prompt_matches(snap: TaskSnapshot, wire_prompt: str) -> bool:
    """A task whose prompt the host reveals (`orig_prompt`, once it ends) and that differs is not ours;
    one still running reveals none and stays a candidate."""
    theirs = (snap.raw.get("output") or {}).get("orig_prompt") if isinstance(snap.raw, dict) else None
    return theirs is None or theirs == wire_prompt


def by_rank(found: list[ListedTask], rows: list[tuple[float, str]], mine: tuple[float, str]) -> list[ListedTask]:
    """Several unknown tasks and several rows (in any process on this log) still waiting to learn their task
    id: submits to one account go one at a time (the submit turn), so the host made the tasks in the order the
    rows were sent. Match by rank when the counts agree; otherwise leave it ambiguous."""
    if any(t.created_ms is None for t in found):
        return found
    everyone = sorted(rows + [mine])
    if len(everyone) != len(found):
        return found
    return [sorted(found, key=lambda t: t.created_ms or 0)[everyone.index(mine)]]


async def find_task(
    runner: JobRunner, job: Job, sent_ms: int, why: str, claimants: Callable[[Job, float], list[tuple[float, str]]]
) -> TaskSnapshot | None:
    """The task an ambiguous submit made (adopted), None when the host's list proves there is none (the
    caller may re-send), or UnconfirmedSubmit when it cannot be told."""
    provider = runner.provider
    if not provider.supports_list:
        raise UnconfirmedSubmit(
            f"submit to {provider.name} ended ambiguously ({why}): the host may have created (and will "
            f"bill) a task, and it has no task list to check. Not re-sent. Request fingerprint "
            f"sha256:{job.fingerprint}; look for it in the host's console.",
            job.fingerprint or "",
        )
    known = runner.known_task_ids()
    for look in range(LOOKS):
        if look:
            await asyncio.sleep(max(0.05, 1.0 * runner.time_scale) * look)
        found: list[ListedTask] = []
        page = 1
        while True:
            req = provider.list_tasks(job.model.id, page)
            assert req is not None
            items, more = provider.parse_list(await runner.call(req, job))
            found += candidates(items, known, job.model.id, sent_ms)
            if not more or page >= 20:
                break
            page += 1
        snaps = {}
        for t in found[:10]:
            snap = provider.parse_query(await runner.call(provider.query(t.task_id), job), t.task_id)
            if prompt_matches(snap, job.request.wire_prompt()):
                snaps[t.task_id] = replace(snap, request_id=snap.request_id or t.request_id)
        found = [t for t in found if t.task_id in snaps]
        if len(found) > 1:
            found = by_rank(found, claimants(job, (sent_ms - SLACK_MS) / 1000), (job.timings["started"] or 0.0, job.id))
        if len(found) == 1:
            runner.stats["reconciled"] += 1
            job.emit(
                "reconciled",
                f"submit ended ambiguously ({why}); the host lists task {found[0].task_id} "
                f"created then: adopted, not re-sent",
                task_id=found[0].task_id,
            )
            return snaps[found[0].task_id]
        if len(found) > 1:
            raise UnconfirmedSubmit(
                f"submit ended ambiguously ({why}) and the host lists {len(found)} unknown "
                f"{job.model.id} tasks since then ({', '.join(c.task_id for c in found[:5])}); "
                f"not re-sent. Fingerprint sha256:{job.fingerprint}",
                job.fingerprint or "",
            )
    runner.stats["resubmits"] += 1
    job.emit(
        "reconciled", f"submit ended ambiguously ({why}); no new task on the host after {LOOKS} looks: safe to re-send"
    )
    return None
