"""Reading MP4s on the client side, in one place: what is in a video (PyAV), for an input before it is
uploaded (`inputs.py`, from bytes) and for a download before it is kept (`probe_file`, from a path)."""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any


def probe(source: str | os.PathLike | bytes, *, complete: bool = False, decode: bool = True) -> dict[str, Any]:
    """Container `format` name, `width`, `height`, `fps`, `duration` (s) and `codec` of the first video
    stream of a file given as a path or as bytes; ValueError when it does not open as a video.

    `complete=True` also demuxes every packet (no decoding), adding `frames`: a cut file fails (packets missing
    against the index). Without it only the header is read — enough to check an input's size and length.
    Whether the frames decode is what `wanlab.quality.measure` finds out, after the run (a `quality_error` in
    its row).

    `decode=False` also stops FFmpeg's stream probe from decoding the first frames and reading packets, which it
    does for a pixel format and a decode delay nothing here reads (~70 % of a download check's CPU on a 720P
    clip): for the hosts' MP4s, whose headers hold everything read here. A user's input, of any container, is
    probed the usual way."""
    import av

    target = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        with av.open(target, "r", options=None if decode else _HEADER_ONLY) as container:
            stream = container.streams.video[0]
            cc = stream.codec_context
            fps = float(stream.average_rate) if stream.average_rate else 0.0
            info: dict[str, Any] = {
                "format": container.format.name,
                "width": cc.width,
                "height": cc.height,
                "fps": round(fps, 3),
                "codec": cc.name,
            }
            frames = None
            if complete:
                frames = _check_packets(container, stream, _size(source))
                info["frames"] = frames
            if container.duration:
                duration = float(container.duration) / 1e6
            elif stream.duration:
                assert stream.time_base is not None  # a demuxed stream always has one
                duration = float(stream.duration * stream.time_base)
            else:
                duration = frames / fps if frames and fps else 0.0
            info["duration"] = round(duration, 3)
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    return info


_HEADER_ONLY = {"skip_frame": "all", "probesize": "32", "analyzeduration": "0"}


def _size(source: str | os.PathLike | bytes) -> int:
    return len(source) if isinstance(source, (bytes, bytearray)) else os.path.getsize(source)


def _check_packets(container: Any, stream: Any, size: int) -> int:
    """The stream's frame count; ValueError when the file is cut. An MP4's index (its sample tables, read with
    the header) says where every packet lies: each must end inside the file. Stricter than demuxing every packet
    (which let a cut inside the last packet through) at about a fifth of its CPU; a container without an index
    in its header is demuxed."""
    index = stream.index_entries
    where = [(entry.pos, entry.size) for entry in index]
    if where and min(pos for pos, _ in where) >= 0:
        frames = len(where)
        end = max(pos + n for pos, n in where)
        if end > size:
            raise ValueError(f"the file ends at byte {size}, its index at byte {end}: the file is cut short")
    else:
        frames = sum(1 for packet in container.demux(stream) if packet.size)
    if stream.frames and frames < stream.frames:
        raise ValueError(f"{frames} of {stream.frames} frames present: the file is cut short")
    return frames


def probe_file(path: str | os.PathLike) -> dict[str, Any]:
    """Width, height, fps, frames, duration, codec and sha256 of a downloaded MP4; ValueError when it is
    not a complete MP4 (every packet the index lists must be present)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    info = probe(path, complete=True, decode=False)
    fmt = info.pop("format")
    if "mp4" not in fmt:
        raise ValueError(f"container is {fmt}, not MP4")
    if info["frames"] == 0:
        raise ValueError("no video frames")
    info["sha256"] = h.hexdigest()
    return info
