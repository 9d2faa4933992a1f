"""The job's life in pieces: the state machine's table, the pure decisions (lifecycle, reconcile), the one
retry loop, and the runner end to end over httpx.MockTransport — no sockets, no sim."""
from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from wanlab import T2V, RetryPolicy
from wanlab import _lifecycle as lifecycle
from wanlab import _reconcile as reconcile
from wanlab._runner import JobRunner
from wanlab.catalog import get_model
from wanlab.errors import ApiError, LostContact, UnconfirmedSubmit
from wanlab.jobs import TRANSITIONS, IllegalTransition, Job, Status
from wanlab.media import MediaStore
from wanlab.providers import DashScope
from wanlab.providers.base import ListedTask, TaskSnapshot
from wanlab.retry import Outcome, retrying
from wanlab.secret import Secret

from .media_fixtures import write_mp4

SPEC = get_model("wan2.7-t2v")
REQ = T2V("a kite", duration=2, seed=3)
FAST = RetryPolicy(base_s=0.0, max_backoff_s=0.0, retry_after_cap_s=0.0, budget_s=60.0)


def _job(status: Status = Status.QUEUED) -> Job:
    job = Job(REQ, SPEC, host="dashscope")
    job.restore_state(status)
    return job


# -- the state machine -----------------------------------------------------------------------------------
def test_every_state_has_a_row_and_terminal_states_go_nowhere():
    assert set(TRANSITIONS) == set(Status)
    assert all(not TRANSITIONS[s] for s in Status if s.terminal)
    assert Status.SUCCEEDED in TRANSITIONS[Status.DOWNLOADING]
    assert not any(Status.SUCCEEDED in TRANSITIONS[s] for s in Status if s is not Status.DOWNLOADING)


@pytest.mark.parametrize("start, to", [(Status.QUEUED, Status.RUNNING), (Status.QUEUED, Status.SUCCEEDED),
                                       (Status.RUNNING, Status.PENDING), (Status.SUCCEEDED, Status.FAILED),
                                       (Status.CANCELED, Status.RUNNING), (Status.PENDING, Status.SUCCEEDED)])
def test_illegal_transitions_raise(start, to):
    job = _job(start)
    with pytest.raises(IllegalTransition, match=f"{start} → {to}"):
        job.set_status(to)
    assert job.status is start


def test_a_job_is_done_only_when_finished_and_callbacks_run():
    job = _job()
    seen = []
    job.add_done_callback(seen.append)
    assert not job.wait(0.01) and not job.done
    job.finish()
    assert job.wait(0.01) and seen == [job]


# -- pure decisions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("status, task_id, exc, verdict", [
    (Status.QUEUED, None, LostContact("x"), "failed"),                     # nothing left the machine
    (Status.SUBMITTING, None, LostContact("list failed"), "detach"),       # the host may have it
    (Status.SUBMITTING, None, lifecycle.no_task(ApiError("400")), "failed"),
    (Status.RUNNING, "t1", ApiError("401", status=401), "detach"),         # 401 after acceptance
    (Status.DOWNLOADING, "t1", OSError("disk full"), "detach"),
    (Status.SUBMITTING, None, UnconfirmedSubmit("?", "fp"), "detach"),     # a list to look at later
])
def test_verdict_terminal_only_on_the_hosts_word(status, task_id, exc, verdict):
    job = _job(status)
    job.task_id = task_id
    assert lifecycle.verdict(job, exc, supports_list=True) == verdict


def test_unconfirmed_submit_without_a_task_list_is_unknown():
    assert lifecycle.verdict(_job(Status.SUBMITTING), UnconfirmedSubmit("?", "fp"), supports_list=False) == "unknown"


