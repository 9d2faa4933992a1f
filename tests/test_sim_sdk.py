"""The official SDKs (dashscope 2.0.2, wavespeed 2.0.5) pointed at wanlab sim run end to end, and the
videos they get back are valid MP4s of the requested size and length."""

from __future__ import annotations

import httpx
import pytest
from PIL import Image

import dashscope
import wavespeed
from dashscope import VideoSynthesis

from tests.media_fixtures import write_mp4
from wanlab.catalog import output_size
from wanlab.sim import SimServer
from wanlab.sim.render import probe

KEY = "sk-sdk-test"


@pytest.fixture(scope="module")
def sim():
    with SimServer(time_scale=0.004, dashscope_submits_per_s=None, dashscope_queries_per_s=None) as s:
        yield s


@pytest.fixture
def ds(sim):
    old = dashscope.base_http_api_url
    dashscope.base_http_api_url = sim.dashscope_url()
    try:
        yield sim
    finally:
        dashscope.base_http_api_url = old


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    first, last = d / "first.png", d / "last.png"
    Image.new("RGB", (960, 720), (200, 40, 40)).save(first)  # 4:3
    Image.new("RGB", (960, 720), (40, 40, 200)).save(last)
    return first, last


def check_video(url: str, size: tuple[int, int], seconds: float) -> None:
    r = httpx.get(url)
    assert r.status_code == 200
    p = probe(r.content)
    assert (p["width"], p["height"]) == size
    assert p["frames"] == round(seconds * 30) and p["codec"] == "h264"


# ---- dashscope 1.x-style API: VideoSynthesis.async_call / fetch / wait ----
def test_dashscope_t2v_async_call_fetch_wait(ds):
    rsp = VideoSynthesis.async_call(
        model="wan2.7-t2v",
        prompt="a paper boat on a river",
        api_key=KEY,
        resolution="720P",
        duration=2,
        seed=4,
        ratio="9:16",
    )
    assert rsp.status_code == 200 and rsp.output.task_status == "PENDING"
    assert VideoSynthesis.fetch(rsp, api_key=KEY).output.task_status in ("PENDING", "RUNNING", "SUCCEEDED")
    done = VideoSynthesis.wait(rsp, api_key=KEY)
    assert done.status_code == 200 and done.output.task_status == "SUCCEEDED"
    assert done.usage.output_video_duration == 2 and done.usage.SR == 720
    check_video(done.output.video_url, output_size("720P", "9:16"), 2)


