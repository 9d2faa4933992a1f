"""wanlab's client over real loopback HTTP against the sim: retries, faults, reconciliation, resume of
downloads, limits, cancel and key hygiene."""
from __future__ import annotations

import asyncio
import io
import logging
import time

import pytest
from PIL import Image

import wanlab
from wanlab import I2V, T2V, Limits, Status
from wanlab.errors import AuthError, JobCanceled, JobFailed, UnconfirmedSubmit

from .conftest import KEY, RecordingTransport

REQ = T2V("a red kite over a green hill", duration=2, seed=11)


def _tasks_total(stats: dict) -> int:
    return sum(stats["tasks"].values())


def test_t2v_end_to_end(make_lab, sim):
    lab = make_lab()
    job = lab.run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    assert job.task_id and job.request_id
    assert job.video_info["width"] == 1280 and job.video_info["height"] == 720
    assert job.video_info["frames"] == 60 and job.video_info["codec"] == "h264"
    assert job.video_path.exists() and job.video_path.stat().st_size == job.bytes
    t = job.timings
    assert t["created"] <= t["started"] <= t["submitted"] <= t["ended"] <= t["downloaded"]
    assert job.usage.get("output_video_duration") == 2
    assert sim.stats()["submits"] == 1


def test_run_from_several_event_loops(make_lab):
    lab = make_lab()

    async def one() -> wanlab.Job:
        return await lab.run(REQ.replace(seed=1))

    # two different loops in a row, then a plain call: the same Lab serves all of them
    a = asyncio.run(one())
    b = asyncio.run(one())
    c = lab.run_sync(REQ.replace(seed=1), timeout=60)
    assert {a.status, b.status, c.status} == {Status.SUCCEEDED}
    assert a.sha256 == b.sha256 == c.sha256          # same request and seed, same bytes
    assert len({a.task_id, b.task_id, c.task_id}) == 3


async def test_await_inside_running_loop(make_lab):
    lab = make_lab()
    jobs = await asyncio.gather(*(lab.run(REQ.replace(seed=s)) for s in (1, 2, 3)))
    assert [j.status for j in jobs] == [Status.SUCCEEDED] * 3
    assert len({j.sha256 for j in jobs}) == 3        # different seeds, different videos


def test_429_retry_after_seconds_on_submit(make_lab, sim):
    sim.faults.set("submit:429=0.3#1")
    lab = make_lab()
    t0 = time.monotonic()
    job = lab.run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    retries = [e for e in job.events if e.kind == "retry"]
    assert retries and retries[0].data["retry_after"] == pytest.approx(0.3)
    assert time.monotonic() - t0 >= 0.3
    stats = sim.stats()
    assert stats["requests"]["submit"] == 2 and _tasks_total(stats) == 1


def test_429_retry_after_http_date_on_poll(make_lab, sim):
    sim.faults.set("query:429=date:2#1")
    lab = make_lab()
    job = lab.run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    retry = next(e for e in job.events if e.kind == "retry")
    # an HTTP date has one-second resolution: 2 s ahead reads as 1–2 s
    assert 0.9 <= retry.data["retry_after"] <= 2.0


def test_429_retry_after_on_a_download_is_honoured(make_lab, sim):
    sim.faults.set("download:429=0.3#1")
    job = make_lab().run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    retry = next(e for e in job.events if e.kind == "retry")
    assert retry.data["route"] == "download" and retry.data["retry_after"] == pytest.approx(0.3)


def test_retry_after_above_cap_is_clamped(make_lab, sim):
    sim.faults.set("query:429=600#1")
    lab = make_lab()
    t0 = time.monotonic()
    job = lab.run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    retry = next(e for e in job.events if e.kind == "retry")
    assert retry.data["clamped"] and time.monotonic() - t0 < 30


def test_5xx_storm_on_polls(make_lab, sim):
    sim.faults.set("query:503#1;2;3,query:500#4;5,query:502#6")
    lab = make_lab()
    job = lab.run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    assert sum(e.kind == "retry" for e in job.events) >= 6
    assert sim.stats()["submits"] == 1


def test_persistent_5xx_leaves_the_task_for_resume(make_lab, sim):
    sim.faults.set("query:500")
    lab = make_lab(retry=wanlab.RetryPolicy(max_attempts=3, base_s=0.01, max_backoff_s=0.02))
    job = lab.submit(REQ)
    with pytest.raises(wanlab.ServerError, match="InternalError"):
        job.result(30)
    # the host has the task and may bill it: not FAILED, but unfinished in the log, with the reason
    assert job.task_id and not job.status.terminal
    assert any(e.kind == "detached" and "lab.resume()" in e.detail for e in job.events)
    row = lab.log.get(job.id)
    assert row["status"] not in ("FAILED", "SUCCEEDED") and row["task_id"] == job.task_id
    sim.faults.clear()                                    # the outage ends
    [again] = lab.resume()
    assert again.id == job.id and again.result(30).status is Status.SUCCEEDED
    assert lab.log.get(job.id)["status"] == "SUCCEEDED" and sim.stats()["submits"] == 1


