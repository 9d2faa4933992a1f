"""wanlab.providers, sans-I/O: the HttpRequest each host gets for every mode, every answer shape of
WIRE.md parsed into a TaskSnapshot or a typed ApiError, and both upload flows driven as generators."""
from __future__ import annotations

import email.utils
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from media_fixtures import image_bytes  # noqa: E402

from wanlab import FLF2V, I2V, T2V, Edit, Extend, Grid9, Ref2V  # noqa: E402
from wanlab.catalog import CATALOG, REGIONS, default_model  # noqa: E402
from wanlab.errors import ApiError, AuthError, NotFound, RateLimited, ServerError  # noqa: E402
from wanlab.inputs import to_media  # noqa: E402
from wanlab.providers import DashScope, HttpRequest, HttpResponse, ListedTask, Status, WaveSpeed, make_provider  # noqa: E402

SG = "https://dashscope-intl.aliyuncs.com/api/v1"
SUBMIT = "/services/aigc/video-generation/video-synthesis"
WS = "https://api.wavespeed.ai"

IMG = "https://cdn.example.com/in/first.png"
LAST = "https://cdn.example.com/in/last.png"
VID = "https://cdn.example.com/in/ref.mp4"
AUD = "https://cdn.example.com/in/voice.wav"


def U(name: str) -> str:
    return f"https://cdn.example.com/in/{name}"


def resp(status: int, body, headers: dict | None = None) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status, headers or {}, raw)


def media_urls(req) -> list[str]:
    return [m.url for _, m in req.media()]


def no_auth_header(r: HttpRequest) -> bool:
    return "authorization" not in {k.lower() for k in r.headers}


# One request per mode, all media as https URLs (Grid9 takes a ready-made grid).
def mode_requests():
    return {
        "t2v": T2V("a fox in snow", negative_prompt="blur", seed=42),
        "i2v": I2V("the fox turns", image=IMG),
        "flf2v": FLF2V("day to night", first=IMG, last=LAST),
        "grid9": Grid9(grid=U("grid.jpg"), shots=["a", "b"]),
        "ref2v": Ref2V("Video 1 meets Image 1", videos=[VID], images=[U("r1.png"), U("r2.png")], first_frame=IMG),
        "edit": Edit("make it snow", video=VID, images=[U("e1.png")], audio_setting="origin"),
        "extend": Extend("the fox runs on", video=VID, duration=8),
    }


MODES = ["t2v", "i2v", "flf2v", "grid9", "ref2v", "edit", "extend"]

# --------------------------------------------------------------------------------------------------
# DashScope submit bodies
# --------------------------------------------------------------------------------------------------

DS_MEDIA = {
    "t2v": None,
    "i2v": [("first_frame", IMG)],
    "flf2v": [("first_frame", IMG), ("last_frame", LAST)],
    "grid9": [("reference_image", U("grid.jpg"))],
    "ref2v": [("reference_video", VID), ("reference_image", U("r1.png")), ("reference_image", U("r2.png")),
              ("first_frame", IMG)],
    "edit": [("video", VID), ("reference_image", U("e1.png"))],
    "extend": [("first_clip", VID)],
}
DS_MODEL = {"t2v": "wan2.7-t2v", "i2v": "wan2.7-i2v", "flf2v": "wan2.7-i2v", "grid9": "wan2.7-r2v",
            "ref2v": "wan2.7-r2v", "edit": "wan2.7-videoedit", "extend": "wan2.7-i2v"}


@pytest.mark.parametrize("mode", MODES)
def test_dashscope_submit_wan27(mode):
    req = mode_requests()[mode]
    spec = default_model("dashscope", mode)
    req.validate_for(spec)
    r = DashScope("singapore").submit(spec, req, media_urls(req))
    assert (r.method, r.url, r.route, r.auth) == ("POST", SG + SUBMIT, "submit", True)
    assert r.headers["X-DashScope-Async"] == "enable"
    assert r.headers["Content-Type"] == "application/json"
    assert "X-DashScope-OssResourceResolve" not in r.headers
    assert no_auth_header(r)
    body = r.json
    assert set(body) == {"model", "input", "parameters"}
    assert body["model"] == DS_MODEL[mode]
    assert body["input"]["prompt"] == req.wire_prompt()
    expected = DS_MEDIA[mode]
    if expected is None:
        assert "media" not in body["input"]
    else:
        assert [(m["type"], m["url"]) for m in body["input"]["media"]] == expected
    p = body["parameters"]
    assert p["resolution"] == "720P" and p["duration"] == req.duration and "size" not in p
    # 2.7 uses media, never the legacy fields
    for legacy in ("img_url", "first_frame_url", "last_frame_url", "reference_urls"):
        assert legacy not in body["input"]
    if mode in ("t2v", "grid9", "ref2v"):
        assert p["ratio"] == "16:9"
    else:
        assert "ratio" not in p
    if mode == "edit":
        assert p["audio_setting"] == "origin" and p["duration"] == 0
    else:
        assert "audio_setting" not in p
    if mode == "t2v":
        assert p["seed"] == 42 and body["input"]["negative_prompt"] == "blur"
    else:
        assert "seed" not in p and "negative_prompt" not in body["input"]
    json.dumps(body)


