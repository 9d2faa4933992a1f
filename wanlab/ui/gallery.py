"""Galleries: runs side by side, grouped by any log column (seed grids, prompt A vs B, host vs host).

`show(runs, by=...)` takes whatever holds runs — the log, a DataFrame slice of it, a list of Jobs, a
sweep (anything with `.jobs`) — and renders plain HTML (no widget state; the `Gallery` itself lives in
`wanlab._views`), so a 48-video gallery adds well under 100 KB to the saved notebook. `static=True`
shows a contact-sheet PNG instead (for exports that drop video).
"""

from __future__ import annotations

from typing import Any

from .._views import AUTO_KEYS, POSTER_BUDGET, RUN_FIELDS, Gallery, runs_of


def gallery(runs: Any, by: Any = "auto", **kw: Any) -> Gallery:
    """A Gallery of `runs` (see Gallery); ending a cell with it shows it."""
    return Gallery(runs, by=by, **kw)


def show(runs: Any, by: Any = "auto", *, static: bool = False, **kw: Any) -> None:
    """Display `runs` as a gallery grouped `by` a log column or two (`static=True`: a contact-sheet PNG)."""
    from IPython.display import Image, display

    g = Gallery(runs, by=by, **kw)
    display(Image(data=g.contact_sheet()) if static else g)


__all__ = ["AUTO_KEYS", "POSTER_BUDGET", "RUN_FIELDS", "Gallery", "gallery", "runs_of", "show"]