@pytest.mark.parametrize("fault", ["submit:slow=3#1", "submit:accept_reset#1"])
def test_ambiguous_submit_leaves_exactly_one_task(make_lab, sim, fault):
    sim.faults.set(fault)
    lab = make_lab(submit_timeout=0.5)
    job = lab.run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    assert any(e.kind == "reconciled" and "adopted" in e.detail for e in job.events)
    stats = sim.stats()
    assert stats["submits"] == 1 and _tasks_total(stats) == 1


def test_submit_500_without_task_is_resent_after_the_list_proves_it(make_lab, sim):
    sim.faults.set("submit:500#1")
    lab = make_lab()
    job = lab.run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    assert any(e.kind == "reconciled" and "safe to re-send" in e.detail for e in job.events)
    assert _tasks_total(sim.stats()) == 1


def test_ambiguous_submit_on_wavespeed_is_reported_not_resent(make_lab, sim):
    sim.faults.set("submit:accept_reset#1")
    lab = make_lab("wavespeed", limits=Limits(5, 10, 3))
    job = lab.submit(T2V("a kite", duration=2, seed=3))
    with pytest.raises(UnconfirmedSubmit) as info:
        job.result(30)
    assert job.status is Status.UNKNOWN
    assert info.value.fingerprint and info.value.fingerprint in str(info.value)
    assert sim.stats()["submits"] == 1                # never a second paid task


def test_download_cut_mid_stream_is_resumed_and_verified(make_lab, sim):
    sim.faults.set("download:truncate=0.4#1")
    transport = RecordingTransport()
    lab = make_lab(transport=transport)
    job = lab.run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    assert any(e.kind == "retry" and "resuming at byte" in e.detail for e in job.events)
    ranged = [r for r in transport.seen if "/_files/" in str(r.url) and "range" in r.headers]
    assert ranged and ranged[0].headers["range"].startswith("bytes=") and ranged[0].headers["range"] != "bytes=0-"
    assert job.video_info["frames"] == 60
    # the same request downloaded without a cut gives the same bytes
    sim.faults.clear()
    again = lab.run_sync(REQ, timeout=60)
    assert again.sha256 == job.sha256


def test_key_goes_only_to_the_api_host(make_lab, tmp_path):
    transport = RecordingTransport()
    lab = make_lab(transport=transport)
    img = tmp_path / "first.png"
    Image.new("RGB", (320, 240), (200, 40, 40)).save(img)
    job = lab.run_sync(I2V(image=img, duration=2, seed=5), timeout=60)
    assert job.status is Status.SUCCEEDED
    routes = {"api": [], "other": []}
    for r in transport.seen:
        kind = "other" if ("/_files/" in str(r.url) or "/_oss" in str(r.url)) else "api"
        routes[kind].append(r)
    assert routes["other"], "expected the OSS upload and the result download"
    assert all("authorization" not in r.headers for r in routes["other"])
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in routes["api"])


def test_local_files_upload_on_wavespeed(make_lab, tmp_path):
    transport = RecordingTransport()
    lab = make_lab("wavespeed", limits=Limits(5, 10, 3), transport=transport)
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (30, 90, 200)).save(buf, format="JPEG")
    job = lab.run_sync(I2V(image=buf.getvalue(), duration=2, seed=5), timeout=60)
    assert job.status is Status.SUCCEEDED
    puts = [r for r in transport.seen if r.method == "PUT"]
    assert puts and all("authorization" not in r.headers for r in puts)


def test_key_never_in_logs_reprs_or_errors(make_lab, sim, caplog):
    caplog.set_level(logging.DEBUG)
    sim.faults.set("submit:429=0.05#1,query:500#1,download:truncate#1")
    lab = make_lab()
    job = lab.run_sync(REQ, timeout=60)
    assert job.status is Status.SUCCEEDED
    texts = [repr(lab), str(lab), repr(job), repr(lab.client), repr(lab.secret), repr(lab.provider),
             job._repr_html_()]
    texts += [e.detail for e in job.events] + [r.getMessage() for r in caplog.records]
    assert len(texts) > 10 and all(KEY not in t for t in texts)
    assert KEY[-4:] in repr(lab.secret)     # masked, yet recognisable


