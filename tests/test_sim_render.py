"""Behavioural tests for the simulator's MP4 renderer (wanlab.sim.render).

Sizes are small (320x240 / 640x360, 1-2 s) to keep the suite fast; speed itself is
measured by bench/bench_render.py, not asserted here."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageFont

from wanlab.sim import render as R
from wanlab.sim.render import MODES, RenderSpec, probe, render

ROOT = Path(__file__).resolve().parents[1]
W, H = 320, 240


# --------------------------------------------------------------------------- helpers


def png(color: tuple[int, int, int], size: tuple[int, int] = (200, 150)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def gradient_jpeg(size: tuple[int, int] = (400, 300)) -> bytes:
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.arange(w)[None, :] * 255 // w
    arr[..., 1] = np.arange(h)[:, None] * 255 // h
    arr[..., 2] = 90
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_clip(
    width: int = W,
    height: int = H,
    frames: int = 30,
    left: tuple[int, int, int] = (230, 40, 40),
    right: tuple[int, int, int] = (30, 30, 200),
    fps: int = 30,
) -> bytes:
    """An independent input MP4 (not made by render()): left and right halves in
    different colours, with a vertical stripe drifting rightwards."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        st = c.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.options = {"preset": "ultrafast", "crf": "18", "threads": "1"}
        for i in range(frames):
            rgb = np.empty((height, width, 3), np.uint8)
            rgb[:, : width // 2] = left
            rgb[:, width // 2 :] = right
            x = (i * 3) % width
            rgb[:, x : x + 4] = 255
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts = i
            f.time_base = Fraction(1, fps)
            c.mux(st.encode(f))
        c.mux(st.encode(None))
    return buf.getvalue()


def decode_yuv(data: bytes) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    with av.open(io.BytesIO(data)) as c:
        for f in c.decode(video=0):
            a = f.to_ndarray(format="yuv420p")
            h, w = f.height, f.width
            flat = a.reshape(-1)
            y = flat[: w * h].reshape(h, w)
            u = flat[w * h : w * h + w * h // 4].reshape(h // 2, w // 2)
            v = flat[w * h + w * h // 4 :].reshape(h // 2, w // 2)
            out.append((y, u, v))
    return out


def decode_rgb(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def middle(a: np.ndarray) -> np.ndarray:
    """The central band, clear of the banner (top) and counter/caption (bottom)."""
    h = a.shape[0]
    return a[int(h * 0.4) : int(h * 0.75)]


@pytest.fixture(scope="module")
def clip() -> bytes:
    return make_clip()


def spec_for(mode: str, clip: bytes, **kw: object) -> RenderSpec:
    inputs: dict[str, dict[str, tuple[bytes, ...]]] = {
        "t2v": {},
        "i2v": {"images": (gradient_jpeg(),)},
        "flf2v": {"images": (png((255, 0, 0)), png((0, 0, 255)))},
        "grid9": {"images": (gradient_jpeg((600, 600)),)},
        "ref2v": {"images": (png((0, 200, 0)),), "videos": (clip,)},
        "edit": {"videos": (clip,), "images": (png((250, 250, 0)),)},
        "extend": {"videos": (clip,)},
    }
    args: dict[str, object] = dict(
        mode=mode, prompt=f"a {mode} test prompt", seed=7, width=W, height=H, duration=1.0, model="wan-test"
    )
    args.update(inputs[mode])
    args.update(kw)
    return RenderSpec(**args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- format


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_probes_to_requested_format(mode: str, clip: bytes) -> None:
    data = render(spec_for(mode, clip, duration=1.5))
    info = probe(data)
    assert info["codec"] == "h264"
    assert (info["width"], info["height"]) == (W, H)
    assert info["frames"] == 45
    assert info["fps"] == pytest.approx(30.0)
    assert info["duration"] == pytest.approx(1.5, abs=0.05)
    # The decoder agrees with the container's frame count.
    assert len(decode_yuv(data)) == 45


def test_one_hd_case(clip: bytes) -> None:
    info = probe(render(RenderSpec("i2v", "hd", 1, 1280, 720, 1.0, images=(gradient_jpeg(),))))
    assert (info["width"], info["height"], info["frames"], info["codec"]) == (1280, 720, 30, "h264")


@pytest.mark.parametrize("size", [(1104, 832), (720, 1280), (832, 480)])
def test_odd_strides_and_portrait(size: tuple[int, int]) -> None:
    # 1104/2 = 552 chroma columns is padded in libav frames: the copy must honour it.
    w, h = size
    data = render(RenderSpec("t2v", "stride", 3, w, h, 0.2))
    info = probe(data)
    assert (info["width"], info["height"], info["frames"]) == (w, h, 6)


@pytest.mark.parametrize("duration", [0.5, 1.55, 2.0])
def test_frame_count_is_round_duration_times_fps(duration: float) -> None:
    info = probe(render(RenderSpec("t2v", "n", 1, W, H, duration)))
    assert info["frames"] == round(duration * 30)


def test_mp4_is_faststart_and_has_no_timestamps() -> None:
    data = render(RenderSpec("t2v", "n", 1, W, H, 0.5))
    assert data.index(b"moov") < data.index(b"mdat")
    with av.open(io.BytesIO(data)) as c:
        assert "creation_time" not in c.metadata
        assert "creation_time" not in c.streams.video[0].metadata


def test_invalid_spec_is_rejected() -> None:
    with pytest.raises(ValueError):
        render(RenderSpec("nope", "x", 1, W, H, 1.0))
    with pytest.raises(ValueError):
        render(RenderSpec("t2v", "x", 1, 321, H, 1.0))
    with pytest.raises(ValueError):
        render(RenderSpec("t2v", "x", 1, W, H, 0.0))


# --------------------------------------------------------------------------- determinism


def test_same_spec_gives_identical_bytes(clip: bytes) -> None:
    for mode in ("t2v", "edit"):
        spec = spec_for(mode, clip)
        assert render(spec) == render(spec)


def test_different_seed_gives_different_bytes() -> None:
    a = render(RenderSpec("t2v", "same", 1, W, H, 1.0))
    b = render(RenderSpec("t2v", "same", 2, W, H, 1.0))
    assert a != b


_SUBPROCESS = """
import hashlib, sys
from wanlab.sim.render import RenderSpec, render
spec = RenderSpec("t2v", "cross-process", 1234, 320, 240, 1.0, model="m")
sys.stdout.write(hashlib.sha256(render(spec)).hexdigest())
"""


def test_identical_across_processes() -> None:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", _SUBPROCESS],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for _ in range(2)
    }
    local = hashlib.sha256(render(RenderSpec("t2v", "cross-process", 1234, 320, 240, 1.0, model="m"))).hexdigest()
    assert digests == {local}


def _render_in_threads(specs: list) -> list[bytes | None]:
    """Render every spec at once, one thread each; the results in spec order."""
    results: list[bytes | None] = [None] * len(specs)

    def job(k: int) -> None:
        results[k] = render(specs[k])

    threads = [threading.Thread(target=job, args=(k,)) for k in range(len(specs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_renders_match_sequential(clip: bytes) -> None:
    specs = [spec_for(m, clip, seed=s) for m, s in (("t2v", 1), ("i2v", 2), ("edit", 3), ("grid9", 4))]
    assert _render_in_threads(specs) == [render(s) for s in specs]


# --------------------------------------------------------------------------- content


def test_frame_counter_changes_every_frame() -> None:
    # A solid image rendered with i2v is static apart from the overlay, so the only
    # frame-to-frame change must be the counter in the lower-left corner.
    frames = decode_yuv(render(RenderSpec("i2v", "x", 1, W, H, 0.5, images=(png((90, 90, 90)),))))
    for (a, _, _), (b, _, _) in zip(frames, frames[1:]):
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.max() > 40
        ys, xs = np.nonzero(diff > 40)
        assert ys.min() > H * 0.75 and xs.max() < W * 0.6


def test_banner_is_drawn() -> None:
    frames = decode_yuv(render(RenderSpec("i2v", "x", 1, W, H, 0.2, images=(png((120, 120, 120)),))))
    y = frames[0][0]
    top, mid = y[: H // 10], middle(y)
    # Darkened panel with bright text on it, over a flat grey picture.
    assert top.mean() < mid.mean() - 20
    assert top.max() > 200


def test_t2v_background_moves() -> None:
    frames = decode_yuv(render(RenderSpec("t2v", "x", 5, W, H, 1.0)))
    a, b = middle(frames[0][0]).astype(int), middle(frames[-1][0]).astype(int)
    assert np.abs(a - b).mean() > 2


def test_i2v_uses_the_image_and_pans() -> None:
    frames = decode_yuv(render(RenderSpec("i2v", "x", 5, W, H, 1.0, images=(gradient_jpeg(),))))
    first, last = middle(frames[0][0]).astype(int), middle(frames[-1][0]).astype(int)
    assert np.abs(first - last).mean() > 2  # Ken Burns motion
    rgb = decode_rgb(render(RenderSpec("i2v", "x", 5, W, H, 0.2, images=(png((200, 30, 30)),))))
    assert np.allclose(middle(rgb[0]).reshape(-1, 3).mean(0), (200, 30, 30), atol=12)


def test_flf2v_goes_from_first_to_last() -> None:
    rgb = decode_rgb(render(RenderSpec("flf2v", "x", 1, W, H, 1.0, images=(png((220, 20, 20)), png((20, 20, 220))))))
    start, end = middle(rgb[0]).reshape(-1, 3).mean(0), middle(rgb[-1]).reshape(-1, 3).mean(0)
    assert np.allclose(start, (220, 20, 20), atol=15)
    assert np.allclose(end, (20, 20, 220), atol=15)
    halfway = middle(rgb[len(rgb) // 2]).reshape(-1, 3).mean(0)
    assert 60 < halfway[0] < 180 and 60 < halfway[2] < 180


def test_grid9_walks_the_tiles_in_order() -> None:
    colors = [
        (220, 30, 30),
        (30, 220, 30),
        (30, 30, 220),
        (220, 220, 30),
        (220, 30, 220),
        (30, 220, 220),
        (240, 240, 240),
        (120, 60, 20),
        (20, 20, 20),
    ]
    grid = np.zeros((300, 300, 3), np.uint8)
    for k, col in enumerate(colors):
        r, c = divmod(k, 3)
        grid[r * 100 : (r + 1) * 100, c * 100 : (c + 1) * 100] = col
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, "PNG")
    n = 54  # 6 frames per shot at 30 fps
    rgb = decode_rgb(render(RenderSpec("grid9", "x", 1, W, H, n / 30, images=(buf.getvalue(),))))
    assert len(rgb) == n
    means = [middle(rgb[k * 6 + 3]).reshape(-1, 3).mean(0) for k in range(9)]
    for k, col in enumerate(colors):
        assert np.allclose(means[k], col, atol=20), (k, means[k], col)
    assert np.abs(means[0] - means[8]).max() > 100


def test_ref2v_cuts_between_references() -> None:
    vid = make_clip(left=(200, 40, 40), right=(200, 40, 40))
    rgb = decode_rgb(render(RenderSpec("ref2v", "x", 1, W, H, 1.0, images=(png((30, 200, 30)),), videos=(vid,))))
    first = middle(rgb[5])[:, : W // 3].reshape(-1, 3).mean(0)
    second = middle(rgb[25]).reshape(-1, 3).mean(0)
    assert first[0] > 150 and first[1] < 100  # Video 1 (red)
    assert np.allclose(second, (30, 200, 30), atol=15)  # Image 1 (green)


def test_edit_black_and_white_zeroes_chroma(clip: bytes) -> None:
    # With a (yellow) reference image too: its thumbnail must be grey as well.
    frames = decode_yuv(
        render(
            RenderSpec("edit", "Make it black and white", 1, W, H, 1.0, videos=(clip,), images=(png((250, 250, 0)),))
        )
    )
    for _, u, v in frames[::7]:
        assert np.abs(u.astype(int) - 128).max() <= 3
        assert np.abs(v.astype(int) - 128).max() <= 3
    # The clip itself is strongly coloured, so this is the edit at work.
    _, u0, _ = decode_yuv(clip)[0]
    assert np.abs(u0.astype(int) - 128).max() > 40


def test_edit_mirror_flips_the_input(clip: bytes) -> None:
    src = decode_yuv(clip)
    out = decode_yuv(render(RenderSpec("edit", "mirror the video", 1, W, H, 1.0, videos=(clip,))))
    k = 10  # same length in and out, so frame k maps to frame k
    a, b = middle(src[k][0]).astype(int), middle(out[k][0]).astype(int)
    assert np.abs(b - a[:, ::-1]).mean() < 6
    assert np.abs(b - a).mean() > 20


def test_edit_luma_effects(clip: bytes) -> None:
    def mean_y(prompt: str) -> float:
        return float(
            np.mean(
                [
                    middle(y).mean()
                    for y, _, _ in decode_yuv(render(RenderSpec("edit", prompt, 1, W, H, 0.3, videos=(clip,))))
                ]
            )
        )

    plain = mean_y("add a hat")
    assert mean_y("make it brighter") > plain + 15
    assert mean_y("make it dark") < plain - 15
    assert abs(mean_y("invert the colors") - (251 - plain)) < 10


def test_edit_blur_and_slow(clip: bytes) -> None:
    def stripe_sharpness(frames: list) -> float:
        y = middle(frames[0][0]).astype(int)
        return float(np.abs(np.diff(y, axis=1)).max())

    plain = decode_yuv(render(RenderSpec("edit", "keep", 1, W, H, 1.0, videos=(clip,))))
    blurred = decode_yuv(render(RenderSpec("edit", "blur it", 1, W, H, 1.0, videos=(clip,))))
    assert stripe_sharpness(blurred) < stripe_sharpness(plain) * 0.6
    slow = decode_yuv(render(RenderSpec("edit", "slow motion", 1, W, H, 1.0, videos=(clip,))))
    # Half speed: output frame 2k shows input frame k, i.e. plain frame k.
    assert np.abs(middle(slow[20][0]).astype(int) - middle(plain[10][0]).astype(int)).mean() < 4


def test_extend_plays_clip_then_continues(clip: bytes) -> None:
    data = render(RenderSpec("extend", "go on", 1, W, H, 2.0, videos=(clip,)))
    assert probe(data)["frames"] == 60
    src, out = decode_yuv(clip), decode_yuv(data)
    assert np.abs(middle(out[5][0]).astype(int) - middle(src[5][0]).astype(int)).mean() < 4
    tail = [middle(y).astype(int) for y, _, _ in out[45:]]
    assert np.abs(tail[0] - middle(src[-1][0]).astype(int)).mean() > 10
    assert np.abs(tail[0] - tail[-1]).mean() > 1  # the continuation moves


# --------------------------------------------------------------------------- robustness


@pytest.mark.parametrize("mode", MODES)
def test_undecodable_inputs_do_not_crash(mode: str) -> None:
    junk = b"\x00\x01 definitely not media " * 7
    spec = RenderSpec(mode, "junk in", 3, W, H, 0.5, images=(junk, junk), videos=(junk,))
    data = render(spec)
    assert probe(data)["frames"] == 15
    assert render(spec) == data  # the placeholder is deterministic too


def test_placeholder_depends_on_the_bad_bytes() -> None:
    a = render(RenderSpec("i2v", "x", 1, W, H, 0.2, images=(b"junk-a",)))
    b = render(RenderSpec("i2v", "x", 1, W, H, 0.2, images=(b"junk-b",)))
    assert a != b


def test_missing_inputs_do_not_crash() -> None:
    for mode in MODES:
        assert probe(render(RenderSpec(mode, "", 0, W, H, 0.2)))["frames"] == 6


def test_probe_rejects_garbage(clip: bytes) -> None:
    for bad in (b"", b"garbage" * 100, png((1, 2, 3)), clip[: len(clip) // 3]):
        with pytest.raises(ValueError):
            probe(bad)
    assert probe(clip)["frames"] == 30


# --------------------------------------------------------------------------- text layout
# Work is counted (characters handed to the font's measure), never timed: a 2,500-character
# prompt without spaces once took ~45 s because every candidate prefix was re-measured.


def _cjk(n: int) -> str:
    return "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(n))


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"calls": 0, "chars": 0}
    original = ImageFont.FreeTypeFont.getlength

    def counting(self: ImageFont.FreeTypeFont, text: str, *args: object, **kw: object) -> float:
        counts["calls"] += 1
        counts["chars"] += len(text)
        return original(self, text, *args, **kw)

    monkeypatch.setattr(ImageFont.FreeTypeFont, "getlength", counting)
    return counts


def test_wrap_work_grows_linearly(measured: dict[str, int]) -> None:
    font = R._font(16)
    work = {}
    for n in (1000, 2000, 4000):
        measured.update(calls=0, chars=0)
        lines = R._wrap(_cjk(n), font, 300, max_lines=10**6)  # no early stop: all text laid out
        work[n] = dict(measured)
        assert "".join(lines) == _cjk(n)  # nothing lost or reordered
        assert all(font.getlength(line) <= 300 for line in lines)
    for key in ("calls", "chars"):
        assert work[2000][key] <= 2.2 * work[1000][key], work
        assert work[4000][key] <= 4.4 * work[1000][key], work


def test_long_prompt_layout_stops_when_the_banner_is_full(measured: dict[str, int]) -> None:
    work = []
    for n in (2500, 5000, 50_000):
        measured.update(calls=0, chars=0)
        data = render(RenderSpec("t2v", _cjk(n), 1, W, H, 0.2))
        assert probe(data)["frames"] == 6
        work.append(dict(measured))
    # Each prompt starts with the same characters and overflows the banner, so the layout (and
    # all its measuring) is the same whatever the length.
    assert work[0] == work[1] == work[2]
    assert work[0]["chars"] < 20_000


def test_long_text_is_cut_with_an_ellipsis() -> None:
    font = R._font(12)
    for text in (_cjk(5000), "word " * 3000, "x" * 100_000):
        lines = R._wrap(text, font, 200, max_lines=2)
        assert len(lines) == 2 and lines[-1].endswith("...")
        assert all(font.getlength(line) <= 200 for line in lines)


def test_fonts_are_per_thread_not_locked() -> None:
    # FreeType faces are not thread-safe; each render thread measures with its own copy instead
    # of queueing behind one process-wide lock.
    seen: list[object] = []
    t = threading.Thread(target=lambda: seen.append(R._font(20)))
    t.start()
    t.join()
    assert R._font(20) is R._font(20)
    assert seen[0] is not R._font(20)
    assert not hasattr(R, "_FONT_LOCK")


def test_long_prompts_render_alike_in_parallel() -> None:
    specs = [RenderSpec("t2v", _cjk(3000 + k), k, W, H, 0.2) for k in range(3)]
    assert _render_in_threads(specs) == [render(s) for s in specs]