def test_apply_downloads_on_success_and_never_goes_back():
    job = _job(Status.SUBMITTING)
    lifecycle.apply(job, TaskSnapshot("t1", Status.RUNNING))
    lifecycle.apply(job, TaskSnapshot("t1", Status.PENDING))        # a lagging view: ignored
    assert job.status is Status.RUNNING
    lifecycle.apply(job, TaskSnapshot("t1", Status.SUCCEEDED, video_url="https://x/v.mp4"))
    assert job.status is Status.DOWNLOADING and job.video_url == "https://x/v.mp4"


def test_run_start_puts_the_hosts_schedule_on_our_clock():
    job = _job(Status.RUNNING)
    job.timings["submitted"] = 1000.0
    snap = TaskSnapshot("t1", Status.RUNNING, submit_time="2026-04-02 14:00:00.000",
                        scheduled_time="2026-04-02 14:00:04.000")
    # accepted at 1000 on our wall clock, scheduled 4 s later by the host's: 1004; now 1010 → 6 s ago
    assert lifecycle.run_start(job, snap, None, this_poll=50.0, now=1010.0) == pytest.approx(44.0)
    assert lifecycle.run_start(job, TaskSnapshot("t1", Status.RUNNING), 40.0, 50.0) == 45.0


def _listed(task_id: str, created: int | None, model: str = "wan2.7-t2v") -> ListedTask:
    return ListedTask(task_id, Status.PENDING, model, "", created)


def test_candidates_are_unknown_tasks_of_our_model_since_we_sent():
    items = [_listed("known", 10_000_000), _listed("other-model", 10_000_000, "wan2.6-t2v"),
             _listed("too-old", 10_000_000 - reconcile.SLACK_MS - 1), _listed("ours", 10_000_000),
             _listed("no-time", None)]
    found = reconcile.candidates(items, {"known"}, "wan2.7-t2v", 10_000_000)
    assert [t.task_id for t in found] == ["ours", "no-time"]


def test_by_rank_matches_when_the_counts_agree():
    found = [_listed("b", 2000), _listed("a", 1000), _listed("c", 3000)]
    rows = [(10.0, "r1"), (30.0, "r3")]
    assert [t.task_id for t in reconcile.by_rank(found, rows, (20.0, "me"))] == ["b"]
    assert len(reconcile.by_rank(found, rows[:1], (20.0, "me"))) == 3            # counts differ: ambiguous
    assert len(reconcile.by_rank(found + [_listed("d", None)], rows, (20.0, "me"))) == 4


# -- the one retry loop --------------------------------------------------------------------------------------
async def test_retrying_retries_then_gives_up_with_the_last_outcome():
    tries, retried = [], []

    async def attempt(n: int) -> Outcome:
        tries.append(n)
        return Outcome.retry("HTTP 503", value=f"answer {n}")

    out = await retrying(attempt, RetryPolicy(max_attempts=3, base_s=0.0), random.Random(1),
                         give_up=lambda o, n: (o.value, n), on_retry=lambda o, n, d: retried.append(n))
    assert out == ("answer 3", 3) and tries == [1, 2, 3] and retried == [1, 2]


async def test_retrying_stops_at_done_or_fail():
    async def done(n: int) -> Outcome:
        return Outcome.done(n) if n == 2 else Outcome.retry("not yet")

    async def fail(n: int) -> Outcome:
        return Outcome.fail(ValueError("no"))

    assert await retrying(done, FAST, random.Random(), give_up=lambda o, n: None, on_retry=lambda *a: None) == 2
    with pytest.raises(ValueError):
        await retrying(fail, FAST, random.Random(), give_up=lambda o, n: None, on_retry=lambda *a: None)


async def test_retrying_respects_the_time_budget():
    clock = iter([0.0, 5.0, 11.0])

    async def attempt(n: int) -> Outcome:
        return Outcome.retry("slow")

    got = await retrying(attempt, RetryPolicy(max_attempts=99, base_s=0.0, budget_s=10.0), random.Random(),
                         give_up=lambda o, n: n, on_retry=lambda *a: None, clock=lambda: next(clock))
    assert got == 2


