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


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every Lab a test makes logs under the test's own folder, never the checkout's."""
    monkeypatch.setenv("WANLAB_HOME", str(tmp_path / "wanlab-home"))


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
        kw.setdefault("home", tmp_path / "runs")
        lab = Lab(provider=protocol, base_url=base, **kw)
        labs.append(lab)
        return lab

    yield _make
    for lab in labs:
        lab.close()
