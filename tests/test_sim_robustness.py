"""Malformed requests get the host's own 400, never a 500, and never change the sim: media fields of
the wrong type, bodies that are not JSON objects, bad UTF-8, JSON nested 10,000 deep, non-finite
numbers, and bad /_sim/* control requests (a NaN clock advance once broke every later answer)."""

from __future__ import annotations

import json

import httpx
import pytest

from wanlab.sim import SimServer

KEY = "sk-robustness-test"
DS_SUBMIT = "/api/v1/services/aigc/video-generation/video-synthesis"
DS_HEADERS = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable", "Content-Type": "application/json"}
WS_HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
DEEP = b"[" * 10_000 + b"]" * 10_000


@pytest.fixture(scope="module")
def sim():
    with SimServer(time_scale=0.004, seed=3, dashscope_submits_per_s=None, dashscope_queries_per_s=None) as s:
        yield s


def _raw(body: object) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _media(model: str, *items: dict) -> dict:
    return {"model": model, "input": {"prompt": "p", "media": list(items)}}


def _legacy(model: str, **inp: object) -> dict:
    return {"model": model, "input": {"prompt": "p", **inp}}


DS_BAD = {
    "media url is a number": _media("wan2.7-i2v", {"type": "first_frame", "url": 5}),
    "media url is an object": _media("wan2.7-i2v", {"type": "first_frame", "url": {"a": 1}}),
    "reference image url is a number": _media("wan2.7-r2v", {"type": "reference_image", "url": 5}),
    "edit video url is a list": _media("wan2.7-videoedit", {"type": "video", "url": [1]}),
    "img_url is a number": _legacy("wan2.5-i2v-preview", img_url=5),
    "first_frame_url is a number": _legacy("wanx2.1-kf2v-plus", first_frame_url=5, last_frame_url="data:,x"),
    "last_frame_url is a number": _legacy("wanx2.1-kf2v-plus", first_frame_url="data:,x", last_frame_url=5),
    "reference_urls is a number": _legacy("wan2.6-r2v", reference_urls=5),
    "reference_urls holds a number": _legacy("wan2.6-r2v", reference_urls=[5]),
    "reference_video_urls is a number": _legacy("wan2.6-r2v", reference_video_urls=5),
    "10,000 levels of nesting": DEEP,
    "deep nesting inside a field": b'{"model": ' + DEEP + b"}",
    "a JSON array": [1, 2],
    "a JSON number": 5,
    "bad UTF-8": b'{"model": "\xff\xfe"}',
    "NaN literal": b'{"model": "wan2.7-t2v", "input": {"prompt": "p"}, "parameters": {"duration": NaN}}',
    "number out of range": b'{"model": "wan2.7-t2v", "input": {"prompt": "p"}, "parameters": {"seed": 1e400}}',
}

WS_BAD = {
    "image is a number": ("alibaba/wan-2.5/image-to-video", {"image": 5, "prompt": "p"}),
    "image is an object": ("alibaba/wan-2.5/image-to-video", {"image": {"a": 1}, "prompt": "p"}),
    "last_image is a number": ("alibaba/wan-2.5/image-to-video", {"image": "data:,x", "last_image": 5}),
    "video is a number": ("alibaba/wan-2.7/video-edit", {"video": 5, "prompt": "p"}),
    "images is a number": ("alibaba/wan-2.7/reference-to-video", {"images": 5, "prompt": "p"}),
    "videos hold a number": ("alibaba/wan-2.7/reference-to-video", {"videos": [5], "prompt": "p"}),
    "seed is infinite": ("alibaba/wan-2.5/text-to-video", b'{"prompt": "p", "seed": 1e400}'),
    "duration is Infinity": ("alibaba/wan-2.5/text-to-video", b'{"prompt": "p", "duration": Infinity}'),
    "seed is a bool": ("alibaba/wan-2.5/text-to-video", {"prompt": "p", "seed": True}),
    "10,000 levels of nesting": ("alibaba/wan-2.5/text-to-video", DEEP),
    "a JSON string": ("alibaba/wan-2.5/text-to-video", "text"),
    "bad UTF-8": ("alibaba/wan-2.5/text-to-video", b'{"prompt": "\xff"}'),
    "upload size is infinite": ("media/uploads", b'{"filename": "a.png", "size": 1e400}'),
    "upload body nested deep": ("media/uploads", DEEP),
}


@pytest.mark.parametrize("body", DS_BAD.values(), ids=DS_BAD.keys())
def test_dashscope_refuses_malformed_fields_with_its_400(sim, body):
    r = httpx.post(sim.url + DS_SUBMIT, content=_raw(body), headers=DS_HEADERS)
    assert r.status_code == 400, r.text
    err = r.json()
    assert set(err) == {"request_id", "code", "message"} and err["code"] == "InvalidParameter"


