"""Per host and key: a request-rate limit (token bucket) and a concurrent-job limit, so a sweep drips
instead of bursting. Defaults are the hosts' published limits; every figure is a setting."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    submits_per_s: float
    queries_per_s: float
    concurrent_jobs: int

    @classmethod
    def for_host(cls, host: str) -> "Limits":
        if host == "dashscope":
            # 5 submits/s and 5 concurrent tasks per account; query/list/cancel 20 QPS [doc]
            return cls(submits_per_s=5.0, queries_per_s=20.0, concurrent_jobs=5)
        # WaveSpeed Bronze level (the most restrictive published row: 5 videos/min, 2–3 concurrent).
        # Higher account levels raise these: Lab(limits=Limits(...)).
        return cls(submits_per_s=5 / 60, queries_per_s=10.0, concurrent_jobs=3)


class RateLimiter:
    """A token bucket: `rate` per second, bursts up to `burst`. Waiters are served in arrival order."""

    def __init__(self, rate: float, burst: float | None = None):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            self._refill()
            if self._tokens < 1:
                delay = (1 - self._tokens) / self.rate
                await asyncio.sleep(delay)
                waited = delay
                self._refill()
            self._tokens -= 1
        return waited

    def penalise(self, seconds: float) -> None:
        """The host said 429: nobody on this bucket sends for `seconds`."""
        self._refill()
        self._tokens = min(self._tokens, 1 - seconds * self.rate)
