"""HTML for videos, jobs, log slices and sweeps: what a saved notebook carries.

A `<video>` points at the file under the notebook's folder (JupyterLab rewrites a relative `src` to its
files API when the HTML is rendered as an output, also inside an `Output` widget, but not inside
`ipywidgets.HTML`), with a small data-URI JPEG poster (JupyterLab never rewrites `poster`). Only front
ends that cannot serve local files (Colab, VS Code) get the MP4 itself as a data URI, under a size cap:
one embedded 5 s clip is ~7 MB of notebook, a linked one ~1 KB plus its poster.
"""
from __future__ import annotations

import base64
import functools
import html
import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..jobs import Job

EMBED_MAX_BYTES = 8 * 1024 * 1024   # a bigger MP4 is linked even where links don't play, with a note
POSTER_WIDTH = 320                  # a card's poster: ~5–10 KB of base64


def front_end() -> str:
    """"colab", "vscode" or "jupyter": where the HTML will be rendered, as far as the kernel can tell."""
    if "google.colab" in sys.modules:
        return "colab"
    if os.environ.get("VSCODE_PID") or os.environ.get("VSCODE_CWD"):
        return "vscode"
    return "jupyter"


def should_embed(embed: bool | None = None) -> bool:
    """`embed=None` means: embed only where the front end cannot serve files from the notebook's folder."""
    return front_end() != "jupyter" if embed is None else bool(embed)


def relative_src(path: str | os.PathLike) -> str:
    """A URL for `path` relative to the kernel's working directory (the notebook's folder in Jupyter)."""
    from urllib.parse import quote

    p = Path(path)
    try:
        rel = os.path.relpath(p.resolve(), Path.cwd().resolve())
    except ValueError:              # another drive on Windows: no relative path exists
        rel = str(p)
    return quote(Path(rel).as_posix())


@functools.lru_cache(maxsize=256)
def _frame(path: str, mtime: float, width: int) -> Any:
    """The poster frame, decoded once per file and kept small (galleries try several poster sizes)."""
    from ..media import frame_at

    img = frame_at(path, 0.5)
    img.thumbnail((width, width))
    return img


@functools.lru_cache(maxsize=512)
def _poster_cached(path: str, mtime: float, width: int, quality: int) -> str:
    img = _frame(path, mtime, max(width, POSTER_WIDTH)).copy()
    img.thumbnail((width, width))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def poster_uri(path: str | os.PathLike, width: int = POSTER_WIDTH, quality: int = 70) -> str:
    """A data-URI JPEG of the frame at 0.5 s, `width` px wide (cached per file); "" when it can't decode."""
    try:
        return _poster_cached(str(path), os.path.getmtime(path), int(width), int(quality))
    except (OSError, ValueError):
        return ""


def video_html(path: str | os.PathLike | None, *, width: int | str = 480, poster_width: int = POSTER_WIDTH,
               poster_quality: int = 70, embed: bool | None = None, max_embed_bytes: int = EMBED_MAX_BYTES,
               caption: str = "") -> str:
    """One `<video controls muted playsinline preload="none">` for a local MP4 (see the module doc)."""
    if path is None or not Path(path).exists():
        return f"<div style='color:#888'>no video{(': ' + html.escape(str(path))) if path else ''}</div>"
    note = ""
    src = relative_src(path)
    if should_embed(embed):
        size = Path(path).stat().st_size
        if size <= max_embed_bytes:
            src = "data:video/mp4;base64," + base64.b64encode(Path(path).read_bytes()).decode()
        else:
            note = (f"<div style='color:#a60;font-size:11px'>{size / 1e6:.1f} MB is over the embed cap "
                    f"({max_embed_bytes / 1e6:.0f} MB): open {html.escape(str(path))}</div>")
    poster = poster_uri(path, poster_width, poster_quality) if poster_width else ""
    w = f"{width}px" if isinstance(width, int) else width
    tag = (f'<video controls muted playsinline preload="none" src="{html.escape(src, quote=True)}"'
           + (f' poster="{poster}"' if poster else "")
           + f' style="width:{w};max-width:100%;background:#000"></video>')
    cap = f"<div style='font-size:11px;color:#555'>{html.escape(caption)}</div>" if caption else ""
    return f"<div style='display:inline-block;margin:2px'>{tag}{cap}{note}</div>"


# -- jobs, log rows and galleries as HTML ----------------------------------------------------------

def _fmt_s(x: Any) -> str:
    try:
        return "—" if x is None or x != x else f"{float(x):.1f} s"
    except (TypeError, ValueError):
        return "—"


def _fmt_cost(amount: Any, currency: Any) -> str:
    try:
        if amount is None or amount != amount:
            return "—"
        return f"{float(amount):.2f} {currency or ''}".strip()
    except (TypeError, ValueError):
        return "—"


def job_html(job: "Job", *, embed: bool | None = None) -> str:
    """What ending a cell with a Job shows: its status table and, when done, the video."""
    p = job.request.prompt
    cost = job.cost if job.cost is not None else job.est_cost
    rows = [("status", str(job.status)), ("model", job.model.id), ("host", job.host),
            ("seed", "—" if job.seed is None else str(job.seed)),
            ("task", job.task_id or "—"), ("request id", job.request_id or "—"),
            ("latency", _fmt_s(job.latency)),
            ("cost" if job.cost is not None else "est. cost", _fmt_cost(cost, job.currency))]
    if job.error is not None:
        rows.append(("error", str(job.error)[:300]))
    cells = "".join(f"<tr><th style='text-align:left;padding-right:8px'>{k}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in rows)
    video = video_html(job.video_path, embed=embed) if job.video_path else ""
    return (f"<div><b>{html.escape(job.mode.upper())}</b> {html.escape(p[:120])}"
            f"<table style='font-size:12px'>{cells}</table>{video}</div>")


def log_html(runs: Any, *, limit: int = 48, by: Any = "auto", embed: bool | None = None) -> str:
    """What ending a cell with the log (or a slice of it, or a sweep) shows: a count line and a gallery
    of its last `limit` runs with a video."""
    from .gallery import Gallery

    return Gallery(runs, by=by, limit=limit, embed=embed)._repr_html_()


def sweep_html(sweep: Any, *, embed: bool | None = None) -> str:
    """A sweep (anything with `.jobs`) as a grid over the parameters that vary between its runs."""
    return log_html(sweep, by="auto", limit=400, embed=embed)


__all__ = ["video_html", "poster_uri", "job_html", "log_html", "sweep_html", "front_end", "should_embed",
           "relative_src", "EMBED_MAX_BYTES"]

