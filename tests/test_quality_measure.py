"""wanlab.quality.measure on small clips made here (PyAV + numpy, not the sim's output), each with one
known defect at growing strengths: every figure must move the right way, and clean clips must score clean."""

from __future__ import annotations

import io
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from wanlab.quality import FIGURES, QUALITY_COLUMNS, measure

W, H, FPS = 320, 192, 30  # long side 320: the analysis size is the clip's own size
N = 45  # 1.5 s

KEYS = (
    "width",
    "height",
    "fps",
    "frames",
    "duration",
    "sampled",
    "flicker",
    "frozen",
    "motion",
    "sharpness",
    "exposure",
    "exposure_black",
    "exposure_white",
    "first_ssim",
    "last_ssim",
    "conforms",
    "conformance",
)


def texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth blobs (8 px) plus fine grain: something optical flow and the Laplacian can see."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 8 + 2, width // 8 + 2)) * 180 + 38
    img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(img + rng.normal(0, 12, (height, width)), 0, 255).astype(np.float32)


def moving(speed: int = 1, n: int = N, seed: int = 0) -> list[np.ndarray]:
    """The texture panning left by `speed` whole pixels per frame."""
    tex = texture(W + speed * n + 8, H, seed)
    return [tex[:, i * speed : i * speed + W] for i in range(n)]


def write(path: Path, frames: list[np.ndarray], fps: int = FPS, crf: int = 10) -> Path:
    """Gray float frames → an H.264 MP4 (ultrafast: no B-frames, whose fades flicker by themselves)."""
    h, w = frames[0].shape
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": str(crf)}
        for f in frames:
            g = np.clip(np.round(f), 0, 255).astype(np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.repeat(g[..., None], 3, axis=2), format="rgb24")))
        c.mux(s.encode(None))
    return path


