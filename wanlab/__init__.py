"""wanlab: a Jupyter-native lab bench for WAN video generation on hosted APIs (DashScope, WaveSpeed)."""
from . import catalog, plots
from .cost import BudgetExceeded
from .errors import (ApiError, AuthError, CatalogError, ConfigError, DownloadError, JobCanceled, JobFailed,
                     LostContact, NotFound, RateLimited, ServerError, UnconfirmedSubmit, ValidationError, WanlabError)
from .jobs import Job, JobEvent
from .lab import Lab
from .limits import Limits
from .polling import EtaPoll, FixedInterval, HostCadence
from .providers.base import Status
from .requests import FLF2V, I2V, T2V, Edit, Grid9, Ref2V, Request
from .retry import RetryPolicy
from .ui.gallery import show

__version__ = "0.1.0"

__all__ = ["Lab", "Job", "JobEvent", "Status", "T2V", "I2V", "FLF2V", "Grid9", "Ref2V", "Edit", "Request", "Limits",
           "RetryPolicy", "EtaPoll", "HostCadence", "FixedInterval", "catalog", "plots", "show", "WanlabError",
           "ValidationError", "CatalogError", "ConfigError", "ApiError", "AuthError", "RateLimited", "NotFound",
           "ServerError", "UnconfirmedSubmit", "DownloadError", "LostContact", "JobFailed", "JobCanceled", "BudgetExceeded"]
