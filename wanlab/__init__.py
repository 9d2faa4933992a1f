"""wanlab: a Jupyter-native lab bench for WAN video generation on hosted APIs (DashScope, WaveSpeed).

`import wanlab` is cheap and has no side effects: it imports no pandas, matplotlib, numpy, ipywidgets or
server stack, and changes nothing in `logging` or matplotlib. Heavy submodules (`plots`, `report`, `ui`,
`sim`) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import catalog
from .catalog import ModelSpec
from .compare import Comparison, compare_hosts
from .cost import Budget, BudgetExceeded, Estimate, Totals
from .errors import (
    ApiError,
    AuthError,
    CatalogError,
    ConfigError,
    DownloadError,
    JobCanceled,
    JobFailed,
    LostContact,
    NotFound,
    RateLimited,
    ServerError,
    UnconfirmedSubmit,
    ValidationError,
    WanlabError,
)
from .jobs import Job, JobEvent
from .lab import Lab
from .limits import Limits
from .log import ExperimentLog, LogError
from .polling import EtaPoll, FixedInterval, HostCadence, LearnedPoll
from .prices import PriceTable
from .providers.base import Status
from .requests import FLF2V, I2V, T2V, Edit, Extend, Grid9, Ref2V, Request
from .retry import RetryPolicy
from .sweep import Sweep, SweepProgress

__version__ = "0.1.0"

# Loaded when first touched: name → (module, attribute or None for the module itself). `plots` needs
# numpy, `quality` OpenCV and scikit-image (on first measure), `ranking` SciPy, `report` matplotlib, `sim`
# the server stack; `ui` (and `show`) is the notebook UI package, which
# the rest of wanlab never imports.
_LAZY = {
    "plots": (".plots", None),
    "quality": (".quality", None),
    "ranking": (".ranking", None),
    "report": (".report", None),
    "sim": (".sim", None),
    "ui": (".ui", None),
    "show": (".ui.gallery", "show"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name, __name__)
        value = module if attr is None else getattr(module, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ApiError",
    "AuthError",
    "Budget",
    "BudgetExceeded",
    "CatalogError",
    "Comparison",
    "ConfigError",
    "DownloadError",
    "Edit",
    "Estimate",
    "EtaPoll",
    "ExperimentLog",
    "Extend",
    "FLF2V",
    "FixedInterval",
    "Grid9",
    "HostCadence",
    "I2V",
    "Job",
    "JobCanceled",
    "JobEvent",
    "JobFailed",
    "Lab",
    "LearnedPoll",
    "Limits",
    "LogError",
    "LostContact",
    "ModelSpec",
    "NotFound",
    "PriceTable",
    "RateLimited",
    "Ref2V",
    "Request",
    "RetryPolicy",
    "ServerError",
    "Status",
    "Sweep",
    "SweepProgress",
    "T2V",
    "Totals",
    "UnconfirmedSubmit",
    "ValidationError",
    "WanlabError",
    "catalog",
    "compare_hosts",
    "plots",
    "show",
]
