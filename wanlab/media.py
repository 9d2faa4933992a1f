"""The media store: downloaded videos and uploaded inputs, content-addressed under the notebook's folder
(so Jupyter can serve them), with poster frames and contact sheets."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path


class MediaStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"MediaStore({str(self.root)!r})"

    def path_for(self, sha256: str, ext: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}{ext}"

    def partial(self, name: str) -> Path:
        d = self.root / ".partial"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{name}.part"

    def ingest(self, part: Path, sha256: str, ext: str = ".mp4") -> Path:
        """Move a verified download to its content address; identical videos are stored once."""
        final = self.path_for(sha256, ext)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            part.unlink(missing_ok=True)
        else:
            os.replace(part, final)
        return final

    def put_bytes(self, data: bytes, ext: str) -> Path:
        """Keep an input (an uploaded image or clip) so the run can be resumed or rerun later."""
        sha = hashlib.sha256(data).hexdigest()
        final = self.path_for(sha, ext)
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}.tmp")  # kernels may race
            tmp.write_bytes(data)
            os.replace(tmp, final)
        return final

    def probe(self, video: str | os.PathLike) -> dict:
        """Duration (s), width, height, fps, codec, frames and sha256 of an MP4, read with PyAV (see
        `video.probe_file`: every packet is demuxed and the first frame decoded, so a truncated or corrupt
        file fails with ValueError)."""
        from .video import probe_file

        return probe_file(video)

    def verify(self, video: str | os.PathLike) -> bool:
        """Does the file still hash to the name it is stored under?"""
        video = Path(video)
        h = hashlib.sha256()
        with open(video, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest() == video.stem

    def contact_sheet(self, runs, out: str | os.PathLike | None = None, **kw) -> Path | bytes:
        """A PNG of one frame per run: `runs` is a log DataFrame (`lab.log.df`, a filter of it), jobs, or
        paths. Labels show seed and resolution when known. Written to `out`, or under the store's
        `sheets/` (named by the runs' content) when `out` is None."""
        videos, labels = _videos_and_labels(runs)
        if out is None:
            key = hashlib.sha256("\n".join(map(str, videos)).encode()).hexdigest()[:16]
            out = self.root / "sheets" / f"{key}.png"
            Path(out).parent.mkdir(parents=True, exist_ok=True)
        given = kw.pop("labels", None)
        return contact_sheet(videos, labels if given is None else given, out=out, **kw)

    def poster(self, video: str | os.PathLike, at: float = 0.5, width: int = 480) -> Path:
        """A JPEG of the frame nearest `at` seconds, next to the video (cached)."""
        video = Path(video)
        out = video.with_suffix(".jpg")
        if not out.exists():
            img = frame_at(video, at)
            img.thumbnail((width, width))
            tmp = out.with_suffix(".tmp.jpg")
            img.save(tmp, format="JPEG", quality=80)
            os.replace(tmp, out)
        return out


def _videos_and_labels(runs) -> tuple[list[str], list[str]]:
    if hasattr(runs, "to_dict") and hasattr(runs, "columns"):  # a DataFrame of log rows
        rows = runs.to_dict("records")
        rows = [r for r in rows if isinstance(r.get("path"), str) and r.get("path")]
        return [r["path"] for r in rows], [_label(r.get("run_id"), r.get("seed"), r.get("resolution")) for r in rows]
    videos, labels = [], []
    for r in runs:
        path = getattr(r, "video_path", None)
        if path is not None or hasattr(r, "request"):  # a Job
            if path is None:
                continue
            videos.append(str(path))
            labels.append(_label(r.id, r.seed, r.request.resolution))
        else:
            videos.append(str(r))
            labels.append(Path(str(r)).stem[:12])
    return videos, labels


def _label(run_id, seed, resolution) -> str:
    parts = [str(run_id)[:8] if run_id else ""]
    if seed is not None and seed == seed:  # not NA
        try:
            parts.append(f"seed {int(seed)}")
        except (TypeError, ValueError):
            pass
    if isinstance(resolution, str):
        parts.append(resolution)
    return " · ".join(p for p in parts if p)


def frame_at(video: str | os.PathLike | bytes, at: float = 0.5):
    """The decoded frame nearest `at` seconds of a video file (a path, or its bytes), as a PIL image."""
    import av

    with av.open(io.BytesIO(video) if isinstance(video, bytes) else str(video), "r") as container:
        stream = container.streams.video[0]
        last = None
        for frame in container.decode(stream):
            last = frame
            if frame.time is not None and frame.time >= at:
                break
        if last is None:
            raise ValueError(f"{str(video)}: no decodable frames")
        return last.to_image()


def contact_sheet(
    videos: Sequence[str | os.PathLike],
    labels: Iterable[str] | None = None,
    cols: int = 4,
    cell: int = 320,
    out: str | os.PathLike | None = None,
    at: float = 0.5,
) -> Path | bytes:
    """A PNG grid of one frame per video, each labelled. Writes `out` and returns its path, or returns
    the PNG bytes when `out` is None."""
    from PIL import Image, ImageDraw, ImageFont

    labels = list(labels) if labels is not None else [Path(v).stem[:12] for v in videos]
    n = len(videos)
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    label_h = 22
    cell_h = cell * 9 // 16
    sheet = Image.new("RGB", (cols * cell, rows * (cell_h + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for i, (video, label) in enumerate(zip(videos, labels, strict=True)):
        x, y = (i % cols) * cell, (i // cols) * (cell_h + label_h)
        try:
            img = frame_at(video, at)
            img.thumbnail((cell, cell_h))
            sheet.paste(img, (x + (cell - img.width) // 2, y + (cell_h - img.height) // 2))
        except (ValueError, OSError):
            draw.rectangle([x, y, x + cell - 1, y + cell_h - 1], fill=(220, 220, 220))
            draw.text((x + 8, y + 8), "no video", fill="black", font=font)
        draw.text((x + 4, y + cell_h + 3), str(label)[:40], fill="black", font=font)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    if out is None:
        return buf.getvalue()
    Path(out).write_bytes(buf.getvalue())
    return Path(out)
