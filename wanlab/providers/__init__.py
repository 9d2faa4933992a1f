"""Wire protocols, one module per host. Pure: a request goes in, an HttpRequest comes out; a response
goes in, a TaskSnapshot (or a typed ApiError) comes out."""

from __future__ import annotations

from ..errors import ConfigError
from .base import HttpRequest, HttpResponse, ListedTask, Provider, Status, TaskSnapshot
from .dashscope import DashScope
from .wavespeed import WaveSpeed


def make_provider(name: str, region: str | None = None, base_url: str | None = None) -> Provider:
    if name == "dashscope":
        return DashScope(region or "singapore", base_url)
    if name == "wavespeed":
        if region:
            raise ConfigError(f"region={region!r}: WaveSpeed has no regions; drop region= or use provider='dashscope'")
        return WaveSpeed(base_url)
    raise ConfigError(f"provider={name!r} is not a host wanlab speaks; use 'dashscope', 'wavespeed' or 'sim'")


__all__ = [
    "DashScope",
    "WaveSpeed",
    "make_provider",
    "HttpRequest",
    "HttpResponse",
    "ListedTask",
    "Provider",
    "Status",
    "TaskSnapshot",
]
