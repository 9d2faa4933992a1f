"""The MP4 file: H.264 encoding with PyAV (pinned x264 threads, no wall-clock metadata), moving
`moov` to the front, and probing a file back."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import av
import numpy as np

from .spec import RenderSpec

# x264 output is bit-exact for a *fixed* thread count (it is only non-deterministic
# with --non-deterministic), so pin it rather than letting it follow the core count.
# Two threads measured ~25-35% faster than one on the 2-core target, even with frame
# synthesis running concurrently in the producer thread.
X264_THREADS = 2
CRF = 28


def _faststart(data: bytes) -> bytes:
    """Move ``moov`` in front of ``mdat`` (what ``-movflags +faststart`` does).

    FFmpeg's own faststart re-opens the output file, which fails for in-memory
    output, so we relocate the box here and shift the chunk offsets (stco/co64)."""

    def boxes(buf: bytes | bytearray, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
        found = []
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack_from(">I4s", buf, pos)
            hdr = 8
            if size == 1:
                if pos + 16 > end:
                    raise ValueError("truncated box")
                size = struct.unpack_from(">Q", buf, pos + 8)[0]
                hdr = 16
            elif size == 0:
                size = end - pos
            if size < hdr or pos + size > end:
                raise ValueError("bad box size")
            found.append((kind, pos, hdr, size))
            pos += size
        return found

    def patch(buf: bytearray, start: int, end: int, shift: int) -> None:
        for kind, pos, hdr, size in boxes(buf, start, end):
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                patch(buf, pos + hdr, pos + size, shift)
            elif kind in (b"stco", b"co64"):
                count = struct.unpack_from(">I", buf, pos + hdr + 4)[0]
                dt = np.dtype(">u4" if kind == b"stco" else ">u8")
                off = pos + hdr + 8
                arr = np.frombuffer(bytes(buf[off : off + count * dt.itemsize]), dt)
                new = arr.astype(np.uint64) + shift
                if kind == b"stco" and count and int(new.max()) >= 2**32:
                    raise ValueError("stco overflow")
                buf[off : off + count * dt.itemsize] = new.astype(dt).tobytes()

    try:
        top = boxes(data, 0, len(data))
        moov = next(b for b in top if b[0] == b"moov")
        mdat = next(b for b in top if b[0] == b"mdat")
        if moov[1] < mdat[1]:
            return data
        mv = bytearray(data[moov[1] : moov[1] + moov[3]])
        patch(mv, 0, len(mv), len(mv))
    except (ValueError, StopIteration, struct.error):
        return data
    # Right after ftyp, like FFmpeg (so the result matches its +faststart byte for byte).
    at = top[0][1] + top[0][3] if top[0][0] == b"ftyp" else mdat[1]
    return b"".join((data[:at], bytes(mv), data[at : moov[1]], data[moov[1] + moov[3] :]))


def encode(spec: RenderSpec, n: int, produce: Iterator[av.VideoFrame]) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": str(CRF), "threads": str(X264_THREADS)}
        for frame in produce:
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return _faststart(buf.getvalue())


def probe(data: bytes) -> dict:
    """Describe an MP4: {"width","height","fps","frames","duration","codec"}.

    Raises ValueError when the data is not a playable video (one frame must decode)."""
    if not data:
        raise ValueError("empty video data")
    try:
        with av.open(io.BytesIO(bytes(data)), "r") as c:
            if not c.streams.video:
                raise ValueError("no video stream")
            fmt = c.format.name
            if fmt == "image2" or fmt.endswith("_pipe"):
                # FFmpeg happily "plays" a PNG/JPEG as a one-frame stream; a still
                # image is not an acceptable video for the simulator.
                raise ValueError(f"not a video: still image ({fmt})")
            vs = c.streams.video[0]
            fps = float(vs.average_rate or vs.guessed_rate or 0)
            frames = int(vs.frames or 0)
            if frames <= 0:
                frames = sum(1 for pkt in c.demux(vs) if pkt.size)
                c.seek(0)
            if vs.duration and vs.time_base:
                duration = float(vs.duration * vs.time_base)
            elif c.duration:
                duration = c.duration / 1_000_000
            else:
                duration = frames / fps if fps else 0.0
            first = next(c.decode(vs))
            return {
                "width": int(first.width),
                "height": int(first.height),
                "fps": fps,
                "frames": frames,
                "duration": duration,
                "codec": vs.codec_context.name,
            }
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any demux/decode failure = unplayable
        raise ValueError(f"unplayable video: {exc}") from exc
