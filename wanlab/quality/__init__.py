"""Signal-level quality figures of one video, on the CPU: `measure(path, first, last, expect=...)`.

Importing this package loads no numpy, PyAV, OpenCV or scikit-image: `measure` (and with it those) loads
when first touched, so the log and the Lab can read `QUALITY_COLUMNS` for free."""

from __future__ import annotations

import importlib
from typing import Any

from ._about import FIGURES, QUALITY_COLUMNS, Figure

__all__ = ["FIGURES", "QUALITY_COLUMNS", "Figure", "measure"]


def __getattr__(name: str) -> Any:
    if name == "measure":
        value = importlib.import_module("._measure", __name__).measure
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
