"""The sweep's progress display: an ipywidgets bar in a kernel, a line on stderr elsewhere.

`Sweep.run(progress=True)` uses `ProgressDisplay` as its `on_progress` hook when none is given; any other
callable taking a `wanlab.sweep.SweepProgress` can replace it.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sweep import SweepProgress

STDERR_EVERY_S = 2.0  # a line on stderr at most this often (the widget follows every update)


def _in_kernel() -> bool:
    """Is this code running in a Jupyter kernel (not merely a process that imported ipykernel, as pytest's
    notebook plugins do)?"""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


class ProgressDisplay:
    """Shows each `SweepProgress` it is called with: done / failed / in flight / spend / ETA."""

    def __init__(self, label: str = "sweep"):
        self.label = label
        self.widget: Any = None
        self._last = 0.0
        self._started = False

    def _start(self, p: SweepProgress) -> None:
        self._started = True
        if not _in_kernel():
            return
        try:
            import ipywidgets as w
            from IPython.display import display
        except ImportError:
            return
        self.bar = w.IntProgress(min=0, max=max(p.total, 1), value=p.done, description=self.label)
        self.text = w.HTML()
        self.widget = w.HBox([self.bar, self.text])
        display(self.widget)

    def __call__(self, p: SweepProgress) -> None:
        if not self._started:
            self._start(p)
        line = str(p)
        if self.widget is not None:
            self.bar.value, self.text.value = p.done, line
            return
        tty = sys.stderr.isatty()
        if p.final:
            print(f"\r{line}" if tty else line, file=sys.stderr, flush=True)
        elif time.monotonic() - self._last > STDERR_EVERY_S:
            self._last = time.monotonic()
            print(f"\r{line}" if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)


__all__ = ["ProgressDisplay", "STDERR_EVERY_S"]
