"""How often to ask "is it done yet?". Each policy turns what is known about a job into the next wait.

Times are host seconds; the Lab multiplies by its time scale (1.0 on real hosts, the sim's scale when
embedded). The client's query rate limiter bounds every policy from below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from . import _checks as checks
from . import _poll_plan as planning
from .errors import ConfigError
from .providers.base import Status

if TYPE_CHECKING:
    from .catalog import ModelSpec


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
    # run seconds (host) of similar finished runs in the log (same model, resolution, host and region,
    # duration band), scaled to this job's duration: what a learning policy plans from
    history: tuple[float, ...] = ()


class PollPolicy(Protocol):
    def next_delay(self, state: PollState) -> float: ...


def duration_band(duration: float) -> tuple[int, int]:
    """Durations whose runs say something about this one's (scaled by the catalog's latency model)."""
    return max(0, math.floor(duration * 0.7)), math.ceil(duration * 1.4)


def scaled_history(
    spec: ModelSpec, resolution: str, duration: float, runs: Iterable[tuple[float, int]], time_scale: float
) -> tuple[float, ...]:
    """Run seconds of similar runs (real seconds, as logged), in host seconds as if each had been
    `duration` long: a 4 s run's time × the catalog's expected-latency ratio of `duration` to 4 s."""
    target = spec.expected_latency(resolution, duration)
    return tuple(r / time_scale * target / spec.expected_latency(resolution, d) for r, d in runs)


def describe(policy: PollPolicy, state: PollState) -> str:
    """Which policy polls this job and why, in words (the job's events and card show it)."""
    own = getattr(policy, "describe", None)
    return own(state) if callable(own) else f"{type(policy).__name__}"


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

    def describe(self, state: PollState) -> str:
        return f"host cadence: {', '.join(f'{s:g}' for s in self.schedule)} s, then every {self.schedule[-1]:g} s"


@dataclass(frozen=True)
class FixedInterval:
    """A fixed period (the seed's advice is 15 s); kept for comparisons."""

    seconds: float = 15.0

    def __post_init__(self) -> None:
        _check_policy(self, {"seconds": dict(positive=True)})

    def next_delay(self, state: PollState) -> float:
        return self.seconds

    def describe(self, state: PollState) -> str:
        return f"every {self.seconds:g} s"


@dataclass(frozen=True)
class EtaPoll:
    """Sleep through the part of the job that is certainly not done, then poll a few times around the
    expected end. The first poll comes early to learn whether the task queues or runs; once it runs, the
    estimate is anchored on the run's start (the host's `scheduled_time`, put on the client's clock by
    the client; else the midpoint between the last PENDING and first RUNNING poll).

    `late` says what you value: the mean lateness you accept (host seconds between the end and the poll
    that sees it). With it the run phase is planned from the spread of similar runs in the log (or the
    catalog's guess, ±25 %, without history) for the fewest polls at that lateness (`wanlab._poll_plan`).

    Without `late`: `expected` overrides the catalog's estimate (e.g. the median of similar runs in the
    log); `gap` is the dense-phase period (host seconds), which bounds lateness when the estimate is right;
    `lead_in` dense polls come before the expected end. A job later than its estimate is polled ever more
    gently, up to `max_gap`."""

    expected: float | None = None
    late: float | None = None
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
                "late": dict(positive=True, allow_none=True),
                "first": dict(minimum=0),
                "gap": dict(positive=True),
                "lead_in": dict(minimum=0, integer=True),
                "max_gap": dict(positive=True),
                "pending_fraction": dict(minimum=0),
            },
        )

    def plan(self, state: PollState) -> planning.Plan | None:
        if self.late is None:
            return None
        prior = self.expected if self.expected is not None else state.expected_run
        return planning.plan(state.history, self.late, prior)

    def describe(self, state: PollState) -> str:
        plan = self.plan(state)
        if plan is not None:
            return f"EtaPoll(late={self.late:g}) {plan.describe()}"
        run = self.expected if self.expected is not None else state.expected_run
        return f"EtaPoll: expected run {run:.1f} s, polls every {self.gap:g} s around it"

    def next_delay(self, state: PollState) -> float:
        run = self.expected if self.expected is not None else state.expected_run
        plan = self.plan(state)
        if plan is not None:
            run = plan.median
        if state.polls == 0:
            return min(self.first, run * 0.85)
        if plan is not None and state.since_running is not None:
            return planning.next_in_run(plan, state.since_running, self.max_gap)
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


@dataclass(frozen=True)
class LearnedPoll:
    """wanlab's default: the host's cadence until the log holds `min_history` similar finished runs (same
    model, resolution, host and region, duration band), then `EtaPoll(late=late)` planned from their spread:
    it sleeps through the part of the run history says is certainly not done and polls densely over the
    window where such runs usually end. `late` is the mean lateness you accept, in host seconds."""

    late: float = 2.0
    min_history: int = 3
    cadence: HostCadence = HostCadence()

    def __post_init__(self) -> None:
        _check_policy(self, {"late": dict(positive=True), "min_history": dict(minimum=2, integer=True)})

    @property
    def _learned(self) -> EtaPoll:
        eta = self.__dict__.get("_eta")
        if eta is None:  # one EtaPoll per policy, not one per poll
            eta = EtaPoll(late=self.late)
            object.__setattr__(self, "_eta", eta)
        return eta

    def _policy(self, state: PollState) -> PollPolicy:
        return self._learned if len(state.history) >= self.min_history else self.cadence

    def next_delay(self, state: PollState) -> float:
        return self._policy(state).next_delay(state)

    def describe(self, state: PollState) -> str:
        if len(state.history) >= self.min_history:
            return f"learned: {describe(self._policy(state), state)}"
        return (
            f"{self.cadence.describe(state)} — {len(state.history)} similar run(s) in the log, "
            f"{self.min_history} needed to learn when runs like this end"
        )