def u8(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.round(frame), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quality")


@pytest.fixture(scope="module")
def clean(folder) -> tuple[Path, dict]:
    path = write(folder / "clean.mp4", moving(1))
    return path, measure(path)


def increasing(xs: list[float]) -> bool:
    return all(a < b for a, b in pairwise(xs))


def test_every_key_present_and_clean_clip_scores_clean(clean):
    _, r = clean
    assert tuple(r) == KEYS and set(FIGURES) == set(KEYS)
    assert set(QUALITY_COLUMNS) <= set(KEYS) and "measure_s" not in r
    assert (r["width"], r["height"], r["fps"], r["frames"], r["sampled"]) == (W, H, 30.0, N, N)
    assert r["duration"] == pytest.approx(N / FPS, abs=1e-3)
    assert r["flicker"] < 0.05 and r["frozen"] == 0.0 and r["exposure"] < 0.01
    assert r["motion"] == pytest.approx(1.0, rel=0.15)
    assert r["first_ssim"] is None and r["last_ssim"] is None
    assert r["conforms"] is None and r["conformance"] is None
    for key in KEYS:  # flat scalars only: they become log columns
        assert r[key] is None or isinstance(r[key], (int, float, bool, str)), key


def test_flicker_grows_with_per_frame_brightness_jitter_and_ignores_a_fade(folder, clean):
    base = moving(1, n=60)
    rng = np.random.default_rng(1)
    unit = rng.normal(0, 1, len(base))
    unit = (unit - unit.mean()) / unit.std()  # exactly σ = 1, so amplitude a gives σ = a
    got = []
    for a in (1, 2, 4, 8):
        frames = [f + a * o for f, o in zip(base, unit, strict=True)]
        got.append(measure(write(folder / f"flicker{a}.mp4", frames))["flicker"])
    assert increasing([clean[1]["flicker"], *got]), got
    assert got[-1] == pytest.approx(8, rel=0.25) and got[-2] == pytest.approx(4, rel=0.3)  # ≈ σ in luma levels
    # a smooth fade (the picture darkens by 40 %, ~1.4 levels a frame) is not flicker, nor is a fade-up
    fade = measure(write(folder / "fade.mp4", [f * (1 - 0.4 * i / 59) for i, f in enumerate(base)]))
    up = measure(write(folder / "fadeup.mp4", [f + 40 * i / 59 for i, f in enumerate(base)]))
    assert fade["flicker"] < 0.15 and up["flicker"] < 0.15 and got[0] > 2 * max(fade["flicker"], up["flicker"])
    # nor is fast motion
    fast = measure(write(folder / "fast.mp4", moving(4)))
    assert fast["flicker"] < 0.15


def test_frozen_counts_repeated_frames(folder, clean):
    base = moving(1)
    got = []
    for k in (5, 10, 20):
        frames = base[:10] + [base[10]] * k + base[10 : N - k]  # frame 10 shown k + 1 times, n unchanged
        got.append(measure(write(folder / f"frozen{k}.mp4", frames))["frozen"])
        assert got[-1] == pytest.approx(k / (N - 1), abs=0.5 / N), (k, got)
    assert increasing([clean[1]["frozen"], *got])
    still = measure(write(folder / "still.mp4", [base[0]] * N))
    assert still["frozen"] > 0.95 and still["motion"] < 0.05


def test_frozen_sees_repeats_the_encoder_keeps_refining_and_not_a_small_moving_object(folder):
    import cv2

    # a sub-pixel pan of grainy texture at crf 23: x264 codes frame 20 roughly, then refines each repeat
    # (differences of up to ~2.7 levels) — still 10 repeats, since none of that difference is motion
    tex = texture(W + 80, H, seed=3)
    xs = np.cumsum(np.r_[0.0, np.full(N - 1, 1.37)])
    xs[21:31] = xs[20]
    shift = [cv2.warpAffine(tex, np.float32([[1, 0, -x], [0, 1, 0]]), (W, H), flags=cv2.INTER_LINEAR) for x in xs]
    assert measure(write(folder / "refined.mp4", shift, crf=23))["frozen"] == pytest.approx(10 / (N - 1), abs=1e-3)
    # a still background with one small soft blob (16 px, 0.4 % of the picture) moving 1 px a frame: not frozen
    bg = texture(W, H, seed=4)
    blob = cv2.GaussianBlur(np.pad(np.full((16, 16), 150.0), 8), (0, 0), 2) + 60
    frames = []
    for i in range(N):
        f = bg.copy()
        x = 12 + i
        f[72:104, x : x + 32] = np.maximum(f[72:104, x : x + 32], blob)
        frames.append(f)
    assert measure(write(folder / "blob.mp4", frames))["frozen"] == 0.0


def test_motion_is_proportional_to_speed(folder):
    got = [measure(write(folder / f"speed{v}.mp4", moving(v)))["motion"] for v in (0, 1, 2, 4)]
    assert increasing(got), got
    assert got[0] < 0.05
    for v, m in zip((1, 2, 4), got[1:], strict=True):
        assert m == pytest.approx(v, rel=0.15), got  # px per frame at the analysis size (= clip size here)


def test_motion_is_in_analysis_pixels_whatever_the_resolution(folder):
    # the same pan at twice the resolution (2 px/frame at 640 wide) reads as 1 px/frame at 320
    import cv2

    big = [cv2.resize(f, (2 * W, 2 * H), interpolation=cv2.INTER_LINEAR) for f in moving(1, n=20)]
    r = measure(write(folder / "big.mp4", big))
    assert (r["width"], r["height"]) == (2 * W, 2 * H)
    assert r["motion"] == pytest.approx(1.0, rel=0.15)


def test_sharpness_falls_with_blur(folder, clean):
    import cv2

    base = moving(1, n=15)
    got = [measure(write(folder / "sharp15.mp4", base))["sharpness"]]
    for sigma in (0.7, 1.5, 3.0):
        frames = [cv2.GaussianBlur(f, (0, 0), sigma) for f in base]
        got.append(measure(write(folder / f"blur{sigma}.mp4", frames))["sharpness"])
    assert increasing(got[::-1]), got
    assert got[-1] < got[0] / 5


def test_exposure_counts_clipped_pixels(folder, clean):
    base = moving(1, n=15)
    got = []
    for rows in (12, 48, 96):  # a black band on top and a white band at the bottom, `rows` each
        frames = []
        for f in base:
            f = f.copy()
            f[:rows] = 0
            f[-rows:] = 255
            frames.append(f)
        r = measure(write(folder / f"clip{rows}.mp4", frames))
        got.append(r["exposure"])
        assert r["exposure_black"] == pytest.approx(rows / H, abs=0.02)
        assert r["exposure_white"] == pytest.approx(rows / H, abs=0.02)
        assert r["exposure"] == pytest.approx(r["exposure_black"] + r["exposure_white"], abs=1e-5)
    assert increasing([clean[1]["exposure"], *got]), got
    assert got[-1] == pytest.approx(1.0, abs=0.03)


def test_first_and_last_ssim(folder, clean):
    path, _ = clean
    frames = moving(1)
    first, last = frames[0], frames[-1]
    r = measure(path, u8(first), u8(last))
    assert r["first_ssim"] > 0.9 and r["last_ssim"] > 0.9
    # the same picture as bytes and as a path, at twice the size: the host's fit is a resize
    png = io.BytesIO()
    u8(first).resize((2 * W, 2 * H), Image.Resampling.BICUBIC).save(png, "PNG")
    (folder / "first.png").write_bytes(png.getvalue())
    assert measure(path, png.getvalue())["first_ssim"] > 0.85
    assert measure(path, folder / "first.png")["first_ssim"] > 0.85
    # a 4:3 picture whose centre is the frame: cover-fitting crops the (noise) margins away
    rng = np.random.default_rng(5)
    wide = rng.integers(0, 256, (H + 48, W, 3), dtype=np.uint8)
    wide[24 : 24 + H] = np.asarray(u8(first))[..., None]
    wide_w = (H + 48) * 4 // 3
    canvas = rng.integers(0, 256, (H + 48, wide_w, 3), dtype=np.uint8)
    x0 = (wide_w - W) // 2
    canvas[:, x0 : x0 + W] = wide
    fitted = measure(path, Image.fromarray(canvas))["first_ssim"]
    assert fitted > 0.8 and r["last_ssim"] is not None
    # the first image perturbed more and more: noise of growing σ
    got = [r["first_ssim"]]
    for sigma in (10, 30, 80):
        noisy = first + np.random.default_rng(sigma).normal(0, sigma, first.shape)
        got.append(measure(path, u8(noisy))["first_ssim"])
    assert increasing(got[::-1]), got
    # last only: first stays None; the last frame is not the first
    only_last = measure(path, None, u8(last))
    assert only_last["first_ssim"] is None and only_last["last_ssim"] == pytest.approx(r["last_ssim"], abs=1e-6)
    assert measure(path, None, u8(first))["last_ssim"] < r["last_ssim"] - 0.2


def test_conformance(clean):
    path, _ = clean
    ok = measure(path, expect={"width": W, "height": H, "fps": 30, "duration": 1.5})
    assert ok["conforms"] is True and ok["conformance"] == ""
    # one frame of slack on the duration (a 1.5 s clip asked as 1.53 s), and fps within 0.5 % (29.97 ≈ 30)
    assert measure(path, expect={"duration": 1.53, "fps": 29.97})["conforms"] is True
    bad = measure(path, expect={"width": 1280, "height": 720, "duration": 5})
    assert bad["conforms"] is False
    assert bad["conformance"] == "320x192, asked 1280x720; 1.5 s, asked 5 s"
    assert measure(path, expect={"fps": 24})["conformance"] == "30 fps, asked 24 fps"
    assert measure(path, expect={"width": 322})["conformance"] == "width 320, asked 322"
    assert measure(path, expect={"duration": 1.6})["conformance"] == "1.5 s, asked 1.6 s"
    assert measure(path, expect={})["conforms"] is None  # nothing to check
    assert measure(str(path), expect={"width": W, "height": None})["conforms"] is True  # None: not asked
    with pytest.raises(ValueError, match="resolution"):
        measure(path, expect={"resolution": 720})


def test_bad_inputs_raise_clear_errors(folder, clean):
    missing = folder / "nope.mp4"
    with pytest.raises(ValueError, match="nope.mp4: no such file"):
        measure(missing)
    text = folder / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    with pytest.raises(ValueError, match="notes.mp4"):
        measure(text)
    png = folder / "still.png"
    u8(moving(0, n=1)[0]).save(png)
    with pytest.raises(ValueError, match="still.png: is a still image"):
        measure(png)
    path, _ = clean
    with pytest.raises(ValueError, match="first image .*does not decode"):
        measure(path, b"definitely not an image")
    with pytest.raises(ValueError, match="last image .*no such file"):
        measure(path, None, folder / "gone.png")


def test_import_loads_neither_opencv_nor_scikit_image():
    code = "import sys, wanlab.quality; print('cv2' in sys.modules, 'skimage' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]
