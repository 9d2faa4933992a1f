"""When to try again: `Retry-After` parsing and jittered exponential backoff with a budget. Pure (no I/O)."""
from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass

from . import checks
from .errors import ConfigError


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header, in either form RFC 9110 allows: delta-seconds or an
    HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():              # RFC 9110 delta-seconds: digits only (no "inf", no "1e400")
        return float(value)
    try:
        seconds = float(value)       # lenient: some servers send "1.5"
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
    time_scale: float = 1.0      # the embedded sim runs host time faster; backoffs follow it

    def __post_init__(self) -> None:
        # NaN or negative waits would make the backoff loop spin or sleep forever
        rules = {"max_attempts": dict(minimum=1, integer=True), "base_s": dict(minimum=0),
                 "max_backoff_s": dict(minimum=0), "retry_after_cap_s": dict(minimum=0),
                 "budget_s": dict(minimum=0), "time_scale": dict(positive=True)}
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