def test_dashscope_t2v_audio_is_input_audio_url_not_media():
    req = T2V("x", audio=AUD)
    body = DashScope().submit(CATALOG["wan2.7-t2v"], req, [AUD]).json
    assert body["input"]["audio_url"] == AUD and "media" not in body["input"]


def test_dashscope_i2v_driving_audio_is_a_media_item():
    req = FLF2V("x", first=IMG, last=LAST, audio=AUD)
    body = DashScope().submit(CATALOG["wan2.7-i2v"], req, media_urls(req)).json
    assert [m["type"] for m in body["input"]["media"]] == ["first_frame", "last_frame", "driving_audio"]


def test_dashscope_edit_ratio_only_when_given():
    req = Edit("x", video=VID, ratio="9:16", duration=4)
    p = DashScope().submit(CATALOG["wan2.7-videoedit"], req, media_urls(req)).json["parameters"]
    assert p["ratio"] == "9:16" and p["duration"] == 4 and p["audio_setting"] == "auto"


def test_dashscope_extend_is_wan27_i2v_with_first_clip_then_last_frame():
    req = Extend("dusk falls", video=VID, last=LAST, duration=12, resolution="1080P", seed=5)
    body = DashScope().submit(CATALOG["wan2.7-i2v"], req, media_urls(req)).json
    assert body["model"] == "wan2.7-i2v"
    assert body["input"]["media"] == [{"type": "first_clip", "url": VID}, {"type": "last_frame", "url": LAST}]
    assert body["parameters"] == {"duration": 12, "seed": 5, "resolution": "1080P"}   # the total; no ratio


def test_dashscope_oss_urls_add_resolve_header():
    req = I2V("x", image=IMG)
    r = DashScope().submit(CATALOG["wan2.7-i2v"], req, ["oss://dashscope-instant/abc/first.png"])
    assert r.headers["X-DashScope-OssResourceResolve"] == "enable"
    assert r.json["input"]["media"] == [{"type": "first_frame", "url": "oss://dashscope-instant/abc/first.png"}]
    r2 = DashScope().submit(CATALOG["wan2.7-i2v"], req, [IMG])
    assert "X-DashScope-OssResourceResolve" not in r2.headers


def test_dashscope_extra_goes_to_parameters_or_input():
    req = T2V("x", extra={"prompt_extend": False, "watermark": True, "input.extend_prompt": True})
    body = DashScope().submit(CATALOG["wan2.7-t2v"], req, []).json
    assert body["parameters"]["prompt_extend"] is False and body["parameters"]["watermark"] is True
    assert body["input"]["extend_prompt"] is True and "input.extend_prompt" not in body["parameters"]


def test_dashscope_urls_must_match_media():
    req = I2V("x", image=IMG)
    with pytest.raises(ValueError, match="0 URLs for 1 media"):
        DashScope().submit(CATALOG["wan2.7-i2v"], req, [])


@pytest.mark.parametrize("region", list(REGIONS))
def test_dashscope_region_base_urls(region):
    ds = DashScope(region)
    assert ds.submit(CATALOG["wan2.6-t2v"], T2V("x", model="wan2.6-t2v"), []).url == REGIONS[region] + SUBMIT
    assert ds.query("t1").url == REGIONS[region] + "/tasks/t1"


def test_dashscope_base_url_override_and_bad_region():
    assert DashScope("singapore", "http://127.0.0.1:9/api/v1/").query("t").url == "http://127.0.0.1:9/api/v1/tasks/t"
    with pytest.raises(Exception, match=r"region='tokyo' is not a DashScope region; use one of singapore"):
        DashScope("tokyo")
    with pytest.raises(Exception, match=r"WaveSpeed has no regions"):
        make_provider("wavespeed", region="beijing")


# legacy protocol (2.6 / 2.5 / 2.2 / 2.1)

def test_dashscope_legacy_t2v_uses_size():
    req = T2V("x", model="wan2.6-t2v", resolution="1080P", ratio="9:16", duration=10, seed=3)
    body = DashScope().submit(CATALOG["wan2.6-t2v"], req, []).json
    p = body["parameters"]
    assert p["size"] == "1080*1920" and "resolution" not in p and p["duration"] == 10 and p["seed"] == 3
    assert "media" not in body["input"] and body["model"] == "wan2.6-t2v"


@pytest.mark.parametrize("model, res, size", [
    ("wan2.6-t2v", "720P", "1280*720"), ("wan2.5-t2v-preview", "480P", "832*480"),
    ("wanx2.1-t2v-turbo", "720P", "1280*720"), ("wan2.6-t2v-us", "1080P", "1920*1080"),
])
def test_dashscope_legacy_t2v_size_per_family(model, res, size):
    req = T2V("x", model=model, resolution=res)
    assert DashScope().submit(CATALOG[model], req, []).json["parameters"]["size"] == size


