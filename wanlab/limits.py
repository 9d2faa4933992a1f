"""Per host and key: a request-rate limit (token bucket) and a concurrent-job limit, so a sweep drips
instead of bursting. Defaults are the hosts' published limits; every figure is a setting."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from . import _checks as checks
from .errors import ConfigError


@dataclass(frozen=True)
class Limits:
    submits_per_s: float
    queries_per_s: float
    concurrent_jobs: int

    def __post_init__(self) -> None:
        # A zero, negative or NaN figure would leave every job QUEUED forever: refuse it here.
        for name, integer in (("submits_per_s", False), ("queries_per_s", False), ("concurrent_jobs", True)):
            value = checks.check_number(
                name,
                getattr(self, name),
                positive=True,
                integer=integer,
                where="Limits",
                error=ConfigError,
                hint=" (e.g. Limits.for_host('dashscope'): 5, 20, 5)",
            )
            object.__setattr__(self, name, value)

    @classmethod
    def for_host(cls, host: str) -> Limits:
        if host == "dashscope":
            # 5 submits/s and 5 concurrent tasks per account; query/list/cancel 20 QPS [doc]
            return cls(submits_per_s=5.0, queries_per_s=20.0, concurrent_jobs=5)
        # WaveSpeed Bronze level (the most restrictive published row: 5 videos/min, 2–3 concurrent).
        # Higher account levels raise these: Lab(limits=Limits(...)).
        return cls(submits_per_s=5 / 60, queries_per_s=10.0, concurrent_jobs=3)


class RateLimiter:
    """A token bucket: about `rate` per second, bursts up to `burst`. Waiters are served in arrival order.

    Why the bucket drips a little slower than `rate`: hosts count requests in a sliding window (the
    sim refuses the (n+1)th request of a key within any `window_s`, engine.RateWindow). A request
    granted on time can reach the host late (busy cores, the GIL, the network), and when callers wait
    for each answer before the next acquire (submits do), the next request then lands right behind
    the late one: in any window one gap between arrivals can shrink to nothing, however large the
    jitter. So the drip makes n-1 gaps span the window (pace = rate * (n-1)/n, n = rate * window_s):
    of the n gaps between n+1 arrivals at most one collapses, the other n-1 still span the window,
    so the host never sees more than n in one window, however late requests arrive. At slow paces
    (n <= 2, e.g. 5/min on a 1 s window) a gap shrinks only by the lateness itself: 5 % under the rate
    covers that. (Both margins at once, as before, only slowed a sweep: 3.75 submits/s instead of 4.)"""

    def __init__(self, rate: float, burst: float | None = None, window_s: float = 1.0):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        n = rate * window_s
        self.rate = rate * (n - 1) / n if n > 2 else rate * 0.95
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
