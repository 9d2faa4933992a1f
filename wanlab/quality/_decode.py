"""Decoding for `measure`: the stream's facts, and every frame's luma as full-range 8-bit gray, taken
straight from the decoded Y plane (no colour conversion) and shrunk with OpenCV's area filter.

PyAV's `frame.reformat(width=…, format="gray")` would do the same job through swscale, but on this
2-core machine it costs ~1.5 ms per 720P frame (more than decoding it); viewing the Y plane and halving
it with `cv2.resize(INTER_AREA)` (which has a fast path for exact 2× steps) costs ~0.1 ms."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

ANALYSIS_SIDE = 320  # long side of the analysis size: frozen, flicker, motion, SSIM
DETAIL_SIDE = 640  # long side of the detail size: sharpness

# 8-bit planar formats whose first plane is the luma (Y') plane, usable as is.
_Y_PLANE_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p", "nv12", "nv21"}
)
_FULL_RANGE_FORMATS = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p"})
_AVCOL_RANGE_JPEG = 2  # AVColorRange: 0 unspecified, 1 MPEG (limited 16–235), 2 JPEG (full 0–255)

IDENTITY = np.arange(256, dtype=np.uint8)
# limited-range Y' (16 = black, 235 = white) to full range, clipped: footroom/headroom values clip to 0/255
LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Facts:
    width: int
    height: int
    fps: float
    frames: int  # from the container's index; 0 when it does not say
    duration: float  # seconds; 0.0 when the container does not say


def fit_side(width: int, height: int, side: int) -> tuple[int, int]:
    """(w, h) with the long side `side` and the aspect ratio of width × height (each at least 1)."""
    if width >= height:
        return side, max(1, round(side * height / width))
    return max(1, round(side * width / height)), side


def shrink(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 gray image to size = (w, h): exact halvings first (OpenCV's fast area path), then
    one area (down) or bilinear (up) step. Area averaging of area averages is the area average."""
    import cv2

    w, h = size
    while gray.shape[1] >= 2 * w and gray.shape[0] >= 2 * h:
        gray = cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if gray.shape[:2] != (h, w):
        down = gray.shape[1] >= w and gray.shape[0] >= h
        gray = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)
    return np.ascontiguousarray(gray)


def _fail(path: str | os.PathLike, what: str) -> ValueError:
    return ValueError(f"{os.fspath(path)!s}: {what}")


def open_video(path: str | os.PathLike) -> tuple[Any, Any, Facts]:
    """(container, stream, facts) of the first video stream; ValueError naming the path when the file is
    missing or holds no video. The caller closes the container."""
    import av

    if not os.path.isfile(path):
        raise _fail(path, "no such file")
    try:
        container = av.open(os.fspath(path), "r")
    except (av.error.FFmpegError, OSError) as exc:
        raise _fail(path, f"does not open as a video ({exc})") from None
    try:
        fmt = container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):  # png_pipe, jpeg_pipe, webp_pipe …: a still picture
            raise _fail(path, f"is a still image ({fmt}), not a video")
        if not container.streams.video:
            raise _fail(path, "has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        cc = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = float(container.duration) / 1e6
        else:
            duration = 0.0
        facts = Facts(int(cc.width), int(cc.height), fps, int(stream.frames or 0), duration)
        if facts.width <= 0 or facts.height <= 0:
            raise _fail(path, "video stream has no frame size")
    except BaseException:
        container.close()
        raise
    return container, stream, facts


def luma_frames(container: Any, stream: Any, path: str | os.PathLike) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(y, table) for every decoded frame: its luma at full resolution as a uint8 array (a view, valid until
    the next frame is decoded) and the 256-entry table that maps it to full range (0 = black, 255 = white).
    The table is applied after shrinking (`to_full`), where it is cheap. ValueError naming the path when
    decoding fails."""
    import av

    i = 0
    try:
        for frame in container.decode(stream):
            name = frame.format.name
            if name in _Y_PLANE_FORMATS:
                plane = frame.planes[0]
                y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
                full = name in _FULL_RANGE_FORMATS or frame.color_range == _AVCOL_RANGE_JPEG
                yield y, (IDENTITY if full else LIMITED_TO_FULL)
            else:  # 10-bit, RGB, … : swscale's gray is full range
                yield frame.reformat(format="gray").to_ndarray(), IDENTITY
            i += 1
    except av.error.FFmpegError as exc:
        raise _fail(path, f"frame {i + 1} does not decode ({exc})") from None


def to_full(gray: np.ndarray, table: np.ndarray) -> np.ndarray:
    """`gray` mapped through a `luma_frames` table (a no-op for full-range video)."""
    import cv2

    return gray if table is IDENTITY else cv2.LUT(gray, table)
