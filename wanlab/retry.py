"""When to try again: `Retry-After` parsing, jittered exponential backoff with a budget, and the one
retry loop every call uses (polls, uploads, submits, downloads), driven by a classifier of outcomes.
No network I/O here: the attempt is the caller's."""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import _checks as checks
from .errors import ConfigError


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header, in either form RFC 9110 allows: delta-seconds or an
    HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():  # RFC 9110 delta-seconds: digits only (no "inf", no "1e400")
        return float(value)
    try:
        seconds = float(value)  # lenient: some servers send "1.5"
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for idempotent calls (polls, downloads, uploads' policy fetch) and for submits the host
    refused before accepting (429, 503).

    `max_attempts` counts tries per call; `budget_s` caps the total time spent waiting on one call;
    a `Retry-After` above `retry_after_cap_s` is clamped to it (and the clamp is visible in job events).
    """

    max_attempts: int = 8
    base_s: float = 0.5
    max_backoff_s: float = 30.0
    retry_after_cap_s: float = 120.0
    budget_s: float = 600.0
    time_scale: float = 1.0  # the embedded sim runs host time faster; backoffs follow it

    def __post_init__(self) -> None:
        # NaN or negative waits would make the backoff loop spin or sleep forever
        rules: dict[str, dict[str, Any]] = {
            "max_attempts": dict(minimum=1, integer=True),
            "base_s": dict(minimum=0),
            "max_backoff_s": dict(minimum=0),
            "retry_after_cap_s": dict(minimum=0),
            "budget_s": dict(minimum=0),
            "time_scale": dict(positive=True),
        }
        for name, rule in rules.items():
            value = checks.check_number(name, getattr(self, name), where="RetryPolicy", error=ConfigError, **rule)
            object.__setattr__(self, name, value)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before try number `attempt + 1` (attempt counts from 1). `Retry-After` wins when given:
        the host said when; otherwise full jitter over an exponential ceiling."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap_s)
        ceiling = min(self.max_backoff_s, self.base_s * 2 ** (attempt - 1)) * self.time_scale
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to, as its caller classified it: `done` (with the value), `retry` (why, and
    the host's Retry-After if it gave one) or `fail` (the error to raise now)."""

    kind: str  # "done" | "retry" | "fail"
    value: Any = None
    why: str = ""
    retry_after: float | None = None

    @classmethod
    def done(cls, value: Any) -> Outcome:
        return cls("done", value)

    @classmethod
    def retry(cls, why: str, retry_after: float | None = None, value: Any = None) -> Outcome:
        return cls("retry", value, why, retry_after)

    @classmethod
    def fail(cls, error: BaseException) -> Outcome:
        return cls("fail", error)


async def retrying(
    attempt: Callable[[int], Awaitable[Outcome]],
    policy: RetryPolicy,
    rng: random.Random,
    *,
    give_up: Callable[[Outcome, int], Any],
    on_retry: Callable[[Outcome, int, float], None],
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Run `attempt(n)` until it is done or fails, waiting between tries as `policy` says. When tries or the
    time budget run out, `give_up(last_outcome, tries)` returns the result or raises."""
    started = clock()
    tries = 0
    while True:
        tries += 1
        out = await attempt(tries)
        if out.kind == "done":
            return out.value
        if out.kind == "fail":
            raise out.value
        if tries >= policy.max_attempts or clock() - started > policy.budget_s:
            return give_up(out, tries)
        delay = policy.delay(tries, out.retry_after, rng)
        on_retry(out, tries, delay)
        await asyncio.sleep(delay)
