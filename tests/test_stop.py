"""The stop button stops paying: a queued task is cancelled on the host, a running one (which the host
will not cancel, and bills) is still downloaded, an interrupted submit is answered before the row closes,
and a sweep's interrupt cancels its unfinished runs."""
from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from wanlab import T2V, FixedInterval, Lab, Limits, Status
from wanlab.errors import JobCanceled
from wanlab.sim import SimServer

from .conftest import FAST_RETRY, KEY

TS = 0.01


def _lab(sim: SimServer, tmp_path, protocol: str = "dashscope", **kw) -> Lab:
    url = sim.dashscope_url() if protocol == "dashscope" else sim.wavespeed_url
    return Lab(provider=protocol, api_key=KEY, base_url=url, time_scale=TS, retry=FAST_RETRY,
               home=tmp_path / "runs", quiet=True, **kw)


def _wait_for(pred, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


@pytest.fixture
def queued_sim():
    """Tasks wait PENDING for a long while (≈ 10⁴ host s): a stop always finds them queued."""
    with SimServer(time_scale=TS, seed=3, queue_base_s=10_000, latency_sigma=0.0) as server:
        yield server


@pytest.fixture
def running_sim():
    """Tasks start at once and run for minutes of host time: a stop finds them running."""
    with SimServer(time_scale=TS, seed=3, queue_base_s=0, latency_sigma=0.0) as server:
        yield server


def test_cancel_of_a_queued_task_cancels_it_on_the_host(queued_sim, tmp_path):
    with _lab(queued_sim, tmp_path) as lab:
        job = lab.submit(T2V("queued", duration=5, seed=1))
        _wait_for(lambda: job.task_id is not None and job.status is Status.PENDING, "PENDING")
        job.cancel()
        lab.wait([job], timeout=30)
        assert job.status is Status.CANCELED
        assert queued_sim.task_info(job.task_id)["status"] == "CANCELED"
        row = lab.log.get(job.id)
        assert row["status"] == "CANCELED" and row["cost"] == 0.0 and "cancelled on the host" in row["cancel"]
        with pytest.raises(JobCanceled):
            job.result(1)


def test_cancel_of_a_running_task_still_downloads_the_paid_video(running_sim, tmp_path):
    with _lab(running_sim, tmp_path) as lab:
        job = lab.submit(T2V("running", duration=10, resolution="1080P", seed=2))
        _wait_for(lambda: job.status is Status.RUNNING, "RUNNING")
        job.cancel()
        lab.wait([job], timeout=120)
        assert job.status is Status.SUCCEEDED and job.video_path.exists()
        assert job.cancel_outcome == "refused"
        row = lab.log.get(job.id)
        assert row["status"] == "SUCCEEDED" and row["path"] and "would not cancel" in row["cancel"]
        assert row["cost"] > 0               # it ran: billed, and counted


def test_cancel_on_a_host_without_cancel_downloads(running_sim, tmp_path):
    with _lab(running_sim, tmp_path, protocol="wavespeed") as lab:
        job = lab.submit(T2V("wavespeed", duration=5, seed=3))
        _wait_for(lambda: job.task_id is not None, "accepted")
        job.cancel()
        lab.wait([job], timeout=120)
        assert job.status is Status.SUCCEEDED and job.cancel_outcome == "unsupported"
        assert "no cancel" in lab.log.get(job.id)["cancel"]


def test_cancel_before_anything_is_sent_sends_nothing(queued_sim, tmp_path):
    from wanlab import Limits

    with _lab(queued_sim, tmp_path, limits=Limits(5, 20, 1)) as lab:
        first = lab.submit(T2V("holds the only slot", duration=5, seed=4))
        second = lab.submit(T2V("waits for a slot", duration=5, seed=5))
        _wait_for(lambda: first.task_id is not None, "first accepted")
        second.cancel()
        lab.wait([second], timeout=30)
        assert second.status is Status.CANCELED and second.task_id is None
        assert queued_sim.stats()["submits"] == 1
        first.cancel()
        lab.wait([first], timeout=30)


def test_cancel_during_a_slow_submit_waits_for_the_answer_then_cancels(tmp_path):
    """The interrupt lands while the submit is in flight: the host creates the task, so the job must learn
    its id and cancel it there — not end CANCELED with no task id while the host bills."""
    with SimServer(time_scale=TS, seed=3, queue_base_s=10_000, faults="submit:slow=1.0#1") as sim:
        with _lab(sim, tmp_path) as lab:
            job = lab.submit(T2V("slow submit", duration=5, seed=6))
            _wait_for(lambda: job.status is Status.SUBMITTING, "SUBMITTING")
            job.cancel()
            lab.wait([job], timeout=30)
            assert job.task_id is not None and job.status is Status.CANCELED
            assert sim.task_info(job.task_id)["status"] == "CANCELED"
            assert lab.log.get(job.id)["task_id"] == job.task_id


async def test_await_run_timeout_cancels_on_the_host(queued_sim, tmp_path):
    with _lab(queued_sim, tmp_path) as lab:
        with pytest.raises(TimeoutError, match="cancelled"):
            await lab.run(T2V("slow", duration=5, seed=7), timeout=1.0)
        job = lab.jobs[-1]
        await asyncio.to_thread(job.wait, 60)
        assert job.status is Status.CANCELED
        if job.task_id:
            assert queued_sim.task_info(job.task_id)["status"] == "CANCELED"


async def test_sigint_during_await_run_cancels_the_job_and_the_await(queued_sim, tmp_path):
    """The kernel's stop button is a SIGINT to the process: it must end the awaiting cell and cancel the task."""
    before = signal.getsignal(signal.SIGINT)
    with _lab(queued_sim, tmp_path) as lab:
        def press_stop() -> None:
            _wait_for(lambda: lab.jobs and lab.jobs[-1].status is Status.PENDING, "PENDING")
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=press_stop, daemon=True).start()
        with pytest.raises(KeyboardInterrupt, match="cancelled"):
            await lab.run(T2V("stop me", duration=5, seed=8))
        job = lab.jobs[-1]
        await asyncio.to_thread(job.wait, 60)
        assert job.status is Status.CANCELED and queued_sim.task_info(job.task_id)["status"] == "CANCELED"
    assert signal.getsignal(signal.SIGINT) is before        # the handler was put back


