"""`measure(path)`: signal-level quality figures of one video, on the CPU, in one decoding pass.

Every frame is decoded (PyAV, frame threads) and its luma shrunk to the analysis size (long side 320 px);
frozen frames and flicker are computed on every consecutive pair, motion (DIS optical flow) on 30 pairs,
sharpness and exposure on 16 frames. See `FIGURES` and docs/QUALITY.md for what each figure means."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ._about import FIGURES, QUALITY_COLUMNS
from ._decode import Facts, luma_frames, open_video

if TYPE_CHECKING:
    from PIL.Image import Image

ImageLike = Union[str, os.PathLike, bytes, "Image", None]
Value = float | int | bool | str | None

EXPECT_KEYS = ("width", "height", "fps", "duration")
FPS_TOLERANCE = 0.005  # relative: 29.97 conforms to 30, 25 does not conform to 24
DURATION_SLACK = 0.001  # seconds on top of one frame period, for rounding in the container


def measure(
    path: str | os.PathLike,
    first: ImageLike = None,
    last: ImageLike = None,
    *,
    expect: Mapping[str, float] | None = None,
) -> dict[str, Value]:
    """Quality figures and delivered facts of the video at `path` (see `FIGURES` for every key).

    `first` / `last`: the image the video should open / close on (a path, encoded bytes or a PIL image),
    compared by SSIM with the first / last decoded frame; `first_ssim` / `last_ssim` are None without one.
    `expect`: what was asked for (any of width, height, fps, duration); `conforms` / `conformance` are None
    without it. ValueError naming the file when it is missing or not a decodable video (or an image does not
    decode, or `expect` has an unknown key)."""
    from ._figures import Pass

    wanted = _expectation(expect)
    container, stream, facts = open_video(path)
    try:
        run = Pass(facts)
        for y, table in luma_frames(container, stream, path):
            run.add(y, table)
    finally:
        container.close()
    if run.n == 0:
        raise ValueError(f"{os.fspath(path)!s}: no decodable video frames")
    frames = run.n
    fps = facts.fps
    duration = facts.duration or (frames / fps if fps else 0.0)
    result: dict[str, Value] = {
        "width": facts.width,
        "height": facts.height,
        "fps": round(fps, 3),
        "frames": frames,
        "duration": round(duration, 3),
    }
    for key, value in run.figures().items():
        result[key] = _sig(value)
    assert run.first is not None and run.prev is not None
    result["first_ssim"] = _sig(_ssim(first, run.first, "first")) if first is not None else None
    result["last_ssim"] = _sig(_ssim(last, run.prev, "last")) if last is not None else None
    delivered = Facts(facts.width, facts.height, fps, frames, duration)
    result["conforms"], result["conformance"] = _conformance(delivered, wanted)
    missing = set(FIGURES) - set(result)
    assert not missing, missing
    return {key: result[key] for key in FIGURES}


def _sig(value: Any) -> Any:
    """Floats to 6 significant digits (the log's columns stay readable); other values unchanged."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.6g}")
    return value


def load_luma(image: ImageLike, size: tuple[int, int], what: str = "image") -> np.ndarray:
    """An image cover-fitted to size = (w, h) — centre-cropped to the aspect ratio, then resized, as the hosts
    fit a first/last frame to the output — as full-range luma (ITU-R 601 weights, PIL's "L")."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(image, Image.Image):
        img = image
    else:
        try:
            if isinstance(image, (bytes, bytearray)):
                img = Image.open(io.BytesIO(image))
            elif isinstance(image, (str, os.PathLike)):
                img = Image.open(os.fspath(image))
            else:
                raise TypeError(f"{what}: expected a path, bytes or a PIL image, got {type(image).__name__}")
            img.load()
        except FileNotFoundError:
            raise ValueError(f"{what} image {os.fspath(image)!s}: no such file") from None  # type: ignore[arg-type]
        except (OSError, UnidentifiedImageError) as exc:
            name = os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"of {len(image or b'')} bytes"
            raise ValueError(f"{what} image {name!s} does not decode: {exc}") from None
    img = ImageOps.exif_transpose(img).convert("RGB").convert("L")
    fitted = ImageOps.fit(img, size, method=Image.Resampling.BILINEAR, centering=(0.5, 0.5))
    return np.asarray(fitted, dtype=np.uint8)


def _ssim(image: ImageLike, frame: np.ndarray, what: str) -> float:
    from skimage.metrics import structural_similarity

    ref = load_luma(image, (frame.shape[1], frame.shape[0]), what)
    # Wang et al. (2004): 11×11 Gaussian window σ = 1.5, population covariance, K1 = 0.01, K2 = 0.03
    return float(
        structural_similarity(ref, frame, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    )


def _expectation(expect: Mapping[str, float] | None) -> dict[str, float] | None:
    if expect is None:
        return None
    unknown = sorted(set(expect) - set(EXPECT_KEYS))
    if unknown:
        raise ValueError(f"expect: unknown key(s) {unknown}; known: {list(EXPECT_KEYS)}")
    wanted = {k: float(v) for k, v in expect.items() if v is not None}
    return wanted or None


def _num(x: float, asked: float) -> str:
    """x with 2 decimals, or as many more (up to 4) as it takes not to print the asked value."""
    for places in (2, 3, 4):
        if round(x, places) != round(asked, places):
            break
    return f"{round(x, places):g}"


def _conformance(got: Facts, wanted: dict[str, float] | None) -> tuple[bool | None, str | None]:
    """(conforms, phrases): sizes exact, fps within 0.5 %, duration within one frame period (+1 ms)."""
    if wanted is None:
        return None, None
    phrases = []
    w, h = wanted.get("width"), wanted.get("height")
    if w is not None and h is not None:
        if (got.width, got.height) != (w, h):
            phrases.append(f"{got.width}x{got.height}, asked {w:g}x{h:g}")
    elif w is not None and got.width != w:
        phrases.append(f"width {got.width}, asked {w:g}")
    elif h is not None and got.height != h:
        phrases.append(f"height {got.height}, asked {h:g}")
    fps = wanted.get("fps")
    if fps is not None and abs(got.fps - fps) > FPS_TOLERANCE * fps:
        phrases.append(f"{_num(got.fps, fps)} fps, asked {fps:g} fps")
    duration = wanted.get("duration")
    if duration is not None:
        frame = 1.0 / got.fps if got.fps else 0.0
        if abs(got.duration - duration) > frame + DURATION_SLACK:
            phrases.append(f"{_num(got.duration, duration)} s, asked {duration:g} s")
    return not phrases, "; ".join(phrases)


__all__ = ["FIGURES", "QUALITY_COLUMNS", "measure"]