def test_dashscope_legacy_i2v_img_url():
    req = I2V("x", image=IMG, model="wan2.6-i2v", audio=AUD)
    body = DashScope().submit(CATALOG["wan2.6-i2v"], req, media_urls(req)).json
    assert body["input"]["img_url"] == IMG and body["input"]["audio_url"] == AUD
    assert "media" not in body["input"] and "size" not in body["parameters"]
    assert body["parameters"]["resolution"] == "720P"


def test_dashscope_legacy_flf2v_first_last_frame_url():
    req = FLF2V("x", first=IMG, last=LAST, model="wanx2.1-kf2v-plus")
    body = DashScope().submit(CATALOG["wanx2.1-kf2v-plus"], req, media_urls(req)).json
    assert body["input"]["first_frame_url"] == IMG and body["input"]["last_frame_url"] == LAST
    assert "media" not in body["input"] and "img_url" not in body["input"]


def test_dashscope_legacy_r2v_reference_urls_and_size():
    req = Ref2V("x", model="wan2.6-r2v", videos=[VID], images=[U("r1.png")], ratio="1:1")
    body = DashScope().submit(CATALOG["wan2.6-r2v"], req, media_urls(req)).json
    assert body["input"]["reference_urls"] == [VID, U("r1.png")]
    assert body["parameters"]["size"] == "960*960" and "media" not in body["input"]


def test_dashscope_legacy_extra_shot_type_and_audio():
    req = T2V("x", model="wan2.6-t2v", extra={"shot_type": "multi", "audio": False})
    p = DashScope().submit(CATALOG["wan2.6-t2v"], req, []).json["parameters"]
    assert p["shot_type"] == "multi" and p["audio"] is False


# --------------------------------------------------------------------------------------------------
# WaveSpeed submit bodies
# --------------------------------------------------------------------------------------------------

WS_PATH = {"t2v": "alibaba/wan-2.7/text-to-video", "i2v": "alibaba/wan-2.7/image-to-video",
           "flf2v": "alibaba/wan-2.7/image-to-video", "grid9": "alibaba/wan-2.7/reference-to-video",
           "ref2v": "alibaba/wan-2.7/reference-to-video", "edit": "alibaba/wan-2.7/video-edit",
           "extend": "alibaba/wan-2.7/video-extend"}
WS_FIELDS = {
    "t2v": {},
    "i2v": {"image": IMG},
    "flf2v": {"image": IMG, "last_image": LAST},
    "grid9": {"reference_images": [U("grid.jpg")]},
    "ref2v": {"videos": [VID], "reference_images": [U("r1.png"), U("r2.png")], "image": IMG},
    "edit": {"video": VID, "images": [U("e1.png")]},
    "extend": {"video": VID},
}
MEDIA_KEYS = {"image", "last_image", "videos", "reference_images", "images", "video", "audio"}


@pytest.mark.parametrize("mode", MODES)
def test_wavespeed_submit_wan27(mode):
    req = mode_requests()[mode]
    spec = default_model("wavespeed", mode)
    req.validate_for(spec)
    r = WaveSpeed().submit(spec, req, media_urls(req))
    assert (r.method, r.url, r.route, r.auth) == ("POST", f"{WS}/api/v3/{WS_PATH[mode]}", "submit", True)
    assert no_auth_header(r) and r.headers.get("Content-Type") == "application/json"
    body = r.json
    assert not {"model", "input", "parameters", "media"} & set(body)     # flat, no DashScope wrapper
    assert body["prompt"] == req.wire_prompt() and body["duration"] == req.duration
    assert body["resolution"] == "720p"
    assert body["seed"] == (42 if mode == "t2v" else -1)
    assert {k: body[k] for k in MEDIA_KEYS & set(body)} == WS_FIELDS[mode]
    if mode in ("t2v", "grid9", "ref2v"):
        assert body["aspect_ratio"] == "16:9"
    else:
        assert "aspect_ratio" not in body and "ratio" not in body
    assert "size" not in body
    json.dumps(body)


def test_wavespeed_audio_field_and_1080p():
    req = I2V("x", image=IMG, audio=AUD, resolution="1080P", seed=0)
    body = WaveSpeed().submit(CATALOG["alibaba/wan-2.7/image-to-video"], req, media_urls(req)).json
    assert body["audio"] == AUD and body["resolution"] == "1080p" and body["seed"] == 0
    t = T2V("x", audio=AUD)
    assert WaveSpeed().submit(CATALOG["alibaba/wan-2.7/text-to-video"], t, [AUD]).json["audio"] == AUD


def test_wavespeed_prompt_extend_becomes_enable_prompt_expansion():
    req = T2V("x", extra={"prompt_extend": 1, "watermark": False})
    body = WaveSpeed().submit(CATALOG["alibaba/wan-2.7/text-to-video"], req, []).json
    assert body["enable_prompt_expansion"] is True and "prompt_extend" not in body and body["watermark"] is False
    assert "prompt_extend" in req.extra     # the request itself is not mutated


