"""How often to ask "is it done yet?". Each policy turns what is known about a job into the next wait.

Times are host seconds; the Lab multiplies by its time scale (1.0 on real hosts, the sim's scale when
embedded). The client's query rate limiter bounds every policy from below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from . import _checks as checks
from .errors import ConfigError
from .providers.base import Status


def _check_policy(policy: object, rules: dict[str, dict]) -> None:
    """Normalise a frozen policy's numeric fields; a zero or NaN period would poll in a tight loop."""
    for name, rule in rules.items():
        value = checks.check_number(name, getattr(policy, name), where=type(policy).__name__, error=ConfigError, **rule)
        object.__setattr__(policy, name, value)


@dataclass(frozen=True)
class PollState:
    polls: int  # polls made so far
    since_submit: float  # host seconds since the submit was accepted
    since_running: float | None  # host seconds since the task was first seen RUNNING
    status: Status
    expected_run: float  # the catalog's (or the log's) estimate of run time, host seconds


class PollPolicy(Protocol):
    def next_delay(self, state: PollState) -> float: ...


@dataclass(frozen=True)
class HostCadence:
    """The cadence the DashScope SDK's `wait` uses (1, 1, 2, 2, 2, 4, 4, 4, 5, 5, … s): the hosts'
    own advice, and wanlab's default."""

    schedule: tuple[float, ...] = (1, 1, 2, 2, 2, 4, 4, 4, 5)

    def __post_init__(self) -> None:
        if (
            isinstance(self.schedule, (str, bytes))
            or not hasattr(self.schedule, "__iter__")
            or len(list(self.schedule)) == 0
        ):
            raise ConfigError(
                f"HostCadence: schedule={self.schedule!r} must be a non-empty list of seconds, e.g. (1, 2, 4, 5)"
            )
        object.__setattr__(
            self,
            "schedule",
            tuple(
                checks.check_number(f"schedule[{i}]", s, positive=True, where="HostCadence", error=ConfigError)
                for i, s in enumerate(self.schedule)
            ),
        )

    def next_delay(self, state: PollState) -> float:
        return self.schedule[min(state.polls, len(self.schedule) - 1)]


@dataclass(frozen=True)
class FixedInterval:
    """A fixed period (the seed's advice is 15 s); kept for comparisons."""

    seconds: float = 15.0

    def __post_init__(self) -> None:
        _check_policy(self, {"seconds": dict(positive=True)})

    def next_delay(self, state: PollState) -> float:
        return self.seconds


@dataclass(frozen=True)
class EtaPoll:
    """Sleep through the part of the job that is certainly not done, then poll a few times around the
    expected end. The first poll comes early to learn whether the task queues or runs; once it runs, the
    estimate is anchored on the run's start (the host's `scheduled_time`, put on the client's clock by
    the client; else the midpoint between the last PENDING and first RUNNING poll).

    `expected` overrides the catalog's estimate (e.g. the median of similar runs in the log); `gap` is
    the dense-phase period (host seconds), which bounds lateness when the estimate is right; `lead_in`
    dense polls come before the expected end. A job later than its estimate is polled ever more
    gently, up to `max_gap`."""

    expected: float | None = None
    first: float = 3.0
    gap: float = 1.5
    lead_in: int = 1
    max_gap: float = 30.0
    pending_fraction: float = 0.05

    def __post_init__(self) -> None:
        _check_policy(
            self,
            {
                "expected": dict(positive=True, allow_none=True),
                "first": dict(minimum=0),
                "gap": dict(positive=True),
                "lead_in": dict(minimum=0, integer=True),
                "max_gap": dict(positive=True),
                "pending_fraction": dict(minimum=0),
            },
        )

    def next_delay(self, state: PollState) -> float:
        run = self.expected if self.expected is not None else state.expected_run
        if state.polls == 0:
            return min(self.first, run * 0.85)
        if state.since_running is None:
            if state.status is Status.PENDING:
                # queued on the host: short gaps first (without host times, the run's start is only known
                # to within the gap around it), growing for a long queue
                return min(self.max_gap, max(self.gap, run * self.pending_fraction * 2 ** (state.polls - 1)))
            elapsed = state.since_submit
        else:
            elapsed = state.since_running
        remaining = run - elapsed
        dense = self.lead_in * self.gap
        if remaining > dense:
            return min(remaining - dense, self.max_gap * 4)
        overdue = -remaining - 0.1 * run  # 10 % past the estimate is still on time
        if overdue > 0:
            return min(self.max_gap, self.gap * (1 + overdue / max(run * 0.1, 1.0)))
        return self.gap
