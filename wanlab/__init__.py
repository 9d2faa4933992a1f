"""wanlab: a Jupyter-native lab bench for WAN video generation on hosted APIs (DashScope, WaveSpeed)."""
from .requests import T2V, I2V, FLF2V, Grid9, Ref2V, Edit, Request
from .errors import (WanlabError, ValidationError, CatalogError, ConfigError, ApiError, AuthError, RateLimited,
                     NotFound, ServerError, UnconfirmedSubmit, DownloadError, JobFailed, JobCanceled)
from . import catalog

__version__ = "0.1.0"
from .lab import Lab
from .jobs import Job, JobEvent
from .providers.base import Status
from .limits import Limits
from .retry import RetryPolicy
from .polling import EtaPoll, HostCadence, FixedInterval

__all__ = ["Lab", "Job", "JobEvent", "Status", "T2V", "I2V", "FLF2V", "Grid9", "Ref2V", "Edit", "Request", "Limits",
           "RetryPolicy", "EtaPoll", "HostCadence", "FixedInterval", "catalog", "WanlabError", "ValidationError",
           "CatalogError", "ConfigError", "ApiError", "AuthError", "RateLimited", "NotFound", "ServerError",
           "UnconfirmedSubmit", "DownloadError", "JobFailed", "JobCanceled"]