def test_wavespeed_edit_without_images_and_ratio():
    req = Edit("x", video=VID, ratio="4:3")
    body = WaveSpeed().submit(CATALOG["alibaba/wan-2.7/video-edit"], req, [VID]).json
    assert "images" not in body and body["aspect_ratio"] == "4:3" and body["video"] == VID


def test_wavespeed_extend_body():
    req = Extend("dusk falls", video=VID, duration=15, resolution="1080P", seed=9, extra={"prompt_extend": True})
    spec = CATALOG["alibaba/wan-2.7/video-extend"]
    req.validate_for(spec)
    body = WaveSpeed().submit(spec, req, media_urls(req)).json
    assert body == {"prompt": "dusk falls", "video": VID, "duration": 15, "resolution": "1080p", "seed": 9,
                    "enable_prompt_expansion": True}


def test_wavespeed_ref2v_images_only_has_no_videos_key():
    req = Ref2V("x", images=[U("r1.png")])
    body = WaveSpeed().submit(CATALOG["alibaba/wan-2.7/reference-to-video"], req, media_urls(req)).json
    assert body["reference_images"] == [U("r1.png")] and "videos" not in body and "image" not in body


def test_wavespeed_older_paths():
    t26 = T2V("x", model="alibaba/wan-2.6/text-to-video", ratio="9:16", duration=10)
    b = WaveSpeed().submit(CATALOG["alibaba/wan-2.6/text-to-video"], t26, []).json
    assert b["size"] == "720*1280" and "resolution" not in b
    t25 = T2V("x", model="alibaba/wan-2.5/text-to-video", resolution="480P")
    r = WaveSpeed().submit(CATALOG["alibaba/wan-2.5/text-to-video"], t25, [])
    assert r.url == f"{WS}/api/v3/alibaba/wan-2.5/text-to-video" and r.json["resolution"] == "480p"


def test_wavespeed_query_cancel_list():
    ws = WaveSpeed()
    q = ws.query("abc123")
    assert (q.method, q.url, q.route) == ("GET", f"{WS}/api/v3/predictions/abc123/result", "query")
    assert ws.cancel("abc123") is None and ws.list_tasks("m") is None
    assert ws.supports_cancel is False and ws.supports_list is False
    assert WaveSpeed("http://127.0.0.1:5/").query("x").url == "http://127.0.0.1:5/api/v3/predictions/x/result"


def test_no_request_carries_authorization():
    ds, ws = DashScope("beijing"), WaveSpeed()
    built = [ds.query("t"), ds.cancel("t"), ds.list_tasks("wan2.7-t2v")]
    for mode, req in mode_requests().items():
        built.append(ds.submit(default_model("dashscope", mode), req, media_urls(req)))
        built.append(ws.submit(default_model("wavespeed", mode), req, media_urls(req)))
    built.append(ws.query("t"))
    media = to_media(image_bytes(), "image", "t")
    built.append(next(ds.upload(media, "wan2.7-i2v")))
    built.append(next(ws.upload(media, "x")))
    for r in built:
        assert no_auth_header(r), r
        assert not (r.params and any("key" in str(k).lower() for k in r.params)), r


# --------------------------------------------------------------------------------------------------
# DashScope answers
# --------------------------------------------------------------------------------------------------

def test_dashscope_parse_submit():
    s = DashScope().parse_submit(resp(200, {"output": {"task_status": "PENDING", "task_id": "t-1"},
                                            "request_id": "r-1"}))
    assert (s.task_id, s.status, s.request_id) == ("t-1", Status.PENDING, "r-1")
    assert not s.status.terminal


def test_dashscope_parse_submit_error_raises():
    with pytest.raises(ApiError, match="InvalidParameter") as info:
        DashScope().parse_submit(resp(400, {"request_id": "r", "code": "InvalidParameter",
                                            "message": "url error, please check url!"}))
    assert info.value.status == 400 and info.value.code == "InvalidParameter"


@pytest.mark.parametrize("status", ["PENDING", "RUNNING"])
def test_dashscope_query_in_progress(status):
    out = {"task_id": "t-1", "task_status": status, "submit_time": "2026-04-02 14:13:33.580"}
    if status == "RUNNING":
        out["scheduled_time"] = "2026-04-02 14:13:41.783"
    s = DashScope().parse_query(resp(200, {"request_id": "r", "output": out}), "t-1")
    assert s.status == Status[status] and s.host_status == status and not s.status.terminal
    assert s.video_url is None and s.submit_time == "2026-04-02 14:13:33.580"
    assert s.billed_seconds is None and s.output_seconds is None


def _succeeded(usage):
    return {"request_id": "r-9", "output": {
        "task_id": "t-1", "task_status": "SUCCEEDED", "submit_time": "2026-04-02 14:13:33.580",
        "scheduled_time": "2026-04-02 14:13:41.783", "end_time": "2026-04-02 14:19:31.254", "orig_prompt": "x",
        "video_url": "https://dashscope-result.oss.example/v.mp4?Expires=1"}, "usage": usage}


