"""The fewest polls for an accepted lateness: fit the run time of similar runs, then choose when to start
polling and how often, by expectation over that fit.

A job's run time T (host seconds from the run's start to its end) is modelled log-normal, fitted to the
log's history of similar runs: the median and spread of their logarithms, widened for a small sample the way
a predictive distribution is (s·√(1 + 1/n), times Student's t over the normal quantile at 5 %: three runs
say little about the spread), with a floor for clock and poll jitter. Simulated over 1,500 draws of three
runs each (σ = 0.15, late=2): 2.2 s late on average — without the t factor 3.2 s. The plan polls first at
`start` after the run's start, then every `gap`; a run that ends at T is seen at the first poll at or after
T, `late` = that poll − T. Over a grid of (start, gap) the plan minimises the expected number of polls subject
to the expected lateness being at most what the user accepts. numpy is imported when a plan is made, never
at `import wanlab`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any

SPREAD_FLOOR = 0.03  # log-spread of identical runs: poll and clock jitter, never a zero-width window
PRIOR_SPREAD = 0.25  # without history: the catalog's run time is a rough guess
_POINTS = 160  # quantile points of the fit the expectations are taken over
# Student's t at one-sided 5 % by degrees of freedom (beyond 30: the normal's 1.645)
_T05 = {
    1: 6.314,
    2: 2.920,
    3: 2.353,
    4: 2.132,
    5: 2.015,
    6: 1.943,
    7: 1.895,
    8: 1.860,
    9: 1.833,
    10: 1.812,
    12: 1.782,
    15: 1.753,
    20: 1.725,
    30: 1.697,
}


@dataclass(frozen=True)
class Plan:
    start: float  # host seconds after the run's start: the first poll of the run phase
    gap: float  # then one poll every `gap` host seconds
    polls: float  # expected polls in the run phase
    late: float  # expected host seconds between the end and the poll that sees it
    median: float  # the fit: median run time (host seconds) …
    spread: float  # … and the log-spread used (≈ relative spread)
    n: int  # similar runs it was fitted to (0: the catalog's prior)
    tail: float  # past this (host seconds after the run's start), gaps grow: a stuck task costs few polls

    def describe(self) -> str:
        source = f"{self.n} similar runs in the log" if self.n else "the catalog's run-time guess (no history)"
        return (
            f"from {source}: median run {self.median:.1f} s, spread ±{self.spread * 100:.0f} %; first poll "
            f"{self.start:.1f} s after the run starts, then every {self.gap:.2f} s — expect ~{self.polls:.1f} "
            f"polls, ~{self.late:.2f} s late (host seconds)"
        )


def fit(history: Sequence[float], prior_median: float) -> tuple[float, float, int]:
    """(median, log-spread, n) of run times; the prior when fewer than two usable runs."""
    runs = [float(r) for r in history if r is not None and math.isfinite(r) and r > 0]
    if len(runs) < 2:
        return prior_median, PRIOR_SPREAD, 0
    logs = [math.log(r) for r in runs]
    n = len(logs)
    mu = sum(logs) / n
    s = math.sqrt(sum((v - mu) ** 2 for v in logs) / (n - 1))
    df = n - 1
    t = _T05[max(k for k in _T05 if k <= df)] if df <= 30 else 1.645
    spread = math.hypot(s * math.sqrt(1 + 1 / n) * t / 1.645, SPREAD_FLOOR)
    return math.exp(mu), spread, n


def plan(history: Sequence[float], late: float, prior_median: float) -> Plan:
    return _fitted(tuple(history), late, prior_median)


@lru_cache(maxsize=256)  # a job asks once per poll with the same history: fit it once
def _fitted(history: tuple[float, ...], late: float, prior_median: float) -> Plan:
    median, spread, n = fit(history, prior_median)
    # A plan scales with the median: made once per (spread, late / median) in units of the median, both to 2
    # significant digits (the lateness ratio rounded down, so the promise holds), then scaled. Jobs whose
    # history grew by one run mostly share a plan (one is ~1 ms of numpy).
    unit = _unit_plan(float(f"{spread:.2g}"), _round_down(late / median))
    return Plan(
        start=unit.start * median,
        gap=unit.gap * median,
        polls=unit.polls,
        late=unit.late * median,
        median=median,
        spread=spread,
        n=min(n, 50),
        tail=unit.tail * median,
    )


def _round_down(x: float) -> float:
    """`x` to 2 significant digits, towards zero."""
    if x <= 0:
        return x
    step = 10 ** (math.floor(math.log10(x)) - 1)
    return math.floor(x / step + 1e-9) * step


@lru_cache(maxsize=256)
def _unit_plan(spread: float, late: float) -> Plan:
    """The plan for a median run of 1 (times and `late` in medians)."""
    import numpy as np

    t = np.exp(spread * _z())  # run-time quantiles, ascending
    starts = np.unique(np.concatenate([t[[0, 2, 4, 8, 16, 32, 48, 64, 80]], t[0] * np.array([0.5, 0.8, 0.9])]))
    gaps = np.geomspace(max(1e-4, late / 8), max(late * 4, (t[-1] - t[0]) / 2, 1e-3), 32)
    s, g = starts[:, None, None], gaps[None, :, None]
    k = np.ceil(np.maximum(t[None, None, :] - s, 0.0) / g)  # polls after the first one
    seen = s + k * g
    mean_late = (seen - t).mean(axis=2)
    mean_polls = (1 + k).mean(axis=2)
    ok = mean_late <= late + 1e-12
    if ok.any():
        score = np.where(ok, mean_polls + mean_late * 1e-6, np.inf)  # fewest polls, then least late
    else:
        score = mean_late  # nothing meets it (a tiny `late`): the least late plan
    i, j = np.unravel_index(int(np.argmin(score)), score.shape)
    return Plan(
        start=float(starts[i]),
        gap=float(gaps[j]),
        polls=float(mean_polls[i, j]),
        late=float(mean_late[i, j]),
        median=1.0,
        spread=spread,
        n=0,
        tail=float(t[-1]) * 1.2,
    )


@lru_cache(maxsize=1)
def _z() -> Any:  # a numpy array; numpy is not imported at module level
    import numpy as np

    normal = NormalDist()
    return np.array([normal.inv_cdf((i + 0.5) / _POINTS) for i in range(_POINTS)])


def next_in_run(p: Plan, since_running: float, max_gap: float) -> float:
    """Host seconds to the next poll, `since_running` after the run's start. On the plan's grid; a poll
    that would come within a quarter gap of the last one moves one gap on; past the tail the gap grows by
    itself for every tenth of the median run overdue, up to `max_gap`."""
    if since_running < p.start - 0.25 * p.gap:
        return p.start - since_running
    if since_running > p.tail:  # later than history's latest plausible end: as the old EtaPoll, ever gentler
        return min(max_gap, p.gap * (1 + 10 * (since_running - p.tail) / p.median))
    steps = math.floor((since_running - p.start) / p.gap) + 1
    delay = p.start + steps * p.gap - since_running
    return delay + p.gap if delay < 0.25 * p.gap else delay