def test_key_of_another_region(sim, tmp_path):
    beijing_key = "sk-beijing-only-key-000000000000"
    with wanlab.sim.SimServer(time_scale=0.002, key_regions={beijing_key: "beijing"}) as strict:
        lab = wanlab.Lab(provider="dashscope", api_key=beijing_key, base_url=strict.dashscope_url("singapore"),
                         region="singapore", time_scale=0.002, media_dir=tmp_path)
        try:
            job = lab.submit(REQ)
            with pytest.raises(AuthError) as info:
                job.result(30)
            msg = str(info.value)
            assert "InvalidApiKey" in msg and "bound to a region" in msg and "singapore" in msg
            assert beijing_key not in msg and beijing_key not in repr(job)
        finally:
            lab.close()


def test_failed_and_moderated_tasks(make_lab, sim):
    sim.faults.set("task:fail=InternalError.Timeout#1,task:moderation#2")
    lab = make_lab()
    a = lab.submit(REQ.replace(seed=21))
    with pytest.raises(JobFailed) as info:
        a.result(30)
    assert a.status is Status.FAILED and info.value.code == "InternalError.Timeout"
    b = lab.submit(REQ.replace(seed=22))
    with pytest.raises(JobFailed) as info:
        b.result(30)
    assert info.value.code == "DataInspectionFailed"


def test_cancel_pending_job_cancels_on_host(make_lab, sim):
    lab = make_lab(time_scale=0.05)
    slow = T2V("a long render", duration=15, resolution="1080P", seed=1)
    # fill the account's 5 slots on the host so the next task waits PENDING there
    others = [lab.submit(slow.replace(seed=s)) for s in range(2, 7)]
    deadline = time.time() + 20
    while sim.stats()["tasks"].get("RUNNING", 0) < 5 and time.time() < deadline:
        time.sleep(0.01)
    lab2 = make_lab(time_scale=0.05)
    job = lab2.submit(slow)
    deadline = time.time() + 20
    while job.status is not Status.PENDING and time.time() < deadline:
        time.sleep(0.01)
    assert job.status is Status.PENDING
    job.cancel()
    with pytest.raises(JobCanceled):
        job.result(10)
    assert any(e.kind == "cancel" and "cancelled on the host" in e.detail for e in job.events), job.events
    assert sim.stats()["tasks"].get("CANCELED") == 1
    for j in others:
        j.cancel()


def test_concurrent_job_limit(make_lab, sim):
    lab = make_lab(limits=Limits(submits_per_s=50, queries_per_s=100, concurrent_jobs=2))
    jobs = [lab.submit(REQ.replace(seed=s)) for s in range(6)]
    lab.wait(jobs, timeout=90)
    assert all(j.status is Status.SUCCEEDED for j in jobs)
    assert max(sim.stats()["max_running_by_key"].values()) <= 2


def test_submit_rate_limit_drips(make_lab, sim):
    lab = make_lab(limits=Limits(submits_per_s=5, queries_per_s=20, concurrent_jobs=20))
    jobs = [lab.submit(REQ.replace(seed=s, duration=2)) for s in range(12)]
    lab.wait(jobs, timeout=120)
    # What matters, whatever the machine's load: any 429 from the sim's per-key window was retried
    # (every job succeeded), and no submit was duplicated: 12 jobs, 12 distinct tasks, 12 created.
    # How many submit requests it took is not asserted: a late arrival may still meet a 429.
    assert all(j.status is Status.SUCCEEDED for j in jobs)
    assert len({j.task_id for j in jobs}) == 12 and None not in {j.task_id for j in jobs}
    stats = sim.stats()
    assert stats["submits"] == 12 and _tasks_total(stats) == 12
    assert stats["faults"] == {}   # only the sim's own rate window may have refused a submit


def test_poll_prior_follows_the_logs_history(make_lab):
    lab = make_lab()
    first = [lab.run_sync(REQ.replace(seed=s), timeout=60) for s in range(3)]
    runs = sorted(j.run_time for j in first)
    nxt = lab.submit(REQ.replace(seed=9))
    # the median run time of the three similar runs, in host seconds (the Lab's time scale undone)
    assert nxt.expected_run == pytest.approx(runs[1] / lab.time_scale, rel=0.05)
    near = lab.submit(REQ.replace(duration=3, seed=9))   # in the duration band: scaled by the catalog's model
    spec = near.model
    ratio = spec.expected_latency(REQ.resolution, 3) / spec.expected_latency(REQ.resolution, REQ.duration)
    assert near.expected_run == pytest.approx(runs[1] / lab.time_scale * ratio, rel=0.05)
    other = lab.submit(REQ.replace(duration=10, seed=9))
    assert other.expected_run is None             # no history in 7–14 s: the catalog's prior is used
    lab.wait(timeout=60)