@pytest.mark.parametrize("usage, billed, output", [
    ({"duration": 10, "input_video_duration": 0, "output_video_duration": 10, "video_count": 1, "ratio": "16:9",
      "SR": 720}, 10.0, 10.0),
    # r2v / edit: duration = input + output seconds (edit gives floats)
    ({"duration": 15, "input_video_duration": 10, "output_video_duration": 5, "video_count": 1, "SR": 720},
     15.0, 5.0),
    ({"duration": 10.04, "input_video_duration": 5.02, "output_video_duration": 5.02, "video_count": 1,
      "SR": 1080}, 10.04, 5.02),
    # 2.6: size and SR as a string
    ({"duration": 5, "size": "1280*720", "input_video_duration": 0, "output_video_duration": 5, "video_count": 1,
      "SR": "720"}, 5.0, 5.0),
    # 2.5 and older
    ({"video_duration": 10, "video_ratio": "832*480", "video_count": 1}, 10.0, 10.0),
], ids=["2.7", "2.7-r2v", "2.7-edit-float", "2.6", "2.5"])
def test_dashscope_query_succeeded_usage_shapes(usage, billed, output):
    s = DashScope().parse_query(resp(200, _succeeded(usage)), "t-1")
    assert s.status is Status.SUCCEEDED and s.status.terminal
    assert s.video_url.startswith("https://dashscope-result") and s.request_id == "r-9"
    assert (s.submit_time, s.scheduled_time, s.end_time) == ("2026-04-02 14:13:33.580", "2026-04-02 14:13:41.783",
                                                            "2026-04-02 14:19:31.254")
    assert s.billed_seconds == pytest.approx(billed) and s.output_seconds == pytest.approx(output)
    assert s.usage == usage and s.error_code == ""


def test_dashscope_query_failed_http_200():
    body = {"request_id": "r", "output": {"task_id": "t-1", "task_status": "FAILED", "code": "DataInspectionFailed",
                                          "message": "Input data may contain inappropriate content."}}
    s = DashScope().parse_query(resp(200, body), "t-1")
    assert s.status is Status.FAILED and s.status.terminal
    assert s.error_code == "DataInspectionFailed" and "inappropriate" in s.error_message
    assert s.video_url is None


@pytest.mark.parametrize("status", ["UNKNOWN", "CANCELED"])
def test_dashscope_query_unknown_and_canceled(status):
    s = DashScope().parse_query(resp(200, {"request_id": "r", "output": {"task_id": "t-1", "task_status": status}}),
                                "t-1")
    assert s.status is Status[status] and s.status.terminal and s.error_code == ""


def test_dashscope_query_unrecognised_status_is_unknown_and_keeps_task_id():
    s = DashScope().parse_query(resp(200, {"output": {"task_status": "SUSPENDED"}}), "t-7")
    assert s.status is Status.UNKNOWN and s.host_status == "SUSPENDED" and s.task_id == "t-7"


def _err(status, code, message, **kw):
    body = {"request_id": "req-e", "code": code, "message": message}
    return resp(status, body, kw.get("headers"))


@pytest.mark.parametrize("http, code, message, cls, retryable, phrase", [
    (400, "InvalidParameter", "The size is not match the allowed size.", ApiError, False, "size is not match"),
    (400, "InvalidParameter", "Model not exist.", ApiError, False, r"Model not exist\. The model ID may be stale"),
    (400, "DataInspectionFailed", "Input data may contain inappropriate content.", ApiError, False, "inappropriate"),
    (400, "UnsupportedOperation", "Task can not be canceled.", ApiError, False, "can not be canceled"),
    (403, "AccessDenied", "Access denied.", AuthError, False, "Access denied"),
    (403, "Model.AccessDenied", "Model access denied.", AuthError, False, "Model access denied"),
    (404, "ModelNotFound", "Model not found (wan2.7-flf2v)", NotFound, False,
     r"not found.*may be stale or not served in this region; see wanlab\.catalog\.models\(\)"),
    (429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.", RateLimited, True,
     "rate limit exceeded"),
    (429, "Throttling.AllocationQuota", "Allocated quota exceeded.", RateLimited, True, "quota"),
    (500, "InternalError", "An internal error has occured.", ServerError, True, "internal error"),
    (503, "ServiceUnavailable", "Service unavailable.", ServerError, True, "unavailable"),
])
def test_dashscope_error_bodies(http, code, message, cls, retryable, phrase):
    for parse in (lambda r: DashScope().parse_submit(r), lambda r: DashScope().parse_query(r, "t")):
        with pytest.raises(cls, match=phrase) as info:
            parse(_err(http, code, message))
        e = info.value
        assert type(e) is cls
        assert (e.status, e.code, e.request_id, e.retryable) == (http, code, "req-e", retryable)
        assert e.host == "dashscope/singapore"
        assert str(e).startswith(f"dashscope/singapore HTTP {http} {code}: ") and "(request_id req-e)" in str(e)


