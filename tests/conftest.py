from __future__ import annotations

import httpx
import pytest

from wanlab import Lab, RetryPolicy
from wanlab.sim import SimServer

KEY = "sk-test-0123456789abcdef-SECRET"
FAST_RETRY = RetryPolicy(base_s=0.02, max_backoff_s=0.2, retry_after_cap_s=3.0, budget_s=30.0)


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the real loopback transport and keeps every request's method, URL and headers."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def sim():
    with SimServer(time_scale=0.002, seed=7) as server:
        yield server


@pytest.fixture
def make_lab(sim, tmp_path):
    labs: list[Lab] = []

    def _make(protocol: str = "dashscope", **kw) -> Lab:
        base = sim.dashscope_url(kw.get("region", "singapore")) if protocol == "dashscope" else sim.wavespeed_url
        kw.setdefault("api_key", KEY)
        kw.setdefault("time_scale", 0.002)
        kw.setdefault("retry", FAST_RETRY)
        kw.setdefault("media_dir", tmp_path / "media")
        lab = Lab(provider=protocol, base_url=base, **kw)
        labs.append(lab)
        return lab

    yield _make
    for lab in labs:
        lab.close()
