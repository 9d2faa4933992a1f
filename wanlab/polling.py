"""How often to ask "is it done yet?". Each policy turns what is known about a job into the next wait.

Times are host seconds; the Lab multiplies by its time scale (1.0 on real hosts, the sim's scale when
embedded). The client's query rate limiter bounds every policy from below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .providers.base import Status


@dataclass(frozen=True)
class PollState:
    polls: int                 # polls made so far
    since_submit: float        # host seconds since the submit was accepted
    since_running: float | None  # host seconds since the task was first seen RUNNING
    status: Status
    expected_run: float        # the catalog's (or the log's) estimate of run time, host seconds


class PollPolicy(Protocol):
    def next_delay(self, state: PollState) -> float: ...


@dataclass(frozen=True)
class HostCadence:
    """The cadence the DashScope SDK's `wait` uses (1, 1, 2, 2, 2, 4, 4, 4, 5, 5, … s): the hosts'
    own advice, and wanlab's default."""

    schedule: tuple[float, ...] = (1, 1, 2, 2, 2, 4, 4, 4, 5)

    def next_delay(self, state: PollState) -> float:
        return self.schedule[min(state.polls, len(self.schedule) - 1)]


@dataclass(frozen=True)
class FixedInterval:
    """A fixed period (the seed's advice is 15 s); kept for comparisons."""

    seconds: float = 15.0

    def next_delay(self, state: PollState) -> float:
        return self.seconds


@dataclass(frozen=True)
class EtaPoll:
    """Sleep through the part of the job that is certainly not done, then poll densely around the
    expected end. The first poll comes early to learn whether the task queues or runs; once RUNNING is
    seen, the estimate re-anchors on that moment (run time is steadier than queue time).

    `expected` overrides the catalog's estimate (e.g. the median of similar runs in the log);
    `lead` is the fraction of the estimate slept before the dense phase; `gap` the dense-phase period
    (host seconds), which is also the worst-case lateness."""

    expected: float | None = None
    lead: float = 0.85
    gap: float = 1.5
    first: float = 3.0
    max_gap: float = 30.0

    def next_delay(self, state: PollState) -> float:
        run = self.expected if self.expected is not None else state.expected_run
        if state.polls == 0:
            return min(self.first, run * self.lead)
        if state.since_running is None:
            if state.status is Status.PENDING:       # queued on the host: the run has not started
                return min(self.max_gap, max(self.gap, run * 0.25))
            remaining = run * self.lead - state.since_submit
        else:
            remaining = run * self.lead - state.since_running
        if remaining > self.gap:
            return min(remaining, self.max_gap * 4)
        overdue = -remaining - run * (1 - self.lead)
        if overdue > 0:   # later than the estimate: back off gently so a slow job does not cost 100 polls
            return min(self.max_gap, self.gap * (1 + overdue / max(run * 0.1, 1.0)))
        return self.gap
