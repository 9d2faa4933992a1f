"""Polls due together share one task-list request (`_board.StatusBoard`); the list only ever spares a query."""

from __future__ import annotations

import asyncio
import json

import pytest

from wanlab import T2V, Limits, Status
from wanlab._board import StatusBoard
from wanlab._runner import JobRunner
from wanlab.providers.base import HttpRequest, HttpResponse
from wanlab.providers.dashscope import DashScope
from wanlab.providers.wavespeed import WaveSpeed
from wanlab.secret import Secret

from .conftest import KEY


class FakeList:
    """A task list that answers from `rows` (task id → host status), keeping every request it was sent."""

    def __init__(self, rows: dict[str, str], status: int = 200, fail: Exception | None = None) -> None:
        self.rows, self.status, self.fail = rows, status, fail
        self.sent: list[HttpRequest] = []

    async def __call__(self, req: HttpRequest) -> HttpResponse:
        self.sent.append(req)
        if self.fail is not None:
            raise self.fail
        want = (req.params or {}).get("status")
        data = [{"task_id": t, "status": s} for t, s in self.rows.items() if want in (None, s)]
        body = {"total": len(data), "total_page": 1, "page_no": 1, "page_size": 100, "data": data}
        return HttpResponse(self.status, {}, json.dumps(body).encode())


def run_polls(board: StatusBoard, known: dict[str, Status], cancel: str | None = None) -> dict[str, bool]:
    """Each task's job says its poll is due now, then asks the board, all at once (as jobs woken together do)."""

    async def main() -> dict[str, bool]:
        for task_id in known:
            board.expect(task_id, 0.0)
        tasks = {t: asyncio.create_task(board.unchanged(t, s)) for t, s in known.items()}
        if cancel is not None:
            await asyncio.sleep(0)  # every job has joined the batch
            tasks[cancel].cancel()
        out = {}
        for t, task in tasks.items():
            try:
                out[t] = await task
            except asyncio.CancelledError:
                out[t] = False
        return out

    return asyncio.run(main())


def board_for(send: FakeList, window: float = 0.05) -> StatusBoard:
    return StatusBoard(DashScope(base_url="https://host.invalid/api/v1"), send, window)


def test_polls_due_together_are_answered_by_one_list_request():
    send = FakeList({"a": "RUNNING", "b": "RUNNING", "c": "RUNNING", "other": "RUNNING"})
    board = board_for(send)
    got = run_polls(board, {"a": Status.RUNNING, "b": Status.RUNNING, "c": Status.RUNNING})
    assert got == {"a": True, "b": True, "c": True}
    assert len(send.sent) == 1
    assert send.sent[0].route == "list" and send.sent[0].params["status"] == "RUNNING"
    assert "model_name" not in send.sent[0].params  # one request for every model the account runs
    assert board.stats == {"lists": 1, "answered": 3, "list_failures": 0}


def test_a_change_or_a_task_missing_from_the_list_is_left_to_its_own_query():
    send = FakeList({"a": "RUNNING", "b": "SUCCEEDED"})  # "c" is not listed (the list may lag)
    got = run_polls(board_for(send), {"a": Status.RUNNING, "b": Status.RUNNING, "c": Status.RUNNING})
    assert got == {"a": True, "b": False, "c": False}


def test_pending_and_running_jobs_are_listed_separately_and_a_lone_one_is_not_listed():
    send = FakeList({"a": "RUNNING", "b": "RUNNING", "p": "PENDING"})
    got = run_polls(board_for(send), {"a": Status.RUNNING, "b": Status.RUNNING, "p": Status.PENDING})
    assert got == {"a": True, "b": True, "p": False}  # one PENDING job: its own query costs less than a list
    assert [r.params["status"] for r in send.sent] == ["RUNNING"]


def test_a_poll_with_nobody_due_in_its_window_sends_nothing_and_does_not_wait():
    send = FakeList({"a": "RUNNING"})
    board = board_for(send, window=30.0)  # were it to wait for a batch, the test would take 30 s

    async def main() -> bool:
        board.expect("a", 0.0)
        board.expect("later", 60.0)  # due after the window
        return await asyncio.wait_for(board.unchanged("a", Status.RUNNING), 10.0)

    assert asyncio.run(main()) is False
    assert send.sent == []


@pytest.mark.parametrize(
    "send",
    [FakeList({"a": "RUNNING", "b": "RUNNING"}, status=429), FakeList({}, fail=OSError("connection reset"))],
    ids=["answered 429", "transport error"],
)
def test_a_failed_list_leaves_every_job_to_query_its_task(send):
    board = board_for(send)
    assert run_polls(board, {"a": Status.RUNNING, "b": Status.RUNNING}) == {"a": False, "b": False}
    assert board.stats["list_failures"] == 1


def test_a_host_that_refuses_the_list_is_not_asked_again():
    """A 4xx other than 429 (say the host wants parameters this list does not send) would fail the same way every
    time: the board stops listing, and each poll is a query from then on."""
    send = FakeList({"a": "RUNNING", "b": "RUNNING"}, status=400)
    board = board_for(send)
    assert run_polls(board, {"a": Status.RUNNING, "b": Status.RUNNING}) == {"a": False, "b": False}
    assert board.refused.startswith("400")
    assert run_polls(board, {"a": Status.RUNNING, "b": Status.RUNNING}) == {"a": False, "b": False}
    assert len(send.sent) == 1


def test_a_job_cancelled_while_it_waits_does_not_take_the_answer_from_the_others():
    send = FakeList({"a": "RUNNING", "b": "RUNNING", "c": "RUNNING"})
    got = run_polls(board_for(send), {"a": Status.RUNNING, "b": Status.RUNNING, "c": Status.RUNNING}, cancel="a")
    assert got == {"a": False, "b": True, "c": True}


def test_only_a_host_with_a_task_list_gets_a_board():
    secret = Secret(KEY)
    assert JobRunner(DashScope(base_url="https://h.invalid/api/v1"), secret).board is not None
    assert JobRunner(WaveSpeed("https://h.invalid/api/v3"), secret).board is None


def test_a_sweep_on_the_sim_asks_fewer_questions_and_gets_the_same_videos(make_lab, sim):
    """Eight jobs submitted together: their polls share list requests, yet each job still reads its change of
    state (running, done, video URL) from its own query, and every video arrives."""
    lab = make_lab(limits=Limits(submits_per_s=1000, queries_per_s=1000, concurrent_jobs=8), measure=False)
    jobs = [lab.submit(T2V("a lighthouse at dusk", resolution="720P", duration=2, seed=i)) for i in range(8)]
    lab.wait(jobs, timeout=120)
    assert [j.status for j in jobs] == [Status.SUCCEEDED] * 8
    assert all(j.video_path and j.video_path.exists() and j.bytes for j in jobs)
    asked = sim.stats()["requests"]
    board = lab.client.board
    assert board is not None and board.stats["lists"] == asked.get("list", 0) >= 1
    polls = sum(j.polls for j in jobs)
    # the host was asked fewer times than the jobs polled (its own 429s and their retries included)
    assert asked["query"] + asked["list"] < polls
    assert board.stats["answered"] > 0
