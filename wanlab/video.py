"""Checking a downloaded video: is it a playable MP4, and what is in it (PyAV)."""
from __future__ import annotations

import hashlib
import os
from typing import Any


def probe_file(path: str | os.PathLike) -> dict[str, Any]:
    """Width, height, fps, frames, duration, codec and sha256 of an MP4; ValueError when it is not a
    complete, playable MP4 (every packet the index lists must be present, and the first frame decode)."""
    import av

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    try:
        with av.open(str(path)) as container:
            if "mp4" not in container.format.name:
                raise ValueError(f"container is {container.format.name}, not MP4")
            stream = container.streams.video[0]
            cc = stream.codec_context
            # Demux every packet (cheap: no decoding) and decode only the first frame: a cut or corrupt
            # file shows as missing packets against the index, or as a first frame that does not decode.
            frames, decoded = 0, False
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                frames += 1
                if not decoded:
                    decoded = bool(packet.decode())
            if stream.frames and frames < stream.frames:
                raise ValueError(f"{frames} of {stream.frames} frames present: the file is cut short")
            if not decoded and frames:
                for _ in container.decode(stream):     # the decoder may need a few packets first
                    decoded = True
                    break
            fps = float(stream.average_rate) if stream.average_rate else 0.0
            duration = (float(container.duration) / 1e6) if container.duration else (frames / fps if fps else 0.0)
            info = {"width": cc.width, "height": cc.height, "fps": round(fps, 3), "frames": frames,
                    "duration": round(duration, 3), "codec": cc.name}
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(str(exc)) from None
    if info["frames"] == 0:
        raise ValueError("no decodable video frames")
    info["sha256"] = h.hexdigest()
    return info
