"""HTML for videos, jobs, log slices and sweeps. The renderers live in `wanlab._views` (a leaf module the
domain imports without this package); this module keeps the names where notebooks found them."""

from __future__ import annotations

from .._views import (
    EMBED_MAX_BYTES,
    POSTER_WIDTH,
    front_end,
    job_html,
    log_html,
    poster_uri,
    relative_src,
    should_embed,
    sweep_html,
    video_html,
)

__all__ = [
    "EMBED_MAX_BYTES",
    "POSTER_WIDTH",
    "front_end",
    "job_html",
    "log_html",
    "poster_uri",
    "relative_src",
    "should_embed",
    "sweep_html",
    "video_html",
]
