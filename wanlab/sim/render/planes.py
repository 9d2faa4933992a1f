"""yuv420p pictures as numpy planes: the encoder frame's own buffers, RGB -> YUV conversion, and the
oversized canvas that motion crops from."""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


def even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def smooth(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def frame_planes(frame: av.VideoFrame) -> Planes:
    """Writable numpy views of a yuv420p frame's planes, padding cut off."""
    w, h = frame.width, frame.height
    views = []
    for k, plane in enumerate(frame.planes):
        pw, ph = (w, h) if k == 0 else ((w + 1) // 2, (h + 1) // 2)
        # VideoPlane has the buffer protocol (av's stub declares __buffer__), but numpy's stubs for
        # Python 3.11 accept only concrete buffer types.
        buf = np.frombuffer(plane, np.uint8)  # type: ignore[call-overload]
        views.append(buf.reshape(-1, plane.line_size)[:ph, :pw])
    return views[0], views[1], views[2]


def copy_planes(dst: Planes, src: Planes) -> None:
    for d, s in zip(dst, src, strict=True):
        np.copyto(d, s)


def planes_rgb(planes: Planes) -> np.ndarray:
    """The RGB picture of yuv420p planes, at their size (the inverse of rgb_to_yuv)."""
    h, w = planes[0].shape
    frame = av.VideoFrame(w, h, "yuv420p")
    copy_planes(frame_planes(frame), planes)
    return frame.to_ndarray(format="rgb24")


def rgb_to_yuv(rgb: np.ndarray, width: int, height: int, reformatter: VideoReformatter | None = None) -> Planes:
    """Scale an RGB array to (width, height) and convert to yuv420p in one swscale pass."""
    src = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    fmt = reformatter or VideoReformatter()
    out = fmt.reformat(src, width=width, height=height, format="yuv420p", interpolation="BICUBIC")
    y, u, v = frame_planes(out)
    return y.copy(), u.copy(), v.copy()


class Canvas:
    """A yuv420p picture at least as large as the output; motion = moving crop window."""

    def __init__(self, planes: Planes) -> None:
        self.y, self.u, self.v = planes
        self.h, self.w = self.y.shape

    def crop(self, ox: int, oy: int, width: int, height: int) -> Planes:
        # Even offsets keep the half-resolution chroma window aligned with luma.
        ox = min(max(0, ox - ox % 2), self.w - width)
        oy = min(max(0, oy - oy % 2), self.h - height)
        cx, cy = ox // 2, oy // 2
        return (
            self.y[oy : oy + height, ox : ox + width],
            self.u[cy : cy + height // 2, cx : cx + width // 2],
            self.v[cy : cy + height // 2, cx : cx + width // 2],
        )

    def pan(self, t: float, start: tuple[float, float], end: tuple[float, float], width: int, height: int) -> Planes:
        """Crop along a straight eased path; start/end are fractions of the free margin."""
        e = smooth(t)
        fx = start[0] + (end[0] - start[0]) * e
        fy = start[1] + (end[1] - start[1]) * e
        return self.crop(int(round(fx * (self.w - width))), int(round(fy * (self.h - height))), width, height)
