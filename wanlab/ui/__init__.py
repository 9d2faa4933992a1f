"""Notebook UI: generation forms, live job cards, inline videos, galleries (ipywidgets + plain HTML).

The UI is a thin shell over the library: every button is one library call (`lab.submit(form.request())`,
`job.cancel()`, `lab.log.set_rating(...)`, `lab.submit(job.request.replace(seed=...))`).

The HTML half (`video_html`, `job_html`, `log_html`, `sweep_html`, `Gallery`) lives in `wanlab._views` and
is re-exported here; it needs no ipywidgets, so `_repr_html_` hooks work on a base install. The widgets
(forms, cards, the sweep progress bar in `progress`) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .gallery import Gallery, gallery, runs_of, show
from .video import front_end, job_html, log_html, poster_uri, sweep_html, video_html

if TYPE_CHECKING:
    from ..jobs import Job
    from ..lab import Lab
    from .cards import JobCard
    from .forms import GenerateForm

_LAZY = {"GenerateForm": "forms", "MediaInput": "forms", "JobCard": "cards", "expected_latency": "cards"}


def form(lab: Lab, **defaults: Any) -> GenerateForm:
    """A generation form for every WAN mode (see GenerateForm)."""
    from .forms import GenerateForm

    return GenerateForm(lab, **defaults)


def card(lab: Lab, job: Job, **kw: Any) -> JobCard:
    """A live card for `job` (see JobCard)."""
    from .cards import JobCard

    return JobCard(lab, job, **kw)


def __getattr__(name: str) -> Any:  # widgets only when asked for: ipywidgets is the [jupyter] extra
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "form",
    "card",
    "show",
    "gallery",
    "video_html",
    "job_html",
    "log_html",
    "sweep_html",
    "poster_uri",
    "front_end",
    "GenerateForm",
    "JobCard",
    "MediaInput",
    "Gallery",
    "runs_of",
    "expected_latency",
]
