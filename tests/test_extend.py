"""wanlab.Extend end to end on both protocols: refused before anything is sent, priced (or honestly
unpriced), the wire body each host gets, and the delivered video: the requested TOTAL length, the clip
first, then a continuation that starts on the clip's last frame."""
from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from tests.media_fixtures import image_bytes, media_files  # noqa: F401  (fixture import)
from wanlab import BudgetExceeded, CatalogError, Extend, Lab, Status, ValidationError
from wanlab.catalog import output_size
from wanlab.media import frame_at
from wanlab.sim.render import RenderSpec, render

from .conftest import RecordingTransport

PROTOCOLS = ("dashscope", "wavespeed")
TOTAL = 6  # seconds asked for, clip included


def stripes(vertical: bool, period: int = 20) -> bytes:
    """A picture with plenty of structure, so SSIM can tell two of them apart."""
    a = np.zeros((240, 320, 3), np.uint8)
    band = ((np.arange(320 if vertical else 240) // period) % 2 * 200 + 30).astype(np.uint8)
    a[:] = band[None, :, None] if vertical else band[:, None, None]
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 3 s 4:3 clip that opens on vertical stripes and closes on horizontal ones."""
    path = tmp_path_factory.mktemp("extend") / "clip.mp4"
    path.write_bytes(render(RenderSpec("flf2v", "turn", 5, 320, 240, 3.0, images=(stripes(True), stripes(False)))))
    return path


@pytest.fixture(scope="module")
def labs(tmp_path_factory):
    out = {
        p: Lab(provider="sim", protocol=p, time_scale=0.01, home=tmp_path_factory.mktemp(p), quiet=True, measure=False)
        for p in PROTOCOLS
    }
    yield out
    for lab in out.values():
        lab.close()


@pytest.fixture(scope="module")
def runs(labs, clip):
    return {p: lab.run_sync(Extend("the stripes keep turning", video=clip, duration=TOTAL, seed=2), timeout=120)
            for p, lab in labs.items()}


def luma(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The central band (clear of the sim's banner and captions), as luma at `size`."""
    a = np.asarray(img.convert("L").resize(size))
    return a[a.shape[0] // 4 : a.shape[0] * 3 // 4]


def ssim(a: Image.Image, b: Image.Image) -> float:
    return float(structural_similarity(luma(a, a.size), luma(b, a.size), data_range=255))


# -- end to end on the embedded sim ---------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_extend_delivers_the_total_length_asked_for(labs, runs, protocol):
    job = runs[protocol]
    assert job.status is Status.SUCCEEDED, job
    assert job.model.id == {"dashscope": "wan2.7-i2v", "wavespeed": "alibaba/wan-2.7/video-extend"}[protocol]
    with av.open(str(job.video_path)) as c:
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == TOTAL * 30                                     # the total, clip included
    assert (frames[0].width, frames[0].height) == output_size("720P", None, 4 / 3)   # follows the clip
    assert labs[protocol].log.get(job.id)["mode"] == "extend"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_clip_comes_first_and_the_continuation_starts_on_its_last_frame(runs, clip, protocol):
    out = runs[protocol].video_path.read_bytes()
    src = clip.read_bytes()
    clip_first, clip_last = frame_at(src, 0.0), frame_at(src, 2.99)
    assert ssim(clip_first, clip_last) < 0.6                             # the clip really changes
    opening, seam = frame_at(out, 0.0), frame_at(out, 3.0)              # frame 90: the first new one
    assert ssim(opening, clip_first) > 0.8 and ssim(opening, clip_first) > ssim(opening, clip_last) + 0.2
    assert ssim(seam, clip_last) > 0.9 and ssim(seam, clip_last) > ssim(seam, clip_first) + 0.2


def test_a_last_frame_on_dashscope_ends_the_video_on_it(labs, clip):
    goal = Image.open(io.BytesIO(stripes(True, period=60)))
    job = labs["dashscope"].run_sync(Extend("to wide stripes", video=clip, last=goal, duration=5, seed=3), timeout=120)
    assert job.status is Status.SUCCEEDED
    end = frame_at(job.video_path.read_bytes(), 5.0)                    # past the end: the last frame
    clip_last = frame_at(clip.read_bytes(), 2.99)
    assert ssim(end, goal) > 0.8 and ssim(end, goal) > ssim(end, clip_last) + 0.2


def test_a_logged_extend_rebuilds_for_a_rerun(labs, runs):
    lab, job = labs["dashscope"], runs["dashscope"]
    again = lab.rerun(job.id, seed=7)
    assert isinstance(again.request, Extend) and again.request.seed == 7
    assert again.request.video.sha256 == job.request.video.sha256 and again.request.duration == TOTAL
    again.wait(120)
    assert again.status is Status.SUCCEEDED


# -- what each host gets on the wire --------------------------------------------------------------

def _submit_body(transport: RecordingTransport, path: str) -> dict:
    [req] = [r for r in transport.seen if r.method == "POST" and r.url.path.endswith(path)]
    return json.loads(req.content)


def test_the_dashscope_body_is_wan27_i2v_with_first_clip_and_last_frame(make_lab, clip):
    transport = RecordingTransport()
    lab = make_lab("dashscope", transport=transport)
    job = lab.run_sync(Extend("on", video=clip, last=image_bytes(), duration=5, seed=1), timeout=120)
    assert job.status is Status.SUCCEEDED
    body = _submit_body(transport, "/video-synthesis")
    assert body["model"] == "wan2.7-i2v"
    media = body["input"]["media"]
    assert [m["type"] for m in media] == ["first_clip", "last_frame"]
    assert all(m["url"].startswith("oss://") for m in media)             # both uploaded first
    assert body["parameters"] == {"duration": 5, "seed": 1, "resolution": "720P"}


def test_the_wavespeed_body_is_flat_with_the_clip_as_video(make_lab, clip):
    transport = RecordingTransport()
    lab = make_lab("wavespeed", transport=transport)
    job = lab.run_sync(Extend("on", video=clip, duration=5, resolution="1080P"), timeout=120)
    assert job.status is Status.SUCCEEDED
    body = _submit_body(transport, "/api/v3/alibaba/wan-2.7/video-extend")
    assert set(body) == {"prompt", "video", "duration", "resolution", "seed"}
    assert (body["duration"], body["resolution"], body["seed"]) == (5, "1080p", -1)
    assert body["video"].startswith("http") and "/_media/" in body["video"]   # the upload's download URL


# -- money: priced before, refused before anything is sent ----------------------------------------

def test_estimate_prices_the_total_on_dashscope_and_says_unknown_on_wavespeed(labs, media_files):
    req = Extend("on", video=media_files["clip3"], duration=8)
    ds = labs["dashscope"].estimate(req)
    assert (ds.amount, ds.currency, ds.seconds) == (pytest.approx(0.80), "USD", 8)   # 0.10 USD/s × 8 s
    assert labs["dashscope"].estimate(req.replace(resolution="1080P")).amount == pytest.approx(1.20)
    ws = labs["wavespeed"].estimate(req)
    assert ws.amount is None and str(ws).startswith("unknown price (8 s")   # no dated source: never zero


def test_a_budget_refuses_an_unpriced_extend_before_sending(make_lab, sim, media_files):
    lab = make_lab("wavespeed", budget=5.0)
    with pytest.raises(BudgetExceeded, match="price of this run is unknown"):
        lab.submit(Extend("on", video=media_files["clip3"], duration=5))
    assert sim.stats()["submits"] == 0 and len(lab.log) == 0


BAD = [
    ("no_video", "dashscope", lambda m: Extend("on"), ValidationError, "video is missing"),
    ("clip_1s", "dashscope", lambda m: Extend("on", video=m["clip1"]), ValidationError,
     "Extend.video is 1.0 s long; the clip to extend must be 2–10 s (use a longer clip)"),
    ("clip_12s", "dashscope", lambda m: Extend("on", video=m["clip12"]), ValidationError, "(trim it first)"),
    ("image_as_video", "dashscope", lambda m: Extend("on", video=m["red"]), ValidationError, "MP4 or MOV"),
    ("video_as_last", "dashscope", lambda m: Extend("on", video=m["clip3"], last=m["clip3"]), ValidationError,
     "Extend.last"),
    ("total_not_past_clip", "dashscope", lambda m: Extend("on", video=m["clip3"], duration=3), ValidationError,
     "duration=3 is the total length, clip included, and the clip is 3.0 s"),
    ("total_16", "dashscope", lambda m: Extend("on", video=m["clip3"], duration=16), ValidationError,
     "accepts 2–15 s"),
    ("ws_total_4", "wavespeed", lambda m: Extend("on", video=m["clip3"], duration=4), ValidationError,
     "alibaba/wan-2.7/video-extend (WAN 2.7) accepts 5–15 s"),
    ("ws_last", "wavespeed", lambda m: Extend("on", video=m["clip3"], last=m["red"]), ValidationError,
     "last= is not sent to WaveSpeed"),
    ("ws_no_prompt", "wavespeed", lambda m: Extend(video=m["clip3"]), ValidationError, "prompt is empty"),
    ("ws_wrong_model", "wavespeed",
     lambda m: Extend("on", video=m["clip3"], model="alibaba/wan-2.7/image-to-video"), CatalogError,
     "use model='alibaba/wan-2.7/video-extend'"),
]


@pytest.mark.parametrize("case, protocol, make, exc, needle", BAD, ids=[b[0] for b in BAD])
def test_bad_extend_is_refused_before_anything_is_sent(make_lab, sim, media_files, case, protocol, make, exc, needle):
    lab = make_lab(protocol)
    with pytest.raises(exc) as info:
        lab.submit(make(media_files))
    assert needle in str(info.value)
    assert sim.stats()["submits"] == 0 and sum(sim.stats()["requests"].values()) == 0 and len(lab.log) == 0


def test_virginia_has_no_extend(make_lab, sim, media_files):
    lab = make_lab("dashscope", region="virginia")
    with pytest.raises(CatalogError, match="DashScope virginia serves WAN 2.6 only and no 2.6 model there does "
                                           "video extension; use region='singapore' or 'beijing'"):
        lab.submit(Extend("on", video=media_files["clip3"]))
    assert sim.stats()["submits"] == 0 and len(lab.log) == 0