@pytest.mark.parametrize("region", ["singapore", "beijing", "virginia"])
def test_dashscope_401_names_region_and_binding(region):
    with pytest.raises(AuthError) as info:
        DashScope(region).parse_query(_err(401, "InvalidApiKey", "Invalid API-key provided."), "t")
    msg = str(info.value)
    assert "Invalid API-key provided." in msg
    assert f"this call went to {region} ({REGIONS[region]})" in msg
    assert "keys are bound to a region" in msg and "region=" in msg
    assert info.value.code == "InvalidApiKey" and not info.value.retryable


def test_dashscope_429_retry_after_seconds():
    with pytest.raises(RateLimited) as info:
        DashScope().parse_submit(_err(429, "Throttling.RateQuota", "Requests rate limit exceeded",
                                      headers={"retry-after": "7"}))
    assert info.value.retry_after == 7.0


def test_dashscope_429_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    with pytest.raises(RateLimited) as info:
        DashScope().parse_query(_err(429, "Throttling", "slow down", headers={"Retry-After": when}), "t")
    assert 27 <= info.value.retry_after <= 31


def test_dashscope_429_without_retry_after():
    with pytest.raises(RateLimited) as info:
        DashScope().parse_query(_err(429, "Throttling", "slow down"), "t")
    assert info.value.retry_after is None


def test_dashscope_non_json_error_bodies():
    with pytest.raises(ServerError, match="upstream connect error") as info:
        DashScope().parse_query(resp(503, b"<html>upstream connect error</html>"), "t")
    assert info.value.code == ""
    with pytest.raises(NotFound, match="Not Found.*may be stale"):
        DashScope().parse_submit(resp(404, b"Not Found"))
    with pytest.raises(ServerError, match="HTTP 502"):
        DashScope().parse_query(resp(502, b""), "t")


def test_dashscope_cancel():
    ds = DashScope()
    r = ds.cancel("t-1")
    assert (r.method, r.url, r.route) == ("POST", SG + "/tasks/t-1/cancel", "cancel")
    assert ds.parse_cancel(resp(200, {"request_id": "r"})) is None
    with pytest.raises(ApiError, match="UnsupportedOperation"):
        ds.parse_cancel(_err(400, "UnsupportedOperation", "Task is not PENDING"))


def test_dashscope_list_request_and_answer():
    ds = DashScope("beijing")
    r = ds.list_tasks("wan2.7-t2v", page_no=2)
    assert (r.method, r.url, r.route) == ("GET", REGIONS["beijing"] + "/tasks", "list")
    assert r.params["model_name"] == "wan2.7-t2v" and r.params["page_no"] == 2 and r.params["page_size"] >= 10
    body = {"total": 3, "total_page": 2, "page_no": 1, "page_size": 2, "request_id": "r",
            "data": [{"task_id": "a", "status": "SUCCEEDED", "model_name": "wan2.7-t2v", "region": "cn-beijing",
                      "request_id": "ra", "gmt_create": 1775139213580, "start_time": 1775139221783,
                      "end_time": 1775139571254},
                     {"task_id": "b", "status": "RUNNING", "model_name": "wan2.7-t2v", "request_id": "rb",
                      "gmt_create": "1775139300000"}]}
    items, more = ds.parse_list(resp(200, body))
    assert more is True
    assert items[0] == ListedTask("a", Status.SUCCEEDED, "wan2.7-t2v", "ra", 1775139213580)
    assert items[1].status is Status.RUNNING and items[1].created_ms == 1775139300000
    body.update(page_no=2, data=[])
    assert ds.parse_list(resp(200, body)) == ([], False)
    with pytest.raises(AuthError):
        ds.parse_list(_err(401, "InvalidApiKey", "No API-key provided."))


# --------------------------------------------------------------------------------------------------
# WaveSpeed answers
# --------------------------------------------------------------------------------------------------

def _env(status, **data):
    d = {"id": "pred-1", "model": "alibaba/wan-2.7/text-to-video", "status": status, "outputs": [],
         "urls": {"get": f"{WS}/api/v3/predictions/pred-1/result"}, "has_nsfw_contents": [],
         "created_at": "2026-04-02T06:13:33.580Z", "error": "", "timings": {"inference": 0}}
    d.update(data)
    return resp(200, {"code": 200, "message": "success", "data": d})


@pytest.mark.parametrize("status, expected", [
    ("created", Status.PENDING), ("processing", Status.RUNNING), ("completed", Status.SUCCEEDED),
    ("failed", Status.FAILED), ("cancelled", Status.CANCELED), ("timeout", Status.FAILED),
    ("deleted", Status.CANCELED),
])
def test_wavespeed_statuses(status, expected):
    outputs = ["https://cdn.wavespeed.example/out.mp4"] if status == "completed" else []
    s = WaveSpeed().parse_query(_env(status, outputs=outputs), "pred-1")
    assert s.status is expected and s.host_status == status and s.task_id == "pred-1"
    assert s.status.terminal == (status not in ("created", "processing"))
    assert s.submit_time == "2026-04-02T06:13:33.580Z"