def test_dashscope_i2v_uploads_local_file_via_get_policy(ds, frames):
    before = ds.stats()["requests"].get("upload", 0)
    rsp = VideoSynthesis.async_call(
        model="wan2.7-i2v",
        prompt="the red card flips",
        api_key=KEY,
        media=[{"type": "first_frame", "url": f"file://{frames[0]}"}],
        resolution="720P",
        duration=2,
    )
    assert rsp.status_code == 200, rsp.message
    assert ds.stats()["requests"]["upload"] >= before + 2  # getPolicy + the OSS form post
    done = VideoSynthesis.wait(rsp, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED"
    check_video(done.output.video_url, output_size("720P", None, 960 / 720), 2)


def test_dashscope_first_and_last_frame(ds, frames):
    rsp = VideoSynthesis.async_call(
        model="wan2.7-i2v",
        prompt="red to blue",
        api_key=KEY,
        media=[{"type": "first_frame", "url": str(frames[0])}, {"type": "last_frame", "url": str(frames[1])}],
        resolution="720P",
        duration=2,
        seed=9,
    )
    done = VideoSynthesis.wait(rsp, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED"
    check_video(done.output.video_url, output_size("720P", None, 960 / 720), 2)


def test_dashscope_legacy_kf2v_path(ds, frames):
    # the SDK sends kf2v models to /services/aigc/image2video/video-synthesis with first/last_frame_url
    rsp = VideoSynthesis.async_call(
        model="wanx2.1-kf2v-plus",
        prompt="morph",
        api_key=KEY,
        first_frame_url=str(frames[0]),
        last_frame_url=str(frames[1]),
        size="1280*720",
    )
    assert rsp.status_code == 200, rsp.message
    done = VideoSynthesis.wait(rsp, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED"
    assert done.usage.video_duration == 5
    check_video(done.output.video_url, (1280, 720), 5)


def test_dashscope_errors_come_back_as_sdk_responses(ds):
    rsp = VideoSynthesis.async_call(model="wan2.7-t2v", prompt="x", api_key=KEY, resolution="480P", duration=2)
    assert rsp.status_code == 400 and rsp.code == "InvalidParameter"
    rsp = VideoSynthesis.async_call(model="wan2.7-nope", prompt="x", api_key=KEY)
    assert rsp.status_code == 400 and rsp.message == "Model not exist."
    gone = VideoSynthesis.fetch("0" * 32, api_key=KEY)
    assert gone.status_code == 200 and gone.output.task_status == "UNKNOWN"


# ---- dashscope 2.0 API: dashscope.Client ----
def test_dashscope_client_videos_jobs(sim, frames):
    client = dashscope.Client(api_key=KEY, base_url=sim.dashscope_url())
    job = client.videos.jobs.create(
        model="wan2.7-t2v", prompt="a lantern in fog", resolution="720P", duration=2, seed=12
    )
    assert job.task_id and job.status == "PENDING"
    assert client.videos.jobs.fetch(job.task_id).task_id == job.task_id
    done = client.videos.jobs.wait(job, poll_interval=0.05)
    assert done.status == "SUCCEEDED" and done.usage.output_video_duration == 2
    check_video(done.video_url, output_size("720P", "16:9"), 2)

    i2v = client.videos.generate(
        model="wan2.7-i2v",
        prompt="go",
        image_url=f"file://{frames[0]}",
        media=[{"type": "last_frame", "url": f"file://{frames[1]}"}],
        resolution="720P",
        duration=2,
        poll_interval=0.05,
    )
    assert i2v.status == "SUCCEEDED"
    check_video(i2v.video_url, output_size("720P", None, 960 / 720), 2)
    # The sim lists rows under "data" as WIRE.md documents; the 2.0.2 Client looks for "tasks", so only
    # the counts survive its parsing (see docs/SIM.md).
    listed = client.videos.jobs.list(page_size=50)
    assert listed.total >= 2


# ---- wavespeed ----
def test_wavespeed_t2v_run(sim):
    client = wavespeed.Client(api_key="ws-sdk", base_url=sim.wavespeed_url)
    out = client.run(
        "alibaba/wan-2.7/text-to-video",
        {"prompt": "a red kite", "resolution": "720p", "duration": 2, "seed": 5, "aspect_ratio": "1:1"},
        poll_interval=0.05,
    )
    assert len(out["outputs"]) == 1
    check_video(out["outputs"][0], output_size("720P", "1:1"), 2)


def test_wavespeed_i2v_with_upload_helper(sim, frames):
    client = wavespeed.Client(api_key="ws-sdk", base_url=sim.wavespeed_url)
    first = client.upload(str(frames[0]))
    with open(frames[1], "rb") as fh:
        last = client.upload(fh)
    assert first.startswith(sim.url)
    out = client.run(
        "alibaba/wan-2.7/image-to-video",
        {"prompt": "red to blue", "image": first, "last_image": last, "resolution": "720p", "duration": 2},
        poll_interval=0.05,
    )
    check_video(out["outputs"][0], output_size("720P", None, 960 / 720), 2)


def test_wavespeed_failures_raise_in_the_sdk(sim):
    client = wavespeed.Client(api_key="ws-sdk", base_url=sim.wavespeed_url, max_retries=0)
    sim.faults.set("task:moderation#1")
    try:
        with pytest.raises(RuntimeError, match="failed"):
            client.run(
                "alibaba/wan-2.7/text-to-video",
                {"prompt": "x", "resolution": "720p", "duration": 2},
                poll_interval=0.05,
            )
    finally:
        sim.faults.clear()
    with pytest.raises(RuntimeError, match="HTTP 400"):
        client.run("alibaba/wan-2.7/text-to-video", {"prompt": "x", "resolution": "480p"})


def test_wavespeed_video_extend_gets_the_requested_total_length(sim, tmp_path):
    client = wavespeed.Client(api_key="ws-sdk", base_url=sim.wavespeed_url)
    clip = client.upload(str(write_mp4(tmp_path / "clip.mp4", 3.0, size=(640, 480))))   # 4:3, 3 s
    out = client.run(
        "alibaba/wan-2.7/video-extend",
        {"prompt": "the stripe keeps drifting", "video": clip, "resolution": "720p", "duration": 8, "seed": 3},
        poll_interval=0.05,
    )
    check_video(out["outputs"][0], output_size("720P", None, 640 / 480), 8)   # the total, clip included


def test_dashscope_first_clip_through_the_sdk(ds, tmp_path):
    clip = write_mp4(tmp_path / "clip.mp4", 2.0, size=(640, 480))
    rsp = VideoSynthesis.async_call(
        model="wan2.7-i2v",
        prompt="and then",
        api_key=KEY,
        media=[{"type": "first_clip", "url": f"file://{clip}"}],
        resolution="720P",
        duration=4,
    )
    assert rsp.status_code == 200, rsp.message
    done = VideoSynthesis.wait(rsp, api_key=KEY)
    assert done.output.task_status == "SUCCEEDED" and done.usage.output_video_duration == 4
    check_video(done.output.video_url, output_size("720P", None, 640 / 480), 4)
