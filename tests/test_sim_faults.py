"""Every fault kind of wanlab sim, seen by plain httpx at the HTTP level."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from wanlab.sim import FaultPlan, SimServer
from wanlab.sim.faults import parse

SUBMIT = "/services/aigc/video-generation/video-synthesis"
H = {"Authorization": "Bearer sk-faults", "X-DashScope-Async": "enable"}
HW = {"Authorization": "Bearer ws-faults"}
BODY = {
    "model": "wan2.7-t2v",
    "input": {"prompt": "fault test"},
    "parameters": {"resolution": "720P", "duration": 2, "seed": 1},
}
DROPPED = (httpx.RemoteProtocolError, httpx.ReadError)


@pytest.fixture(scope="module")
def server():
    with SimServer(time_scale=0.004, dashscope_submits_per_s=None, dashscope_queries_per_s=None) as s:
        yield s


@pytest.fixture
def sim(server):
    server.faults.clear()
    yield server
    server.faults.clear()


def ds_submit(sim, **kw):
    return httpx.post(sim.dashscope_url() + SUBMIT, json=BODY, headers=H, **kw)


def ws_submit(sim, **kw):
    return httpx.post(
        sim.url + "/api/v3/alibaba/wan-2.7/text-to-video",
        headers=HW,
        json={"prompt": "fault test", "duration": 2, "resolution": "720p", "seed": 1},
        **kw,
    )


def wait_ds(sim, tid, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        o = httpx.get(f"{sim.dashscope_url()}/tasks/{tid}", headers=H).json()["output"]
        if o["task_status"] not in ("PENDING", "RUNNING"):
            return o
        time.sleep(0.05)
    raise AssertionError("task did not finish")


def wait_ws(sim, pid, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        d = httpx.get(f"{sim.url}/api/v3/predictions/{pid}/result", headers=HW).json()["data"]
        if d["status"] not in ("created", "processing"):
            return d
        time.sleep(0.05)
    raise AssertionError("prediction did not finish")


# ---- grammar ----
def test_grammar_parses_and_rejects():
    fs = parse("submit:429=2@0.5, query:503#1;3, task:fail=InternalError.Algo, download:truncate=0.3, *:slow=0.1")
    assert [(f.route, f.kind, f.arg) for f in fs] == [
        ("submit", "429", "2"),
        ("query", "503", None),
        ("task", "fail", "InternalError.Algo"),
        ("download", "truncate", "0.3"),
        ("*", "slow", "0.1"),
    ]
    assert fs[0].prob == 0.5 and fs[1].seq == {1, 3}
    for bad in (
        "submit:418",
        "nowhere:500",
        "query:truncate",
        "submit:500@2",
        "submit:429=abc",
        "query",
        "task:500",
        "download:truncate=1.5",
        "submit:500#0",
    ):
        with pytest.raises(ValueError) as err:
            parse(bad)
        assert repr(bad) in str(err.value) and "route:kind" in str(err.value)


def test_sequence_and_probability_counting():
    plan = FaultPlan(seed=1)
    plan.add("query", "503", seq=[2, 3])
    assert [plan.pick("query") is not None for _ in range(5)] == [False, True, True, False, False]
    plan.clear().add("query", "500", prob=0.0).add("query", "502", prob=1.0)
    assert plan.pick("query").kind == "502"
    assert plan.pick("submit") is None


# ---- HTTP answers ----
def test_429_retry_after_seconds_and_date(sim):
    sim.faults.set("submit:429=3#1,query:429=date:5#1")
    r = ds_submit(sim)
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json()["code"] == "Throttling.RateQuota"
    assert r.json()["message"] == "Requests rate limit exceeded, please try again later."
    q = httpx.get(sim.dashscope_url() + "/tasks/x", headers=H)
    assert q.status_code == 429
    when = email.utils.parsedate_to_datetime(q.headers["Retry-After"]).timestamp()
    assert 2 <= when - time.time() <= 7
    assert ds_submit(sim).status_code == 200


@pytest.mark.parametrize("status, code", [(500, "InternalError"), (502, "InternalError"), (503, "ServiceUnavailable")])
def test_5xx_bodies_per_host(sim, status, code):
    sim.faults.set(f"*:{status}#1")
    r = ds_submit(sim)
    assert r.status_code == status and r.json()["code"] == code and set(r.json()) == {"request_id", "code", "message"}
    sim.faults.set(f"submit:{status}")
    w = ws_submit(sim)
    assert w.status_code == status and w.json()["code"] == status and w.json()["data"] is None


def test_reset_drops_the_connection_without_an_answer(sim):
    sim.faults.set("query:reset#1")
    with pytest.raises(DROPPED):
        httpx.get(sim.dashscope_url() + "/tasks/x", headers=H)
    assert httpx.get(sim.dashscope_url() + "/tasks/x", headers=H).status_code == 200
    assert sim.stats()["faults"]["query:reset"] == 1


def test_accept_reset_creates_the_task_then_drops(sim):
    before = sim.stats()["submits"]
    sim.faults.set("submit:accept_reset#1")
    with pytest.raises(DROPPED):
        ds_submit(sim)
    assert sim.stats()["submits"] == before + 1
    rows = httpx.get(sim.dashscope_url() + "/tasks", params={"page_size": 100}, headers=H).json()["data"]
    assert rows, "the ambiguous submit must be visible in the task list"


def test_slow_submit_creates_the_task_before_the_delay(sim):
    before = sim.stats()["submits"]
    sim.faults.set("submit:slow=0.6#1")
    with pytest.raises(httpx.ReadTimeout):
        ds_submit(sim, timeout=0.2)
    assert sim.stats()["submits"] == before + 1
    t0 = time.time()
    sim.faults.set("query:slow=0.3#1")
    assert httpx.get(sim.dashscope_url() + "/tasks/x", headers=H).status_code == 200
    assert time.time() - t0 >= 0.3


def test_task_fail_and_moderation_dashscope(sim):
    sim.faults.set("task:fail=InternalError.Algo#1,task:moderation#2")
    a = ds_submit(sim).json()["output"]["task_id"]
    b = ds_submit(sim).json()["output"]["task_id"]
    oa, ob = wait_ds(sim, a), wait_ds(sim, b)
    assert oa["task_status"] == "FAILED" and oa["code"] == "InternalError.Algo" and oa["message"]
    assert ob["task_status"] == "FAILED" and ob["code"] == "DataInspectionFailed"
    assert "video_url" not in oa


def test_task_fail_and_moderation_wavespeed(sim):
    sim.faults.set("task:moderation#1,task:fail=5003#2,task:fail#3")
    ids = [ws_submit(sim).json()["data"]["id"] for _ in range(3)]
    m, f, g = (wait_ws(sim, i) for i in ids)
    assert m["status"] == "failed" and m["code"] == 1200 and m["has_nsfw_contents"] == [True] and m["error"]
    assert f["code"] == 5003 and g["code"] == 5000 and f["outputs"] == []


def test_truncated_download_then_range_resume(sim):
    tid = ds_submit(sim).json()["output"]["task_id"]
    url = wait_ds(sim, tid)["video_url"]
    full = httpx.get(url).content
    sim.faults.set("download:truncate=0.25#1")
    got = bytearray()
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("GET", url) as r:
            assert int(r.headers["content-length"]) == len(full)
            for chunk in r.iter_raw():
                got += chunk
    assert 0 < len(got) < len(full)
    rest = httpx.get(url, headers={"Range": f"bytes={len(got)}-"})
    assert rest.status_code == 206 and bytes(got) + rest.content == full


def test_faults_endpoint_sets_and_rejects(sim):
    r = httpx.post(sim.url + "/_sim/faults", json={"spec": "list:503#1"})
    assert r.status_code == 200 and r.json()["faults"] == ["list:503#1"]
    assert httpx.get(sim.dashscope_url() + "/tasks", headers=H).status_code == 503
    bad = httpx.post(sim.url + "/_sim/faults", json={"spec": "list:teapot"})
    assert bad.status_code == 400 and "teapot" in bad.json()["error"]
    assert sim.stats()["faults"]["list:503"] >= 1


def test_cli_style_spec_at_construction():
    with pytest.raises(ValueError):
        SimServer(faults="submit:nonsense")
    with SimServer(time_scale=0.004, faults="upload:500") as s:
        r = httpx.get(s.dashscope_url() + "/uploads", params={"action": "getPolicy", "model": "wan2.7-i2v"}, headers=H)
        assert r.status_code == 500
