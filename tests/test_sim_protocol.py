"""wanlab sim at the HTTP level (plain httpx): DashScope and WaveSpeed wire details, limits, expiry,
determinism, stats."""

from __future__ import annotations

import base64
import io
import time

import httpx
import pytest
from PIL import Image

from wanlab.catalog import output_size
from wanlab.sim import SimServer
from wanlab.sim.render import probe

SUBMIT = "/services/aigc/video-generation/video-synthesis"
KEY = "sk-protocol-test"
H = {"Authorization": f"Bearer {KEY}", "X-DashScope-Async": "enable"}


def png_data_uri(w: int = 640, h: int = 480, color=(10, 120, 200)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def t2v(model: str = "wan2.7-t2v", **par) -> dict:
    return {
        "model": model,
        "input": {"prompt": "a red kite over the sea"},
        "parameters": {"resolution": "720P", "duration": 2, **par},
    }


def wait_ds(sim: SimServer, task_id: str, headers=H, base: str | None = None, timeout: float = 20) -> dict:
    base = base or sim.dashscope_url()
    end = time.time() + timeout
    while time.time() < end:
        body = httpx.get(f"{base}/tasks/{task_id}", headers=headers).json()
        if body["output"]["task_status"] not in ("PENDING", "RUNNING"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


@pytest.fixture(scope="module")
def sim():
    with SimServer(time_scale=0.004, seed=7, dashscope_submits_per_s=None, dashscope_queries_per_s=None) as s:
        yield s


def submit(sim, body, headers=H, base=None) -> httpx.Response:
    return httpx.post((base or sim.dashscope_url()) + SUBMIT, json=body, headers=headers)


# ---- DashScope ------------------------------------------------------------------------------------
def test_t2v_roundtrip_usage_times_and_video(sim):
    r = submit(sim, t2v(seed=11))
    assert r.status_code == 200
    out = r.json()["output"]
    assert out["task_status"] == "PENDING" and set(r.json()) == {"request_id", "output"}
    body = wait_ds(sim, out["task_id"])
    o = body["output"]
    assert o["task_status"] == "SUCCEEDED"
    for k in ("submit_time", "scheduled_time", "end_time"):
        assert len(o[k]) == 23 and o[k][4] == "-" and o[k][19] == "."
    assert "actual_prompt" not in o and o["orig_prompt"] == "a red kite over the sea"
    assert body["usage"] == {
        "duration": 2,
        "input_video_duration": 0,
        "output_video_duration": 2,
        "video_count": 1,
        "ratio": "16:9",
        "SR": 720,
    }
    assert "Expires=" in o["video_url"] and "Signature=" in o["video_url"]
    v = httpx.get(o["video_url"])
    assert v.status_code == 200 and v.headers["content-type"] == "video/mp4"
    p = probe(v.content)
    assert (p["width"], p["height"]) == output_size("720P", "16:9") and p["frames"] == 60


def test_usage_shapes_26_and_25(sim):
    r26 = submit(
        sim,
        {"model": "wan2.6-t2v", "input": {"prompt": "p"}, "parameters": {"size": "1280*720", "duration": 2, "seed": 1}},
    )
    r25 = submit(
        sim,
        {
            "model": "wan2.5-t2v-preview",
            "input": {"prompt": "p"},
            "parameters": {"size": "832*480", "duration": 5, "seed": 1},
        },
    )
    assert r26.status_code == 200 and r25.status_code == 200, (r26.text, r25.text)
    b26 = wait_ds(sim, r26.json()["output"]["task_id"])
    b25 = wait_ds(sim, r25.json()["output"]["task_id"])
    assert b26["usage"] == {
        "duration": 2,
        "size": "1280*720",
        "input_video_duration": 0,
        "output_video_duration": 2,
        "video_count": 1,
        "SR": 720,
    }
    assert b25["usage"] == {"video_duration": 5, "video_ratio": "832*480", "video_count": 1}
    assert "actual_prompt" in b25["output"]
    assert probe(httpx.get(b25["output"]["video_url"]).content)["width"] == 832


def test_i2v_and_flf2v_follow_image_aspect(sim):
    img = png_data_uri(480, 640)
    r = submit(
        sim,
        {
            "model": "wan2.7-i2v",
            "input": {
                "prompt": "p",
                "media": [
                    {"type": "first_frame", "url": img},
                    {"type": "last_frame", "url": png_data_uri(480, 640, (0, 0, 0))},
                ],
            },
            "parameters": {"resolution": "720P", "duration": 2, "seed": 2},
        },
    )
    assert r.status_code == 200, r.text
    body = wait_ds(sim, r.json()["output"]["task_id"])
    p = probe(httpx.get(body["output"]["video_url"]).content)
    assert (p["width"], p["height"]) == output_size("720P", None, 480 / 640)


@pytest.mark.parametrize(
    "body, status, code, fragment",
    [
        (t2v("wan2.7-nope"), 400, "InvalidParameter", "Model not exist."),
        (t2v(resolution="480P"), 400, "InvalidParameter", "480P"),
        (t2v(duration=20), 400, "InvalidParameter", "duration"),
        (
            {
                "model": "wan2.7-i2v",
                "input": {"prompt": "p", "media": [{"type": "last_frame", "url": "data:,x"}]},
                "parameters": {"resolution": "720P", "duration": 2},
            },
            400,
            "InvalidParameter",
            "combination",
        ),
        (
            {"model": "wan2.2-t2v-plus", "input": {"prompt": "p"}, "parameters": {"size": "1280*720"}},
            400,
            "InvalidParameter",
            "size",
        ),
    ],
)
def test_invalid_submits(sim, body, status, code, fragment):
    r = submit(sim, body)
    assert r.status_code == status
    j = r.json()
    assert set(j) == {"request_id", "code", "message"} and j["code"] == code and fragment in j["message"]


def test_missing_async_header_and_keys(sim):
    r = submit(sim, t2v(), headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 403 and r.json()["code"] == "AccessDenied"
    assert r.json()["message"] == "current user api does not support synchronous calls"
    r = submit(sim, t2v(), headers={"X-DashScope-Async": "enable"})
    assert r.status_code == 401 and r.json() == {**r.json(), "code": "InvalidApiKey", "message": "No API-key provided."}
    r = submit(sim, t2v(), headers={"Authorization": "Bearer", "X-DashScope-Async": "enable"})
    assert r.status_code == 401


def test_virginia_serves_26_only(sim):
    base = sim.dashscope_url("virginia")
    assert base.endswith("/virginia/api/v1")
    r = submit(sim, t2v(), base=base)
    assert r.status_code == 400 and r.json()["message"] == "Model not exist."
    r = submit(sim, {"model": "wan2.6-t2v-us", "input": {"prompt": "p"}, "parameters": {"duration": 5}}, base=base)
    assert r.status_code == 200


def test_key_list_and_regions():
    with SimServer(time_scale=0.004, keys=["sk-a", "sk-b"], key_regions={"sk-b": "beijing"}) as s:
        bad = submit(s, t2v(), headers={**H, "Authorization": "Bearer sk-zzz"})
        assert bad.status_code == 401 and bad.json()["message"] == "Invalid API-key provided."
        assert submit(s, t2v(), headers={**H, "Authorization": "Bearer sk-a"}).status_code == 200
        hb = {**H, "Authorization": "Bearer sk-b"}
        cross = submit(s, t2v(), headers=hb)  # sk-b is a Beijing key used on Singapore
        assert cross.status_code == 401 and cross.json()["code"] == "InvalidApiKey"
        assert cross.json()["message"] == "Invalid API-key provided."
        assert submit(s, t2v(), headers=hb, base=s.dashscope_url("beijing")).status_code == 200
        ws = httpx.get(s.url + "/api/v3/predictions/x/result", headers={"Authorization": "Bearer nope"})
        assert ws.status_code == 401 and ws.json()["code"] == 401 and ws.json()["data"] is None
        assert "sk-" not in str(s.stats())


def test_unknown_task_is_unknown_200(sim):
    r = httpx.get(sim.dashscope_url() + "/tasks/00000000-0000-0000-0000-000000000000", headers=H)
    assert r.status_code == 200
    assert r.json()["output"] == {"task_id": "00000000-0000-0000-0000-000000000000", "task_status": "UNKNOWN"}


def test_cancel_pending_vs_running_and_concurrency_queue():
    # A runs for seconds of real time: a busy machine cannot let it finish (and B start) before we look
    with SimServer(time_scale=0.05, dashscope_concurrency=1, queue_base_s=0, latency_sigma=0.0) as s:
        a = submit(s, t2v(seed=1)).json()["output"]["task_id"]
        b = submit(s, t2v(seed=2)).json()["output"]["task_id"]
        deadline = time.monotonic() + 30
        while s.task_info(a)["status"] != "RUNNING":
            assert time.monotonic() < deadline, s.task_info(a)
            time.sleep(0.01)
        q = {t: httpx.get(f"{s.dashscope_url()}/tasks/{t}", headers=H).json()["output"]["task_status"] for t in (a, b)}
        assert q == {a: "RUNNING", b: "PENDING"}
        r = httpx.post(f"{s.dashscope_url()}/tasks/{a}/cancel", headers=H)
        assert r.status_code == 400 and r.json()["code"] == "UnsupportedOperation"
        r = httpx.post(f"{s.dashscope_url()}/tasks/{b}/cancel", headers=H)
        assert r.status_code == 200 and set(r.json()) == {"request_id"}, (r.text, s.task_info(b))
        ob = httpx.get(f"{s.dashscope_url()}/tasks/{b}", headers=H).json()["output"]
        assert ob["task_status"] == "CANCELED"
        assert wait_ds(s, a)["output"]["task_status"] == "SUCCEEDED"
        st = s.stats()
        assert st["tasks"]["CANCELED"] == 1 and max(st["max_running_by_key"].values()) == 1


def test_list_tasks(sim):
    tid = submit(sim, t2v(seed=99)).json()["output"]["task_id"]
    r = httpx.get(sim.dashscope_url() + "/tasks", params={"model_name": "wan2.7-t2v", "page_size": 100}, headers=H)
    j = r.json()
    assert r.status_code == 200 and {"total", "data", "total_page", "page_no", "page_size", "request_id"} <= set(j)
    row = next(d for d in j["data"] if d["task_id"] == tid)
    assert row["model_name"] == "wan2.7-t2v" and isinstance(row["gmt_create"], int) and row["region"]


def test_rate_limits_429_with_retry_after():
    with SimServer(
        time_scale=0.004, dashscope_submits_per_s=2, dashscope_queries_per_s=3, wavespeed_submits_per_min=1
    ) as s:
        for window in (s.app.ds.submit_rate, s.app.ds.query_rate, s.app.ws.submit_rate):
            window.clock = lambda: 0.0  # every request in the same instant, however slow the machine
        codes = [submit(s, t2v(seed=i)).status_code for i in range(3)]
        assert codes == [200, 200, 429]
        r = submit(s, t2v())
        assert r.json()["code"] == "Throttling.RateQuota" and r.headers["Retry-After"] == "1"
        qs = [httpx.get(s.dashscope_url() + "/tasks/x", headers=H).status_code for _ in range(4)]
        assert qs[:3] == [200, 200, 200] and qs[3] == 429
        hw = {"Authorization": "Bearer w"}
        body = {"prompt": "p", "duration": 2}
        assert httpx.post(s.url + "/api/v3/alibaba/wan-2.7/text-to-video", json=body, headers=hw).status_code == 200
        r = httpx.post(s.url + "/api/v3/alibaba/wan-2.7/text-to-video", json=body, headers=hw)
        assert r.status_code == 429 and r.json()["code"] == 429


def test_oss_upload_flow_requires_resolve_header(sim):
    pol = httpx.get(
        sim.dashscope_url() + "/uploads",
        params={"action": "getPolicy", "model": "wan2.7-i2v"},
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()["data"]
    assert pol["upload_host"].startswith(sim.url)
    key = pol["upload_dir"] + "/first.png"
    png = base64.b64decode(png_data_uri().split(",", 1)[1])
    form = {
        "OSSAccessKeyId": pol["oss_access_key_id"],
        "Signature": pol["signature"],
        "policy": pol["policy"],
        "key": key,
        "x-oss-object-acl": pol["x_oss_object_acl"],
        "x-oss-forbid-overwrite": pol["x_oss_forbid_overwrite"],
        "success_action_status": "200",
    }
    up = httpx.post(pol["upload_host"], data=form, files={"file": ("first.png", png, "image/png")})
    assert up.status_code == 200
    body = {
        "model": "wan2.7-i2v",
        "input": {"prompt": "p", "media": [{"type": "first_frame", "url": f"oss://{key}"}]},
        "parameters": {"resolution": "720P", "duration": 2},
    }
    r = submit(sim, body)
    assert r.status_code == 400 and r.json()["code"] == "InvalidParameter"
    r = submit(sim, body, headers={**H, "X-DashScope-OssResourceResolve": "enable"})
    assert r.status_code == 200
    assert wait_ds(sim, r.json()["output"]["task_id"])["output"]["task_status"] == "SUCCEEDED"


def test_strict_media_fails_task_and_missing_prompt_fails_after_accept():
    with SimServer(time_scale=0.004, strict_media=True) as s:
        body = {
            "model": "wan2.7-i2v",
            "input": {"prompt": "p", "media": [{"type": "first_frame", "url": "https://example.invalid/cat.png"}]},
            "parameters": {"resolution": "720P", "duration": 2},
        }
        r = submit(s, body)
        assert r.status_code == 200
        o = wait_ds(s, r.json()["output"]["task_id"])["output"]
        assert o["task_status"] == "FAILED" and o["code"] == "InvalidParameter.DataInspection" and o["message"]
        r = submit(s, {"model": "wan2.7-t2v", "input": {}, "parameters": {"resolution": "720P", "duration": 2}})
        o = wait_ds(s, r.json()["output"]["task_id"])["output"]
        assert o["task_status"] == "FAILED" and o["message"] == "Field required: input.prompt"


def test_determinism_same_request_same_bytes():
    urls = []
    for _ in range(2):
        with SimServer(time_scale=0.004, seed=123) as s:
            tid = submit(s, t2v(seed=42)).json()["output"]["task_id"]
            urls.append(httpx.get(wait_ds(s, tid)["output"]["video_url"]).content)
            tid = submit(s, t2v()).json()["output"]["task_id"]  # no seed: drawn from the sim's RNG
            urls.append(httpx.get(wait_ds(s, tid)["output"]["video_url"]).content)
            assert s.task_info(tid)["seed_drawn"] is True
    assert urls[0] == urls[2] and urls[1] == urls[3] and urls[0] != urls[1]


def test_expiry_after_24h_of_sim_time():
    with SimServer(time_scale=0.004) as s:
        tid = submit(s, t2v(seed=5)).json()["output"]["task_id"]
        url = wait_ds(s, tid)["output"]["video_url"]
        assert httpx.get(url).status_code == 200
        s.advance(25 * 3600)
        o = httpx.get(f"{s.dashscope_url()}/tasks/{tid}", headers=H).json()["output"]
        assert o == {"task_id": tid, "task_status": "UNKNOWN"}
        r = httpx.get(url)
        assert r.status_code == 403 and b"expired" in r.content
        assert httpx.post(s.url + "/_sim/clock", json={"advance": 1}).json()["offset"] == 25 * 3600 + 1


def test_range_head_and_bad_signature(sim):
    tid = submit(sim, t2v(seed=8)).json()["output"]["task_id"]
    url = wait_ds(sim, tid)["output"]["video_url"]
    full = httpx.get(url).content
    h = httpx.head(url)
    assert h.status_code == 200 and int(h.headers["content-length"]) == len(full) and not h.content
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full)}"
    tail = httpx.get(url, headers={"Range": f"bytes={len(full) - 10}-"})
    assert tail.content == full[-10:]
    assert httpx.get(url, headers={"Range": f"bytes={len(full)}-"}).status_code == 416
    assert httpx.get(url.replace("Signature=", "Signature=0")).status_code == 403


def test_stats_shape_and_counts(sim):
    before = sim.stats()
    tid = submit(sim, t2v(seed=77)).json()["output"]["task_id"]
    wait_ds(sim, tid)
    st = httpx.get(sim.url + "/_sim/stats").json()
    assert st["submits"] == before["submits"] + 1
    assert st["submits_by_host"]["dashscope"] == before["submits_by_host"]["dashscope"] + 1
    assert {"PENDING", "RUNNING", "SUCCEEDED", "FAILED"} <= set(st["tasks"])
    assert st["requests"]["submit"] > before["requests"]["submit"] and st["requests"]["query"] >= 1
    assert all(k.startswith("key-") for k in st["running_by_key"]) and KEY not in str(st)
    assert isinstance(st["render_seconds"], float) and st["renders"] >= 1
    info = httpx.get(f"{sim.url}/_sim/tasks/{tid}").json()
    assert info["seed"] == 77 and info["price"]["currency"] == "USD" and info["price"]["amount"] == pytest.approx(0.2)


# ---- WaveSpeed ------------------------------------------------------------------------------------
def wait_ws(sim, pid, headers, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        d = httpx.get(f"{sim.url}/api/v3/predictions/{pid}/result", headers=headers).json()["data"]
        if d["status"] not in ("created", "processing"):
            return d
        time.sleep(0.05)
    raise AssertionError("prediction did not finish")


def test_wavespeed_envelope_statuses_and_delete(sim):
    hw = {"Authorization": "Bearer ws-key"}
    r = httpx.post(
        sim.url + "/api/v3/alibaba/wan-2.7/text-to-video",
        headers=hw,
        json={"prompt": "p", "duration": 2, "resolution": "720p", "seed": 3, "extra_field": 1},
    )
    j = r.json()
    assert r.status_code == 200 and j["code"] == 200 and j["message"] == "success"
    d = j["data"]
    assert d["status"] == "created" and d["urls"]["get"].endswith(f"/predictions/{d['id']}/result")
    assert {"id", "model", "outputs", "urls", "has_nsfw_contents", "status", "created_at", "error", "timings"} <= set(d)
    done = wait_ws(sim, d["id"], hw)
    assert done["status"] == "completed" and done["timings"]["inference"] > 0 and len(done["outputs"]) == 1
    same = httpx.get(f"{sim.url}/api/v3/predictions/{d['id']}", headers=hw).json()["data"]
    assert same["outputs"] == done["outputs"]
    dl = httpx.delete(f"{sim.url}/api/v3/predictions/{d['id']}", headers=hw).json()
    assert dl["data"]["status"] == "deleted"
    assert httpx.post(sim.url + "/api/v3/alibaba/wan-9/none", headers=hw, json={}).status_code == 404
    bad = httpx.post(
        sim.url + "/api/v3/alibaba/wan-2.7/text-to-video", headers=hw, json={"prompt": "p", "resolution": "480p"}
    )
    assert bad.status_code == 400 and bad.json()["data"] is None


def test_wavespeed_upload_put_rejects_authorization(sim):
    hw = {"Authorization": "Bearer ws-key"}
    png = base64.b64decode(png_data_uri().split(",", 1)[1])
    t = httpx.post(
        sim.url + "/api/v3/media/uploads",
        headers=hw,
        json={"filename": "a.png", "size": len(png), "content_type": "image/png"},
    ).json()["data"]
    up = t["upload"]
    assert up["method"] == "PUT"
    bad = httpx.put(up["url"], content=png, headers={**up["headers"], "Authorization": "Bearer ws-key"})
    assert bad.status_code == 400
    wrong = httpx.put(up["url"], content=png, headers={"Content-Type": "image/jpeg"})
    assert wrong.status_code == 403
    ok = httpx.put(up["url"], content=png, headers=up["headers"])
    assert ok.status_code == 200
    assert httpx.get(t["download_url"]).content == png
    legacy = httpx.post(
        sim.url + "/api/v3/media/upload/binary", headers=hw, files={"file": ("b.png", png, "image/png")}
    ).json()
    assert legacy["code"] == 200 and httpx.get(legacy["data"]["download_url"]).content == png


def test_r2v_with_video_and_videoedit_whole_input(sim):
    src = wait_ds(sim, submit(sim, t2v(seed=31)).json()["output"]["task_id"])["output"]["video_url"]
    r = submit(
        sim,
        {
            "model": "wan2.7-r2v",
            "input": {
                "prompt": "Video 1 and Image 1 meet",
                "media": [{"type": "reference_video", "url": src}, {"type": "reference_image", "url": png_data_uri()}],
            },
            "parameters": {"resolution": "720P", "duration": 2, "ratio": "1:1"},
        },
    )
    assert r.status_code == 200, r.text
    b = wait_ds(sim, r.json()["output"]["task_id"])
    assert b["output"]["task_status"] == "SUCCEEDED"
    assert b["usage"]["input_video_duration"] == 2 and b["usage"]["duration"] == 4
    assert probe(httpx.get(b["output"]["video_url"]).content)["width"] == output_size("720P", "1:1")[0]
    too_long = submit(
        sim,
        {
            "model": "wan2.7-r2v",
            "input": {"prompt": "p", "media": [{"type": "reference_video", "url": src}]},
            "parameters": {"resolution": "720P", "duration": 12},
        },
    )
    assert too_long.status_code == 400  # 2–10 s once a reference video is given
    e = submit(
        sim,
        {
            "model": "wan2.7-videoedit",
            "input": {"prompt": "make it snow", "media": [{"type": "video", "url": src}]},
            "parameters": {"resolution": "720P", "duration": 0},
        },
    )
    assert e.status_code == 200, e.text
    be = wait_ds(sim, e.json()["output"]["task_id"])
    assert be["output"]["task_status"] == "SUCCEEDED" and be["usage"]["output_video_duration"] == 2
    p = probe(httpx.get(be["output"]["video_url"]).content)
    assert (p["width"], p["height"], p["frames"]) == (1280, 720, 60)


def test_wavespeed_sync_mode(sim):
    hw = {"Authorization": "Bearer ws-sync"}
    r = httpx.post(
        sim.url + "/api/v3/alibaba/wan-2.7/text-to-video",
        headers=hw,
        timeout=30,
        json={"prompt": "p", "duration": 2, "resolution": "720p", "enable_sync_mode": True},
    )
    d = r.json()["data"]
    assert r.status_code == 200
    # the host holds the request up to 90 s (scaled); a task that takes longer answers processing + 5004
    assert (d["status"] == "completed" and d["outputs"]) or (d["status"] == "processing" and d["code"] == 5004)


# ---- extend (DashScope first_clip, WaveSpeed video-extend) ----------------------------------------
def clip_url(sim, seconds: int, ratio: str = "4:3") -> str:
    """A clip the sim made itself (a t2v video at 720P), as the URL it serves."""
    body = t2v(seed=61, duration=seconds, ratio=ratio)
    return wait_ds(sim, submit(sim, body).json()["output"]["task_id"])["output"]["video_url"]


def test_dashscope_first_clip_renders_the_total_length_after_the_clip(sim):
    src = clip_url(sim, 3)
    r = submit(
        sim,
        {
            "model": "wan2.7-i2v",
            "input": {
                "prompt": "the kite climbs",
                "media": [{"type": "first_clip", "url": src}, {"type": "last_frame", "url": png_data_uri()}],
            },
            "parameters": {"resolution": "720P", "duration": 5, "seed": 4},
        },
    )
    assert r.status_code == 200, r.text
    b = wait_ds(sim, r.json()["output"]["task_id"])
    assert b["output"]["task_status"] == "SUCCEEDED"
    # the output is the total asked for, clip included; i2v bills the output only (WIRE §3)
    assert b["usage"]["output_video_duration"] == 5 and b["usage"]["duration"] == 5
    assert b["usage"]["input_video_duration"] == 3
    p = probe(httpx.get(b["output"]["video_url"]).content)
    assert (p["width"], p["height"], p["frames"]) == (*output_size("720P", "4:3"), 150)  # follows the clip


def test_wavespeed_video_extend_roundtrip_and_refusals(sim):
    hw = {"Authorization": "Bearer ws-extend"}
    route = sim.url + "/api/v3/alibaba/wan-2.7/video-extend"
    src = clip_url(sim, 2, ratio="9:16")
    before = sim.stats()["submits_by_host"].get("wavespeed", 0)
    for body, fragment in [
        ({"prompt": "on", "duration": 5}, "video is required"),
        ({"video": src, "duration": 5}, "prompt is required"),
        ({"video": src, "prompt": "on", "duration": 4}, "duration 4 is not supported"),
        ({"video": src, "prompt": "on", "resolution": "480p"}, "resolution '480p' is not supported"),
        ({"video": 7, "prompt": "on"}, "video must be a URL string"),
    ]:
        bad = httpx.post(route, headers=hw, json=body)
        assert bad.status_code == 400 and fragment in bad.json()["message"], (body, bad.text)
    assert sim.stats()["submits_by_host"].get("wavespeed", 0) == before       # a 400 makes no task
    ok = httpx.post(route, headers=hw, json={"video": src, "prompt": "on", "duration": 7, "seed": 2})
    assert ok.status_code == 200, ok.text
    d = wait_ws(sim, ok.json()["data"]["id"], hw)
    assert d["status"] == "completed"
    p = probe(httpx.get(d["outputs"][0]).content)
    assert (p["width"], p["height"], p["frames"]) == (*output_size("720P", "9:16"), 210)


def test_a_clip_outside_2_to_10_s_fails_the_task_after_accept(sim):
    hw = {"Authorization": "Bearer ws-extend"}
    long_clip = clip_url(sim, 12)
    r = httpx.post(
        sim.url + "/api/v3/alibaba/wan-2.7/video-extend", headers=hw, json={"video": long_clip, "prompt": "on"}
    )
    assert r.status_code == 200  # the host reads the clip after accepting the task
    d = wait_ws(sim, r.json()["data"]["id"], hw)
    assert d["status"] == "failed" and d["code"] == 1401 and "2–10 s" in d["error"]
