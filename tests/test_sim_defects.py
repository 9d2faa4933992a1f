"""Known defects in the sim (ground truth): the renderer draws flicker, frozen, blur and drift at a
chosen strength and each grows with it (measured here with plain numpy on the decoded frames); a prompt
tag or a `task:defect` fault rule asks for them over HTTP and /_sim/tasks reports what was applied."""

from __future__ import annotations

import io
import time

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from wanlab.sim import FaultPlan, SimServer
from wanlab.sim.defect_tags import parse_defect_tag, strip_defect_tags
from wanlab.sim.faults import parse
from wanlab.sim.render import RenderSpec, render

W, H = 320, 192  # small and even; the banner covers rows < 64, the counter rows > 170
STRENGTHS = (0.0, 0.3, 0.7)


def spec(defect: str | None, s: float = 0.0, mode: str = "t2v", images: tuple[bytes, ...] = ()) -> RenderSpec:
    return RenderSpec(
        mode=mode,
        prompt="a red kite over the sea",
        seed=1,
        width=W,
        height=H,
        duration=1.0,
        images=images,
        defects=((defect, s),) if defect else (),
    )


def luma_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="gray").astype(np.float64) for f in c.decode(video=0)]


def rgb_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.float64) for f in c.decode(video=0)]


def flicker_score(frames: list[np.ndarray]) -> float:
    """Std of the second difference of the per-frame mean luma (smooth motion ~ 0)."""
    means = np.array([f.mean() for f in frames])
    return float(np.diff(means, 2).std())


def frozen_share(frames: list[np.ndarray]) -> float:
    """Share of consecutive frames that are (near) identical. A moving frame changes its counter
    digits (a ~170+ level jump somewhere); a repeated one differs by x264 refinement at most."""
    same = [np.abs(a - b).max() < 32 for a, b in zip(frames, frames[1:], strict=False)]
    return float(np.mean(same))


def sharpness(frames: list[np.ndarray]) -> float:
    """Mean variance of a discrete Laplacian (falls as the picture blurs)."""
    out = []
    for f in frames[::5]:
        lap = f[1:-1, 2:] + f[1:-1, :-2] + f[2:, 1:-1] + f[:-2, 1:-1] - 4 * f[1:-1, 1:-1]
        out.append(lap.var())
    return float(np.mean(out))


