"""The HTML views of wanlab's objects: videos, jobs, log slices, sweeps and galleries — what `_repr_html_`
returns, and what a saved notebook carries. Plain HTML strings, no widget state: the domain (Job,
ExperimentLog, Sweep) imports this leaf module, never the notebook UI package (`wanlab.ui`, which
re-exports these names).

A `<video>` points at the file under the notebook's folder (JupyterLab rewrites a relative `src` to its
files API when the HTML is rendered as an output, also inside an `Output` widget, but not inside
`ipywidgets.HTML`), with a small data-URI JPEG poster (JupyterLab never rewrites `poster`). Only front
ends that cannot serve local files (Colab, VS Code) get the MP4 itself as a data URI, under a size cap:
one embedded 5 s clip is ~7 MB of notebook, a linked one ~1 KB plus its poster.

A gallery lays runs out side by side, grouped by any log column (seed grids, prompt A vs B, host vs
host); videos are linked and posters are tiny data URIs sized to a per-gallery byte budget, so a
48-video gallery adds well under 100 KB to the saved notebook.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from .jobs import Job

EMBED_MAX_BYTES = 8 * 1024 * 1024  # a bigger MP4 is linked even where links don't play, with a note
POSTER_WIDTH = 320  # a card's poster: ~5–10 KB of base64


def front_end() -> str:
    """ "colab", "vscode" or "jupyter": where the HTML will be rendered, as far as the kernel can tell."""
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
    except ValueError:  # another drive on Windows: no relative path exists
        rel = str(p)
    return quote(Path(rel).as_posix())


@functools.lru_cache(maxsize=256)
def _frame(path: str, mtime: float, width: int) -> Any:
    """The poster frame, decoded once per file and kept small (galleries try several poster sizes)."""
    from .media import frame_at

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


def video_html(
    path: str | os.PathLike | None,
    *,
    width: int | str = 480,
    poster_width: int = POSTER_WIDTH,
    poster_quality: int = 70,
    embed: bool | None = None,
    max_embed_bytes: int = EMBED_MAX_BYTES,
    caption: str = "",
) -> str:
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
            note = (
                f"<div style='color:#a60;font-size:11px'>{size / 1e6:.1f} MB is over the embed cap "
                f"({max_embed_bytes / 1e6:.0f} MB): open {html.escape(str(path))}</div>"
            )
    poster = poster_uri(path, poster_width, poster_quality) if poster_width else ""
    w = f"{width}px" if isinstance(width, int) else width
    tag = (
        f'<video controls muted playsinline preload="none" src="{html.escape(src, quote=True)}"'
        + (f' poster="{poster}"' if poster else "")
        + f' style="width:{w};max-width:100%;background:#000"></video>'
    )
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


def job_html(job: Job, *, embed: bool | None = None) -> str:
    """What ending a cell with a Job shows: its status table and, when done, the video."""
    p = job.request.prompt
    cost = job.cost if job.cost is not None else job.est_cost
    rows = [
        ("status", str(job.status)),
        ("model", job.model.id),
        ("host", job.host),
        ("seed", "—" if job.seed is None else str(job.seed)),
        ("task", job.task_id or "—"),
        ("request id", job.request_id or "—"),
        ("latency", _fmt_s(job.latency)),
        ("cost" if job.cost is not None else "est. cost", _fmt_cost(cost, job.currency)),
    ]
    if job.error is not None:
        rows.append(("error", str(job.error)[:300]))
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:8px'>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
    )
    video = video_html(job.video_path, embed=embed) if job.video_path else ""
    return (
        f"<div><b>{html.escape(job.mode.upper())}</b> {html.escape(p[:120])}"
        f"<table style='font-size:12px'>{cells}</table>{video}</div>"
    )


def log_html(runs: Any, *, limit: int = 48, by: Any = "auto", embed: bool | None = None) -> str:
    """What ending a cell with the log (or a slice of it, or a sweep) shows: a count line and a gallery
    of its last `limit` runs with a video."""
    return Gallery(runs, by=by, limit=limit, embed=embed)._repr_html_()


def sweep_html(sweep: Any, *, embed: bool | None = None) -> str:
    """A sweep (anything with `.jobs`) as a grid over the parameters that vary between its runs."""
    return log_html(sweep, by="auto", limit=400, embed=embed)


# -- galleries ---------------------------------------------------------------------------------

# Columns worth grouping by when `by="auto"`, in row-key preference order; "seed" goes across.
AUTO_KEYS = ("host", "model", "mode", "prompt", "negative_prompt", "resolution", "duration", "seed")
POSTER_BUDGET = 56 * 1024  # bytes of base64 posters per gallery: the bulk of what it adds to a notebook
RUN_FIELDS = (
    "run_id",
    "status",
    "mode",
    "host",
    "model",
    "prompt",
    "negative_prompt",
    "resolution",
    "duration",
    "seed",
    "path",
    "latency_s",
    "cost",
    "est_cost",
    "currency",
    "rating",
    "error_code",
)


def _clean(v: Any) -> Any:
    """pandas NA/NaN → None, numpy scalars → Python."""
    try:
        if v is None or v != v:
            return None
    except (TypeError, ValueError):  # pd.NA compares ambiguously
        return None
    return v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v


def _job_row(job: Any) -> dict[str, Any]:
    r = job.request
    return {
        "run_id": job.id,
        "status": str(job.status),
        "mode": job.mode,
        "host": job.host,
        "model": job.model.id,
        "prompt": r.prompt,
        "negative_prompt": r.negative_prompt,
        "resolution": r.resolution,
        "duration": r.duration,
        "seed": job.seed,
        "path": str(job.video_path) if job.video_path else None,
        "latency_s": job.latency,
        "cost": job.cost,
        "est_cost": job.est_cost,
        "currency": job.currency,
        "rating": None,
        "error_code": job.error_code or None,
    }


def runs_of(runs: Any) -> list[dict[str, Any]]:
    """One dict per run from a log, a DataFrame, a Job, a list of Jobs/dicts, or a sweep (`.jobs`/`.df`)."""
    from .jobs import Job

    if isinstance(runs, Job):
        return [_job_row(runs)]
    if hasattr(runs, "to_dict") and hasattr(runs, "columns"):  # a DataFrame
        return [{k: _clean(v) for k, v in rec.items()} for rec in runs.to_dict("records")]
    if hasattr(runs, "df"):  # the ExperimentLog, a Sweep (its df has reused runs too)
        return runs_of(runs.df)
    if hasattr(runs, "jobs") and not isinstance(runs, (list, tuple)):  # a Lab, anything holding jobs
        return runs_of([j for j in runs.jobs if j is not None])
    out: list[dict[str, Any]] = []
    for item in runs:
        if item is None:  # a sweep cell not started
            continue
        out += runs_of(item) if isinstance(item, Job) else [{k: _clean(v) for k, v in dict(item).items()}]
    return out


def _auto_by(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    varying = [k for k in AUTO_KEYS if len({str(r.get(k)) for r in rows}) > 1]
    if "seed" in varying and len(varying) > 1:  # seeds across, everything else down: a seed grid
        return (tuple(k for k in varying if k != "seed"), "seed")  # type: ignore[return-value]
    return tuple(varying[:2]) if len(varying) <= 2 else (tuple(varying[:-1]), varying[-1])  # type: ignore


def _num(label: str) -> float | None:
    try:
        return float(label.split()[-1])
    except (ValueError, IndexError):
        return None


def _key(row: dict[str, Any], cols: str | Sequence[str]) -> str:
    cols = (cols,) if isinstance(cols, str) else tuple(cols)
    return " · ".join(f"{row.get(c)}" if c != "seed" else f"seed {row.get(c)}" for c in cols)


@dataclass
class Gallery:
    """Runs laid out as a grid. `by=None`: a flat grid; `by="seed"`: one row per value; `by=("prompt",
    "seed")`: rows by prompt, columns by seed; `by="auto"`: whatever varies between the runs."""

    runs: Any
    by: Any = "auto"
    limit: int | None = None
    width: int = 240
    cols: int = 4
    embed: bool | None = None
    poster_budget: int = POSTER_BUDGET

    def __post_init__(self) -> None:
        rows = runs_of(self.runs)
        self.rows = rows[-self.limit :] if self.limit else rows

    # -- layout ----------------------------------------------------------------------------------
    def layout(self) -> tuple[list[str], list[str], dict[tuple[str, str], list[dict[str, Any]]]]:
        """(row labels, column labels, cells): the grid the HTML and the contact sheet both draw."""
        by = _auto_by(self.rows) if self.by == "auto" else self.by
        if isinstance(by, str):
            by = (by,)
        by = tuple(by or ())
        row_key = by[0] if len(by) >= 1 else None
        col_key = by[1] if len(by) >= 2 else None
        cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for i, r in enumerate(self.rows):
            rk = _key(r, row_key) if row_key else ""
            ck = _key(r, col_key) if col_key else (str(i % self.cols) if not row_key else "")
            cells.setdefault((rk, ck), []).append(r)
        if not row_key and not col_key:  # flat: reflow into rows of `cols`
            cells = {(str(i // self.cols), str(i % self.cols)): [r] for i, r in enumerate(self.rows)}
        row_labels = list(dict.fromkeys(k[0] for k in cells))
        col_labels = list(dict.fromkeys(k[1] for k in cells))
        if col_key and all(_num(c) is not None for c in col_labels):  # seeds, durations: numeric order
            col_labels.sort(key=lambda c: cast(float, _num(c)))
        self._labelled = (bool(row_key), bool(col_key))
        return row_labels, col_labels, cells

    def _poster_width(self, paths: list[str]) -> int:
        """The widest poster (≤ the cell) whose total base64 fits the budget: measured, not guessed."""
        width = min(self.width, 320)
        for _ in range(4):
            total = sum(len(poster_uri(p, width, 60)) for p in paths)
            if total <= self.poster_budget or width <= 48:
                return width
            width = max(48, int(width * (self.poster_budget / total) ** 0.5 * 0.95))
        return width

    # -- rendering -------------------------------------------------------------------------------
    def _caption(self, r: dict[str, Any]) -> str:
        bits = [] if self._labelled[1] else [f"seed {r.get('seed')}"]
        if r.get("status") not in (None, "SUCCEEDED"):
            bits.append(str(r.get("status")))
        if r.get("rating"):
            bits.append("★" * int(r["rating"]))
        return " ".join(bits)

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<div>no runs</div>"
        row_labels, col_labels, cells = self.layout()
        paths = [r["path"] for r in self.rows if r.get("path") and Path(r["path"]).exists()]
        pw = self._poster_width(paths)
        show_rows, show_cols = self._labelled
        head = ""
        if show_cols:
            head = (
                "<tr><th></th>" * show_rows
                + ("" if show_rows else "<tr>")
                + "".join(f"<th style='font-size:12px'>{html.escape(c)}</th>" for c in col_labels)
                + "</tr>"
            )
        body = []
        for rl in row_labels:
            tds = (
                [f"<th style='text-align:left;font-size:12px;max-width:200px'>{html.escape(rl[:200])}</th>"]
                if show_rows
                else []
            )
            for cl in col_labels:
                items = cells.get((rl, cl), [])
                tds.append(
                    "<td style='vertical-align:top'>"
                    + "".join(
                        video_html(
                            r.get("path"),
                            width=self.width,
                            poster_width=pw,
                            poster_quality=60,
                            embed=self.embed,
                            caption=self._caption(r),
                        )
                        if r.get("path")
                        else f"<div style='width:{self.width}px;color:#a00;font-size:11px'>"
                        f"{html.escape(str(r.get('status')))} {html.escape(str(r.get('error_code') or ''))}</div>"
                        for r in items
                    )
                    + "</td>"
                )
            body.append("<tr>" + "".join(tds) + "</tr>")
        from .cost import money, sums

        n_ok = sum(1 for r in self.rows if r.get("status") == "SUCCEEDED")
        spent = sums((r.get("cost") for r in self.rows), (r.get("currency") for r in self.rows))
        title = f"{len(self.rows)} run(s), {n_ok} succeeded" + (f", cost {money(spent)}" if spent else "")
        return f"<div><div style='font-size:12px;color:#555'>{title}</div><table>{head}{''.join(body)}</table></div>"

    def __repr__(self) -> str:
        return f"<Gallery of {len(self.rows)} run(s), by={self.by!r}>"

    def contact_sheet(self, out: str | os.PathLike | None = None, cell: int = 320) -> Path | bytes:
        """A PNG of one frame per run, in the gallery's order and labelled by its grid keys."""
        from .media import contact_sheet

        row_labels, col_labels, cells = self.layout()
        videos, labels = [], []
        for rl in row_labels:
            for cl in col_labels:
                for r in cells.get((rl, cl), []):
                    videos.append(r.get("path") or os.devnull)
                    labels.append(
                        " · ".join(
                            x
                            for x in (
                                rl if self._labelled[0] else "",
                                cl if self._labelled[1] else f"seed {r.get('seed')}",
                            )
                            if x
                        )
                    )
        ncols = len(col_labels) if self._labelled[1] else self.cols
        return contact_sheet(videos, labels, cols=ncols, cell=cell, out=out)


__all__ = [
    "video_html",
    "poster_uri",
    "job_html",
    "log_html",
    "sweep_html",
    "front_end",
    "should_embed",
    "relative_src",
    "EMBED_MAX_BYTES",
    "POSTER_WIDTH",
    "Gallery",
    "runs_of",
    "AUTO_KEYS",
    "POSTER_BUDGET",
    "RUN_FIELDS",
]