@pytest.mark.parametrize("path,body", WS_BAD.values(), ids=WS_BAD.keys())
def test_wavespeed_refuses_malformed_fields_with_its_400(sim, path, body):
    r = httpx.post(f"{sim.url}/api/v3/{path}", content=_raw(body), headers=WS_HEADERS)
    assert r.status_code == 400, r.text
    err = r.json()
    assert err["code"] == 400 and err["data"] is None and isinstance(err["message"], str)


def test_malformed_submits_create_no_tasks_and_the_sim_keeps_working(sim):
    before = sim.stats()["submits"]
    for body in DS_BAD.values():
        httpx.post(sim.url + DS_SUBMIT, content=_raw(body), headers=DS_HEADERS)
    assert sim.stats()["submits"] == before
    ok = httpx.post(
        sim.url + DS_SUBMIT,
        headers=DS_HEADERS,
        json={"model": "wan2.7-t2v", "input": {"prompt": "still fine"}, "parameters": {"duration": 2, "seed": 1}},
    )
    assert ok.status_code == 200 and ok.json()["output"]["task_status"] == "PENDING"


CLOCK_BAD = {
    "NaN as a string": {"advance": "nan"},
    "a numeric string": {"advance": "5"},
    "a bool": {"advance": True},
    "negative": {"advance": -1},
    "null": {"advance": None},
    "NaN literal": b'{"advance": NaN}',
    "out of range": b'{"advance": 1e400}',
    "not an object": [1],
    "nested deep": DEEP,
    "bad UTF-8": b'{"advance": "\xff"}',
}


@pytest.mark.parametrize("body", CLOCK_BAD.values(), ids=CLOCK_BAD.keys())
def test_clock_control_validates_and_leaves_the_clock_alone(sim, body):
    before = httpx.get(sim.url + "/_sim/clock").json()["offset"]
    r = httpx.post(sim.url + "/_sim/clock", content=_raw(body))
    assert r.status_code == 400 and r.json()["error"]
    assert httpx.get(sim.url + "/_sim/clock").json()["offset"] == before
    assert httpx.get(sim.url + "/_sim/stats").status_code == 200


def test_a_refused_clock_advance_breaks_no_later_answer(sim):
    httpx.post(sim.url + "/_sim/clock", json={"advance": "nan"})
    tid = httpx.post(
        sim.url + DS_SUBMIT,
        headers=DS_HEADERS,
        json={"model": "wan2.7-t2v", "input": {"prompt": "after"}, "parameters": {"duration": 2}},
    ).json()["output"]["task_id"]
    q = httpx.get(f"{sim.url}/api/v1/tasks/{tid}", headers=DS_HEADERS)
    assert q.status_code == 200 and q.json()["output"]["submit_time"]
    assert httpx.post(sim.url + "/_sim/clock", json={"advance": 0.5}).status_code == 200


def test_clock_advance_from_python_rejects_non_finite(sim):
    for bad in (float("nan"), float("inf"), -1.0, "3"):
        with pytest.raises(ValueError):
            sim.advance(bad)


FAULTS_BAD = {
    "spec is a number": {"spec": 5},
    "append is a string": {"spec": "query:503#1", "append": "yes"},
    "NaN delay": {"spec": "submit:slow=nan"},
    "infinite Retry-After": {"spec": "submit:429=inf"},
    "NaN Retry-After date": {"spec": "submit:429=date:nan"},
    "NaN probability": {"spec": "query:503@nan"},
    "unknown kind": {"spec": "list:teapot"},
    "not an object": ["query:503"],
    "nested deep": DEEP,
}


@pytest.mark.parametrize("body", FAULTS_BAD.values(), ids=FAULTS_BAD.keys())
def test_faults_control_validates_and_keeps_the_plan(sim, body):
    sim.faults.set("download:503#99")
    r = httpx.post(sim.url + "/_sim/faults", content=_raw(body))
    assert r.status_code == 400 and r.json()["error"]
    assert sim.faults.describe() == ["download:503#99"]
    sim.faults.clear()


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/_sim/stats"),
        ("PUT", "/_sim/clock"),
        ("DELETE", "/_sim/faults"),
        ("POST", "/_sim/tasks/x"),
        ("POST", "/_sim/health"),
    ],
)
def test_control_routes_refuse_other_methods(sim, method, path):
    r = httpx.request(method, sim.url + path)
    assert r.status_code == 405 and r.json()["error"] and r.headers["allow"]


def test_upload_policy_form_with_odd_status_answers_204(sim):
    pol = httpx.get(
        sim.url + "/api/v1/uploads", params={"action": "getPolicy", "model": "wan2.7-i2v"}, headers=DS_HEADERS
    ).json()["data"]
    fields = {
        "OSSAccessKeyId": pol["oss_access_key_id"],
        "Signature": pol["signature"],
        "policy": pol["policy"],
        "key": pol["upload_dir"] + "/a.png",
        "x-oss-object-acl": "private",
        "success_action_status": "two",
    }
    r = httpx.post(pol["upload_host"], data=fields, files={"file": ("a.png", b"png", "image/png")})
    assert r.status_code == 204