def first_image() -> tuple[bytes, np.ndarray]:
    """A smooth colour field with one bold box, at the output size."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    rgb = np.stack([40 + 180 * xx / W, 40 + 180 * yy / H, 200 - 120 * xx / W], -1).astype(np.uint8)
    rgb[60:130, 120:200] = (230, 230, 60)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue(), rgb.astype(np.float64)


def increasing(values: list[float], margin: float) -> bool:
    return all(b > a + margin for a, b in zip(values, values[1:], strict=False))


# ---- the renderer ------------------------------------------------------------------------------------
def test_flicker_grows_with_strength():
    scores = [flicker_score(luma_frames(render(spec("flicker", s)))) for s in STRENGTHS]
    assert scores[0] < 1.0, scores
    assert increasing(scores, 3.0), scores


def test_frozen_grows_with_strength():
    shares = [frozen_share(luma_frames(render(spec("frozen", s)))) for s in STRENGTHS]
    assert shares[0] == 0.0, shares
    assert increasing(shares, 0.1), shares
    # about s x frames repeat: 30 frames, span round(0.7 * 30) = 21 -> 20 repeated pairs of 29
    assert abs(shares[2] - 20 / 29) < 0.05, shares


def test_frozen_is_in_the_middle_and_resumes():
    frames = luma_frames(render(spec("frozen", 0.3)))
    same = [np.abs(a - b).max() < 32 for a, b in zip(frames, frames[1:], strict=False)]
    held = [k for k, v in enumerate(same) if v]
    assert held and held[0] > 3 and held[-1] < len(same) - 4, held
    assert held == list(range(held[0], held[-1] + 1))  # one contiguous span


def test_blur_grows_with_strength():
    scores = [sharpness(luma_frames(render(spec("blur", s)))) for s in STRENGTHS]
    assert scores[0] > 1.5 * scores[1] > 0, scores
    assert scores[1] > 1.5 * scores[2] > 0, scores


def test_drift_grows_with_strength_and_over_the_clip():
    png, rgb = first_image()
    band = slice(70, 160)  # between the banner and the counter
    first, last = [], []
    clean_last = None
    for s in STRENGTHS:
        frames = rgb_frames(render(spec("drift", s, mode="i2v", images=(png,))))
        clean_last = frames[-1] if clean_last is None else clean_last
        first.append(float(np.abs(frames[0][band] - rgb[band]).mean()))
        # the pan has moved away from the image by the end: there, compare with the clean video's last frame
        last.append(float(np.abs(frames[-1][band] - clean_last[band]).mean()))
    assert first[0] < 5.0, first  # a clean i2v video starts on its image (overlay and encoding aside)
    assert increasing(first, 1.0), first
    assert increasing(last, 3.0), last
    # the deviation the defect adds is larger at the end than at frame 0
    assert last[2] > first[2] - first[0], (first, last)


def test_drift_applies_in_t2v_too():
    clean = rgb_frames(render(spec(None)))[0]
    drifted = [rgb_frames(render(spec("drift", s)))[0] for s in (0.3, 0.7)]
    d = [float(np.abs(f[70:160] - clean[70:160]).mean()) for f in drifted]
    assert 0 < d[0] < d[1], d


def test_deterministic_and_zero_strength_is_clean():
    clean = render(spec(None))
    assert render(spec("flicker", 0.0)) == clean
    mixed = RenderSpec(
        mode="t2v",
        prompt="p",
        seed=5,
        width=W,
        height=H,
        duration=1.0,
        defects=(("flicker", 0.4), ("frozen", 0.3), ("blur", 0.2), ("drift", 0.5)),
    )
    a, b = render(mixed), render(mixed)
    assert a == b
    assert a != render(RenderSpec(mode="t2v", prompt="p", seed=5, width=W, height=H, duration=1.0))


@pytest.mark.parametrize(
    "defects",
    [
        (("sharpen", 0.5),),
        (("blur", 1.5),),
        (("blur", -0.1),),
        (("blur", float("nan")),),
        (("blur", True),),
        (("blur", "0.5"),),
        (("blur", 0.2), ("blur", 0.3)),
        (("blur",),),
        [("blur", 0.2)],
    ],
)
def test_spec_rejects_bad_defects(defects):
    bad = RenderSpec(mode="t2v", prompt="p", seed=1, width=W, height=H, duration=1.0, defects=defects)
    with pytest.raises(ValueError):
        render(bad)


# ---- the prompt tag and the fault grammar ------------------------------------------------------------
def test_prompt_tag_parsing():
    assert parse_defect_tag("a cat") == ()
    assert parse_defect_tag("a cat [sim:flicker=0.6]") == (("flicker", 0.6),)
    assert parse_defect_tag("[SIM: Frozen = 0.2 , blur=0.3] a cat") == (("frozen", 0.2), ("blur", 0.3))
    assert parse_defect_tag("[sim:drift=1] a [sim:flicker=.5]") == (("flicker", 0.5), ("drift", 1.0))
    assert parse_defect_tag("a cat [sim:blur=0]") == ()  # zero = clean
    assert parse_defect_tag("a [simulation] of [sim] text") == ()  # not tags
    for bad in ("[sim:sharpen=0.5]", "[sim:blur=2]", "[sim:blur=x]", "[sim:blur]", "[sim:]", "[sim:blur=.1,blur=.2]"):
        with pytest.raises(ValueError, match="flicker, frozen, blur, drift|twice"):
            parse_defect_tag(bad)
    assert strip_defect_tags("a cat [sim:flicker=0.6] on a mat") == "a cat on a mat"
    assert strip_defect_tags("no  tag  here") == "no  tag  here"


def test_fault_grammar_defect():
    fs = parse("task:defect=flicker:0.5@0.3, task:defect=frozen:0.4#2, *:defect=drift:1")
    assert [(f.route, f.kind, f.arg, f.prob, f.seq) for f in fs] == [
        ("task", "defect", "flicker:0.5", 0.3, None),
        ("task", "defect", "frozen:0.4", None, frozenset({2})),
        ("*", "defect", "drift:1", None, None),
    ]
    for bad in ("task:defect", "task:defect=flicker", "task:defect=sharpen:0.5", "task:defect=blur:1.5"):
        with pytest.raises(ValueError, match="flicker, frozen, blur, drift"):
            parse(bad)
    with pytest.raises(ValueError, match="route 'task' only"):
        parse("submit:defect=blur:0.5")
    plan = FaultPlan().add("task", "defect", arg="blur:0.5", seq=[1])
    assert plan.describe() == ["task:defect=blur:0.5#1"]
    with pytest.raises(ValueError, match="allowed defects"):
        FaultPlan().add("task", "defect", arg="wobble:0.5")


# ---- over HTTP -------------------------------------------------------------------------------------
SUBMIT = "/services/aigc/video-generation/video-synthesis"
HD = {"Authorization": "Bearer sk-defects", "X-DashScope-Async": "enable"}
HW = {"Authorization": "Bearer ws-defects"}
WS_T2V = "/api/v3/alibaba/wan-2.7/text-to-video"


@pytest.fixture(scope="module")
def server():
    with SimServer(time_scale=0.004, seed=3, dashscope_submits_per_s=None, dashscope_queries_per_s=None) as s:
        yield s


@pytest.fixture
def sim(server):
    server.faults.clear()
    yield server
    server.faults.clear()


def ds_submit(sim, prompt: str, seed: int = 1) -> httpx.Response:
    body = {
        "model": "wan2.7-t2v",
        "input": {"prompt": prompt},
        "parameters": {"resolution": "720P", "duration": 2, "seed": seed},
    }
    return httpx.post(sim.dashscope_url() + SUBMIT, json=body, headers=HD)


def ws_submit(sim, prompt: str, seed: int = 1) -> httpx.Response:
    body = {"prompt": prompt, "duration": 2, "resolution": "720p", "seed": seed}
    return httpx.post(sim.url + WS_T2V, json=body, headers=HW)


def wait_ds(sim, tid: str, timeout: float = 30) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        o = httpx.get(f"{sim.dashscope_url()}/tasks/{tid}", headers=HD).json()["output"]
        if o["task_status"] not in ("PENDING", "RUNNING"):
            return o
        time.sleep(0.05)
    raise AssertionError("task did not finish")


def wait_ws(sim, pid: str, timeout: float = 30) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        d = httpx.get(f"{sim.url}/api/v3/predictions/{pid}/result", headers=HW).json()["data"]
        if d["status"] not in ("created", "processing"):
            return d
        time.sleep(0.05)
    raise AssertionError("prediction did not finish")


def test_prompt_tag_over_both_hosts(sim):
    r = ds_submit(sim, "a red kite [sim:flicker=0.6]")
    assert r.status_code == 200, r.text
    tid = r.json()["output"]["task_id"]
    out = wait_ds(sim, tid)
    assert out["task_status"] == "SUCCEEDED"
    assert out["orig_prompt"] == "a red kite [sim:flicker=0.6]"  # the host just sees text
    assert sim.task_info(tid)["defects"] == {"flicker": 0.6}
    assert httpx.get(f"{sim.url}/_sim/tasks/{tid}").json()["defects"] == {"flicker": 0.6}
    frames = luma_frames(httpx.get(out["video_url"]).content)
    assert flicker_score(frames) > 5

    r = ws_submit(sim, "a red kite [sim:blur=0.3,frozen=0.2]")
    assert r.status_code == 200, r.text
    pid = r.json()["data"]["id"]
    assert wait_ws(sim, pid)["status"] == "completed"
    assert sim.task_info(pid)["defects"] == {"frozen": 0.2, "blur": 0.3}

    # untagged: no defects recorded
    r = ds_submit(sim, "a red kite")
    tid = r.json()["output"]["task_id"]
    wait_ds(sim, tid)
    assert sim.task_info(tid)["defects"] == {}


def test_zero_tag_renders_the_clean_video(sim):
    a = wait_ds(sim, ds_submit(sim, "a blue kite", seed=9).json()["output"]["task_id"])
    b = wait_ds(sim, ds_submit(sim, "a blue kite [sim:drift=0]", seed=9).json()["output"]["task_id"])
    # the tag is not drawn in the caption and strength 0 is clean: the very same file
    assert httpx.get(a["video_url"]).content == httpx.get(b["video_url"]).content


@pytest.mark.parametrize("prompt", ["a kite [sim:wobble=0.5]", "a kite [sim:blur=3]", "a kite [sim:blur]"])
def test_bad_tag_is_a_400_on_both_hosts_and_creates_no_task(sim, prompt):
    before = sim.stats()["submits"]
    r = ds_submit(sim, prompt)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "InvalidParameter" and "request_id" in body
    assert "flicker, frozen, blur, drift" in body["message"]
    r = ws_submit(sim, prompt)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == 400 and body["data"] is None
    assert "flicker, frozen, blur, drift" in body["message"]
    assert sim.stats()["submits"] == before


def test_fault_rule_freezes_the_first_task_only(sim):
    sim.faults.set("task:defect=frozen:0.5#1")
    injected = sim.stats()["faults"].get("task:defect", 0)
    first = ds_submit(sim, "a green kite", seed=4).json()["output"]["task_id"]
    second = ds_submit(sim, "a green kite", seed=5).json()["output"]["task_id"]
    out1, out2 = wait_ds(sim, first), wait_ds(sim, second)
    assert out1["task_status"] == out2["task_status"] == "SUCCEEDED"
    assert sim.task_info(first)["defects"] == {"frozen": 0.5}
    assert sim.task_info(second)["defects"] == {}
    assert sim.stats()["faults"]["task:defect"] == injected + 1
    assert frozen_share(luma_frames(httpx.get(out1["video_url"]).content)) > 0.4
    assert frozen_share(luma_frames(httpx.get(out2["video_url"]).content)) == 0.0


def test_fault_rule_adds_to_the_tag_and_skips_failing_tasks(sim):
    sim.faults.add("task", "fail", arg="InternalError", seq=[1])
    sim.faults.add("task", "defect", arg="blur:0.5", seq=[1])
    failed = ds_submit(sim, "a kite [sim:flicker=0.2]").json()["output"]["task_id"]
    assert wait_ds(sim, failed)["task_status"] == "FAILED"
    assert sim.task_info(failed)["defects"] == {}  # nothing rendered; the rule waits for a success
    pid = ws_submit(sim, "a kite [sim:flicker=0.2]").json()["data"]["id"]
    assert wait_ws(sim, pid)["status"] == "completed"
    assert sim.task_info(pid)["defects"] == {"flicker": 0.2, "blur": 0.5}