# -- the runner over MockTransport ---------------------------------------------------------------------------
class FakeDashScope:
    """Just enough of DashScope for one task: submit (optionally losing the answer), list, query, the video."""

    def __init__(self, video: bytes, lose_first_answer: bool = False):
        self.video = video
        self.lose_first_answer = lose_first_answer
        self.tasks: dict[str, int] = {}       # task id → polls so far
        self.submits = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith("/video-synthesis"):
            assert request.headers["Authorization"] == "Bearer sk-mock-0123456789abcdef"
            self.submits += 1
            tid = f"t{self.submits}"
            self.tasks[tid] = 0
            if self.lose_first_answer and self.submits == 1:
                raise httpx.ReadTimeout("answer lost", request=request)
            return httpx.Response(200, json={"request_id": "r", "output": {"task_id": tid, "task_status": "PENDING"}})
        if path.endswith("/tasks"):
            return httpx.Response(200, json={"data": [{"task_id": t, "status": "PENDING", "model_name": "wan2.7-t2v",
                                                       "request_id": "r", "gmt_create": str(4_102_444_800_000)}
                                                      for t in self.tasks], "page_no": 1, "total_page": 1})
        if "/tasks/" in path:
            tid = path.rsplit("/", 1)[1]
            self.tasks[tid] += 1
            done = self.tasks[tid] >= 2
            out = {"task_id": tid, "task_status": "SUCCEEDED" if done else "RUNNING"}
            if done:
                out["video_url"] = "https://oss.example/v.mp4"
            return httpx.Response(200, json={"request_id": "r", "output": out, "usage": {"duration": 2}})
        if path == "/v.mp4":
            assert "Authorization" not in request.headers          # the key never goes to the result host
            return httpx.Response(200, content=self.video)
        return httpx.Response(404, json={"code": "NotFound", "message": path})


def _runner(handler, tmp_path) -> JobRunner:
    return JobRunner(DashScope(region="singapore"), Secret("sk-mock-0123456789abcdef"),
                     retry=FAST, time_scale=0.0001, store=MediaStore(tmp_path / "media"),
                     transport=httpx.MockTransport(handler))


@pytest.fixture
def video(tmp_path) -> bytes:
    return write_mp4(tmp_path / "v.mp4", 1.0).read_bytes()


async def test_runner_submits_polls_and_downloads(tmp_path, video):
    host = FakeDashScope(video)
    runner = _runner(host, tmp_path)
    job = await runner.run(Job(REQ, SPEC, host="dashscope"))
    await runner.aclose()
    assert job.status is Status.SUCCEEDED and job.video_path.read_bytes() == video
    assert host.submits == 1 and job.polls == 2
    kinds = [e.kind for e in job.events]
    assert kinds.index("submitted") < kinds.index("downloaded")


async def test_runner_adopts_the_task_a_lost_answer_made(tmp_path, video):
    host = FakeDashScope(video, lose_first_answer=True)
    runner = _runner(host, tmp_path)
    job = await runner.run(Job(REQ, SPEC, host="dashscope"))
    await runner.aclose()
    assert job.status is Status.SUCCEEDED and job.task_id == "t1"
    assert host.submits == 1 and runner.stats["reconciled"] == 1


async def test_runner_cancel_before_sending_sends_nothing(tmp_path, video):
    host = FakeDashScope(video)
    runner = _runner(host, tmp_path)
    job = Job(REQ, SPEC, host="dashscope")
    runner.http.ensure()
    assert runner.http.slots is not None
    await runner.http.slots.acquire()               # every slot taken: the job waits QUEUED
    for _ in range(runner.limits.concurrent_jobs - 1):
        await runner.http.slots.acquire()
    task = asyncio.ensure_future(runner.run(job))
    await asyncio.sleep(0.01)
    job.cancel_requested = True
    runner.request_cancel(job)
    await task
    await runner.aclose()
    assert job.status is Status.CANCELED and host.submits == 0