def test_wavespeed_parse_submit_created():
    s = WaveSpeed().parse_submit(_env("created", id="pred-42"))
    assert s.task_id == "pred-42" and s.status is Status.PENDING


def test_wavespeed_completed():
    s = WaveSpeed().parse_query(_env("completed", outputs=["https://cdn.wavespeed.example/out.mp4"],
                                     timings={"inference": 84123}), "pred-1")
    assert s.video_url == "https://cdn.wavespeed.example/out.mp4"
    assert s.usage["inference_ms"] == 84123 and s.error_code == "" and s.error_message == ""


def test_wavespeed_failed_moderation_code():
    s = WaveSpeed().parse_query(_env("failed", code=1200, error="The content may violate our policies."), "pred-1")
    assert s.status is Status.FAILED and s.error_code == "ContentModeration"
    assert "violate" in s.error_message and s.video_url is None


def test_wavespeed_failed_nsfw_without_code():
    s = WaveSpeed().parse_query(_env("failed", has_nsfw_contents=[True], error="nsfw"), "pred-1")
    assert s.error_code == "ContentModeration"


@pytest.mark.parametrize("code, name", [(1400, "MissingParameter"), (1401, "InvalidParameter"),
                                        (1402, "MediaNotReachable"), (1403, "TaskFailed"), (5000, "InternalError"),
                                        (5004, "Timeout"), (4242, "4242")])
def test_wavespeed_task_codes(code, name):
    s = WaveSpeed().parse_query(_env("failed", code=code, error="e"), "pred-1")
    assert s.error_code == name


def test_wavespeed_sync_timeout_keeps_running():
    s = WaveSpeed().parse_query(_env("processing", code=5004, error="Sync mode timed out after 90 seconds"), "p")
    assert s.status is Status.RUNNING and not s.status.terminal


@pytest.mark.parametrize("http, cls, route, phrase", [
    (401, AuthError, "query", r"never topped up; check WAVESPEED_API_KEY"),
    (403, AuthError, "query", "forbidden"),
    (404, NotFound, "submit", r"model path may be stale; see wanlab\.catalog\.models\(host='wavespeed'\)"),
    (404, NotFound, "query", "not found"),
    (429, RateLimited, "query", "too many"),
    (500, ServerError, "submit", "boom"),
    (503, ServerError, "query", "boom"),
])
def test_wavespeed_error_bodies(http, cls, route, phrase):
    msg = {401: "Unauthorized", 403: "forbidden", 404: "not found", 429: "too many requests"}.get(http, "boom")
    r = resp(http, {"code": http, "message": msg, "data": None}, {"Retry-After": "3"})
    ws = WaveSpeed()
    with pytest.raises(cls, match=phrase) as info:
        ws.parse_submit(r) if route == "submit" else ws.parse_query(r, "p")
    e = info.value
    assert type(e) is cls and e.status == http and e.host == "wavespeed"
    assert e.code == ""        # the envelope's code repeats the HTTP status: not a separate code
    assert e.retry_after == 3.0
    assert e.retryable == (http == 429 or http >= 500)
    if http == 404 and route == "query":
        assert "stale" not in str(e)


def test_wavespeed_error_plain_text_body():
    with pytest.raises(ServerError, match="Bad Gateway"):
        WaveSpeed().parse_query(resp(502, b"Bad Gateway"), "p")


# --------------------------------------------------------------------------------------------------
# upload flows
# --------------------------------------------------------------------------------------------------

POLICY = {"upload_host": "https://dashscope-file-mgr.oss-ap-southeast-1.aliyuncs.com",
          "upload_dir": "dashscope-instant/abc123/2026-04-02/xyz/", "oss_access_key_id": "LTAI-test",
          "signature": "sig==", "policy": "eyJwb2xpY3kiOjF9", "x_oss_object_acl": "private",
          "x_oss_forbid_overwrite": "true", "expire_in_seconds": 300, "max_file_size_mb": 100}


@pytest.mark.parametrize("wrapper", ["data", "output"])
def test_dashscope_upload_flow(wrapper):
    media = to_media(image_bytes((9, 9, 9)), "image", "t")
    ds = DashScope("singapore")
    flow = ds.upload(media, "wan2.7-i2v")
    first = next(flow)
    assert (first.method, first.url, first.route, first.auth) == ("GET", SG + "/uploads", "upload", True)
    assert dict(first.params) == {"action": "getPolicy", "model": "wan2.7-i2v"}
    second = flow.send(resp(200, {"request_id": "r", wrapper: POLICY}))
    assert (second.method, second.url, second.route) == ("POST", POLICY["upload_host"], "upload")
    assert second.auth is False and no_auth_header(second)
    form = dict(second.data)
    assert set(form) == {"OSSAccessKeyId", "Signature", "policy", "key", "x-oss-object-acl",
                         "x-oss-forbid-overwrite", "success_action_status"}
    assert form["OSSAccessKeyId"] == "LTAI-test" and form["Signature"] == "sig==" and form["policy"] == POLICY["policy"]
    assert form["x-oss-object-acl"] == "private" and form["x-oss-forbid-overwrite"] == "true"
    assert form["success_action_status"] == "200"
    key = form["key"]
    assert key.startswith("dashscope-instant/abc123/2026-04-02/xyz/") and "//" not in key
    assert key.endswith(media.name)
    fname, data, mime = second.files["file"]
    assert data == media.data and mime == "image/png" and fname == media.name
    with pytest.raises(StopIteration) as done:
        flow.send(resp(200, b""))
    assert done.value.value == f"oss://{key}"


