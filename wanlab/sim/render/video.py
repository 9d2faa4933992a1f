"""Input clips (edit, extend, ref2v reference videos) decoded lazily into output-size planes."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator

import av
from av.video.reformatter import VideoReformatter

from .planes import Planes, even, frame_planes


class VideoSource:
    """An input clip decoded lazily, frame by frame, into cover-fit output-size planes.

    Holding a decoded 1080P clip in memory would cost ~3 MB per frame, so frames are
    pulled from the decoder only as the output reaches them (indices are usually
    monotonic; going backwards re-opens the decoder)."""

    def __init__(self, data: bytes, width: int, height: int, blur: bool = False) -> None:
        self.data, self.w, self.h, self.blur = data, width, height, blur
        self.ok = False
        self.count = 0
        self.fps = 0.0
        self.src_size = (width, height)
        try:
            with av.open(io.BytesIO(data), "r") as c:
                vs = c.streams.video[0]
                self.fps = float(vs.average_rate or vs.guessed_rate or 0)
                count = vs.frames
                if count <= 0:
                    count = sum(1 for pkt in c.demux(vs) if pkt.size)
                    c.seek(0)
                first = next(c.decode(vs))
                self.src_size = (first.width, first.height)
                self.count = max(1, count)
                self.ok = first.width > 0 and first.height > 0
        except Exception:  # noqa: BLE001 - unplayable input -> placeholder
            self.ok = False
        if not self.fps or not math.isfinite(self.fps):
            self.fps = 30.0

    def _convert(self, frame: av.VideoFrame, fmt: VideoReformatter, up: VideoReformatter) -> Planes:
        sw, sh = self.src_size
        s = max(self.w / sw, self.h / sh)
        iw, ih = max(self.w, even(math.ceil(sw * s))), max(self.h, even(math.ceil(sh * s)))
        if self.blur:
            # Area-average down then bilinear up: a box blur done inside swscale,
            # far cheaper than numpy cumulative sums at 1080P.
            frame = fmt.reformat(
                frame, width=even(iw / 10), height=even(ih / 10), format="yuv420p", interpolation="AREA"
            )
            out = up.reformat(frame, width=iw, height=ih, format="yuv420p", interpolation="BILINEAR")
        else:
            out = fmt.reformat(frame, width=iw, height=ih, format="yuv420p", interpolation="BILINEAR")
        y, u, v = frame_planes(out)
        ox, oy = ((iw - self.w) // 4) * 2, ((ih - self.h) // 4) * 2
        # Copy: the next reformat may reuse `out`'s buffers, and callers (extend's
        # cross-fade) hold a frame across calls.
        return (
            y[oy : oy + self.h, ox : ox + self.w].copy(),
            u[oy // 2 : (oy + self.h) // 2, ox // 2 : (ox + self.w) // 2].copy(),
            v[oy // 2 : (oy + self.h) // 2, ox // 2 : (ox + self.w) // 2].copy(),
        )

    def frames(self, indices: Iterable[int]) -> Iterator[Planes]:
        """Yield planes for each requested source frame index; past the end (or after a
        decode error) the last good frame is repeated."""
        # One reformatter per direction so swscale contexts are reused across frames.
        fmt, up = VideoReformatter(), VideoReformatter()
        container = None
        decoder: Iterator[av.VideoFrame] | None = None
        cur = -1  # index of the most recently decoded frame
        raw: av.VideoFrame | None = None
        planes: Planes | None = None
        planes_idx = -2
        exhausted = False
        try:
            for j in indices:
                if decoder is None or j < cur:
                    if container is not None:
                        container.close()
                    container = av.open(io.BytesIO(self.data), "r")
                    vs = container.streams.video[0]
                    vs.thread_type = "AUTO"
                    decoder = container.decode(vs)
                    cur, planes_idx, exhausted = -1, -2, False
                while cur < j and not exhausted:
                    try:
                        raw = next(decoder)
                        cur += 1
                    except StopIteration:
                        exhausted = True
                    except Exception:  # noqa: BLE001 - corrupt tail: hold last frame
                        exhausted = True
                if raw is not None and planes_idx != cur:
                    planes = self._convert(raw, fmt, up)
                    planes_idx = cur
                if planes is None:
                    raise ValueError("no decodable frame")
                yield planes
        finally:
            if container is not None:
                container.close()