def test_sigint_during_run_sync_cancels_on_the_host(queued_sim, tmp_path):
    with _lab(queued_sim, tmp_path) as lab:
        def press_stop() -> None:
            _wait_for(lambda: lab.jobs and lab.jobs[-1].status is Status.PENDING, "PENDING")
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=press_stop, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            lab.run_sync(T2V("stop me too", duration=5, seed=9), timeout=60)
        job = lab.jobs[-1]
        lab.wait([job], timeout=30)
        assert job.status is Status.CANCELED and queued_sim.task_info(job.task_id)["status"] == "CANCELED"


def test_interrupting_a_sweep_cancels_its_unfinished_runs(queued_sim, tmp_path):
    with _lab(queued_sim, tmp_path) as lab:
        sweep = lab.sweep(T2V("grid", duration=5, seed=1), seed=[1, 2, 3, 4, 5, 6, 7])

        def press_stop() -> None:
            _wait_for(lambda: queued_sim.stats()["tasks"]["PENDING"] >= 5, "five PENDING")
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=press_stop, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            sweep.run(progress=False)
        lab.wait(timeout=60)
        sent = [j for j in sweep.jobs if j is not None]
        assert len(sent) == 5 and all(j.status is Status.CANCELED for j in sent)
        assert queued_sim.stats()["tasks"]["CANCELED"] == 5 and queued_sim.stats()["submits"] == 5


def test_closing_a_lab_detaches_polling_jobs_without_crashing_them(queued_sim, tmp_path, caplog):
    """Closing is not a stop button: tasks stay on the host, rows stay resumable, and no job is failed or
    logged as a crash by a client closed under it."""
    # 20 jobs polling all the time, unpaced: a close always meets polls in flight
    lab = _lab(queued_sim, tmp_path, poll=FixedInterval(0.01),
               limits=Limits(submits_per_s=1000, queries_per_s=100_000, concurrent_jobs=50))
    jobs = [lab.submit(T2V("a kite", duration=2, seed=s)) for s in range(20)]
    _wait_for(lambda: all(j.task_id and j.polls >= 1 for j in jobs), "every job polled once")
    with caplog.at_level("ERROR", logger="wanlab"):
        lab.close()
    assert not [r for r in caplog.records if "crashed" in r.getMessage()]
    assert all(j.status is Status.PENDING and j.detached for j in jobs), [j.status for j in jobs]
    statuses = {queued_sim.app.engine.tasks[j.task_id].status for j in jobs}
    assert statuses == {"PENDING"}                       # nothing cancelled on the host


async def test_awaits_that_end_out_of_order_leave_the_stop_button_as_it_was(running_sim, tmp_path):
    """Two `lab.run`s awaited together end in either order; afterwards SIGINT is the handler from before, so a
    later stop button raises KeyboardInterrupt instead of calling a finished await's handler."""
    before = signal.getsignal(signal.SIGINT)
    lab = _lab(running_sim, tmp_path)
    try:
        long, short = T2V("long", duration=10, seed=1), T2V("short", duration=2, seed=2)
        jobs = await asyncio.gather(lab.run(short), lab.run(long))   # the first begun ends first
        assert [j.status for j in jobs] == [Status.SUCCEEDED] * 2
        assert jobs[0].timings["ended"] < jobs[1].timings["ended"]
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        lab.close()