def test_dashscope_upload_keys_differ_by_content():
    def key_for(color):
        flow = DashScope().upload(to_media(image_bytes(color), "image", "t"), "wan2.7-i2v")
        next(flow)
        return flow.send(resp(200, {"data": POLICY})).data["key"]
    assert key_for((1, 1, 1)) != key_for((2, 2, 2))


def test_dashscope_upload_errors():
    media = to_media(image_bytes(), "image", "t")
    flow = DashScope("virginia").upload(media, "wan2.6-i2v")
    next(flow)
    with pytest.raises(AuthError, match="virginia"):
        flow.send(_err(401, "InvalidApiKey", "Invalid API-key provided."))
    flow = DashScope().upload(media, "wan2.7-i2v")
    next(flow)
    flow.send(resp(200, {"data": POLICY}))
    with pytest.raises(ApiError, match="OSS upload of .* refused") as info:
        flow.send(resp(403, b"<Error><Code>AccessDenied</Code></Error>"))
    assert info.value.status == 403


def test_wavespeed_upload_flow():
    media = to_media(image_bytes((7, 7, 7)), "image", "t")
    ws = WaveSpeed()
    flow = ws.upload(media, "alibaba/wan-2.7/image-to-video")
    first = next(flow)
    assert (first.method, first.url, first.route, first.auth) == ("POST", f"{WS}/api/v3/media/uploads", "upload",
                                                                   True)
    assert first.json == {"filename": media.name, "size": len(media.data), "content_type": "image/png"}
    put_headers = {"Content-Type": "image/png", "x-amz-acl": "public-read", "x-amz-meta-k": "v"}
    answer = {"code": 200, "message": "success", "data": {
        "download_url": "https://cdn.wavespeed.example/media/x.png",
        "upload": {"method": "PUT", "url": "https://s3.example.com/bucket/x.png?X-Amz-Signature=abc",
                   "headers": put_headers}}}
    second = flow.send(resp(200, answer))
    assert (second.method, second.url) == ("PUT", "https://s3.example.com/bucket/x.png?X-Amz-Signature=abc")
    assert dict(second.headers) == put_headers          # exactly the returned headers
    assert second.auth is False and second.content == media.data and second.json is None
    with pytest.raises(StopIteration) as done:
        flow.send(resp(200, b""))
    assert done.value.value == "https://cdn.wavespeed.example/media/x.png"


def test_wavespeed_upload_errors():
    media = to_media(image_bytes(), "image", "t")
    flow = WaveSpeed().upload(media, "m")
    next(flow)
    with pytest.raises(AuthError, match="WAVESPEED_API_KEY"):
        flow.send(resp(401, {"code": 401, "message": "Unauthorized", "data": None}))
    flow = WaveSpeed().upload(media, "m")
    next(flow)
    flow.send(resp(200, {"code": 200, "data": {"download_url": "https://d/x", "upload": {"url": "https://s3/x"}}}))
    with pytest.raises(ApiError, match="upload of .* refused") as info:
        flow.send(resp(403, b"SignatureDoesNotMatch"))
    assert info.value.status == 403


def test_upload_then_submit_uses_oss_header():
    """End to end, sans I/O: a local image uploads to oss://, and the submit then carries the resolve header."""
    req = I2V("x", image=image_bytes())
    ds = DashScope()
    flow = ds.upload(req.image, "wan2.7-i2v")
    next(flow)
    flow.send(resp(200, {"data": POLICY}))
    try:
        flow.send(resp(204, b""))
    except StopIteration as stop:
        url = stop.value
    r = ds.submit(CATALOG["wan2.7-i2v"], req, [url])
    assert url.startswith("oss://dashscope-instant/") and r.headers["X-DashScope-OssResourceResolve"] == "enable"


def test_dashscope_legacy_r2v_first_frame_not_silently_dropped():
    from wanlab.errors import ValidationError
    try:
        req = Ref2V("x", model="wan2.6-r2v", images=[U("r1.png")], first_frame=IMG)
        req.validate_for(CATALOG["wan2.6-r2v"])
    except ValidationError:
        return                      # refused before sending: fine
    body = DashScope().submit(CATALOG["wan2.6-r2v"], req, media_urls(req)).json
    assert IMG in json.dumps(body)
