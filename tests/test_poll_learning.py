"""The default poll policy learns from the log: host cadence without history, then a plan from the spread of
similar runs for the fewest polls at an accepted lateness. Jobs are stepped through the policies on a
simulated clock (no sleeping); one test runs real jobs on the embedded sim and reads their events."""
from __future__ import annotations

import math
import random

import pytest

from wanlab import T2V, Lab, catalog
from wanlab._poll_plan import fit, next_in_run, plan
from wanlab.errors import ConfigError
from wanlab.polling import EtaPoll, HostCadence, LearnedPoll, PollState, duration_band, scaled_history
from wanlab.providers.base import Status

from .test_retry_polling import simulate


def _history_state(history, **kw):
    base = dict(polls=0, since_submit=0.0, since_running=None, status=Status.PENDING, expected_run=120.0)
    base.update(kw)
    return PollState(history=tuple(history), **base)


def _walk(policy, history, *, queue, run, expected=120.0, max_polls=2000):
    """`simulate` from test_retry_polling, with a history in every state."""
    t, polls, status, seen, delays = 0.0, 0, Status.PENDING, None, []
    while polls < max_polls:
        state = _history_state(history, polls=polls, since_submit=t,
                               since_running=None if seen is None else t - seen, status=status, expected_run=expected)
        d = policy.next_delay(state)
        assert d >= 0
        delays.append(d)
        t += d
        polls += 1
        status = Status.SUCCEEDED if t >= queue + run else Status.RUNNING if t >= queue else Status.PENDING
        if status is Status.RUNNING and seen is None:
            seen = queue
        if status.terminal:
            return polls, t - queue - run, delays
    raise AssertionError("never done")


def test_without_history_the_default_is_the_host_cadence():
    learned, cadence = LearnedPoll(), HostCadence()
    for polls in range(12):
        state = _history_state([120.0, 121.0], polls=polls)           # two runs: not enough
        assert learned.next_delay(state) == cadence.next_delay(state)
    assert "2 similar run(s)" in learned.describe(_history_state([120.0, 121.0]))


def test_exact_history_few_polls_within_the_accepted_lateness():
    history = [120.0, 120.0, 120.0]
    polls, late, _ = _walk(LearnedPoll(late=2.0), history, queue=4, run=120)
    assert polls <= 5 and 0 <= late <= 2.0, (polls, late)
    cadence_polls, _, _ = simulate(HostCadence(), queue=4, run=120, expected=120)
    assert polls * 4 < cadence_polls
    assert "learned" in LearnedPoll().describe(_history_state(history))


def test_noisy_history_mean_lateness_near_what_was_accepted_with_far_fewer_polls():
    rng = random.Random(5)
    polls, lates = [], []
    for _ in range(300):   # three similar runs in the log, a new one drawn from the same spread (σ = 0.15)
        history = [120 * math.exp(0.15 * rng.gauss(0, 1)) for _ in range(3)]
        run = 120 * math.exp(0.15 * rng.gauss(0, 1))
        n, late, _ = _walk(LearnedPoll(late=2.0), history, queue=4, run=run)
        polls.append(n)
        lates.append(late)
    cadence_polls, _, _ = simulate(HostCadence(), queue=4, run=120, expected=120)
    assert sum(lates) / len(lates) <= 2.0 * 1.35       # small samples understate the spread a little
    assert sum(polls) / len(polls) < cadence_polls * 0.75


def test_accepting_more_lateness_buys_fewer_polls():
    history = [110.0, 125.0, 131.0, 118.0, 122.0]
    tight, loose = plan(history, 0.5, 120.0), plan(history, 6.0, 120.0)
    assert tight.late <= 0.5 + 1e-9 and loose.late <= 6.0 + 1e-9
    assert loose.polls < tight.polls


def test_the_plan_sleeps_through_what_history_says_is_certainly_not_done():
    p = plan([120.0, 121.0, 119.0, 120.5], 2.0, 120.0)
    assert 100 < p.start < 120
    assert next_in_run(p, 0.0, 30.0) == pytest.approx(p.start)


def test_a_stuck_task_costs_few_polls():
    polls, late, delays = _walk(LearnedPoll(late=2.0), [120.0, 121.0, 119.0], queue=0, run=120 * 20)
    assert max(delays) <= EtaPoll().max_gap * 4 and late <= EtaPoll().max_gap
    assert polls < 120, polls                   # gaps grow past the window where such runs end


def test_fit_falls_back_to_the_prior_and_widens_small_samples():
    assert fit([], 90.0) == (90.0, 0.25, 0)
    _, spread3, _ = fit([100.0, 110.0, 121.0], 1.0)
    _, spread30, _ = fit([100.0, 110.0, 121.0] * 10, 1.0)
    assert spread3 > spread30                     # three runs say little about the spread


def test_history_is_scaled_to_the_job_duration_and_band():
    spec = catalog.get_model("wan2.7-t2v")
    (scaled,) = scaled_history(spec, "720P", 10, [(1.0, 5)], time_scale=0.01)
    assert scaled == pytest.approx(100 * spec.expected_latency("720P", 10) / spec.expected_latency("720P", 5))
    assert duration_band(5) == (3, 7) and duration_band(2) == (1, 3)


def test_policy_arguments_are_checked():
    with pytest.raises(ConfigError):
        LearnedPoll(late=0)
    with pytest.raises(ConfigError):
        EtaPoll(late=float("nan"))


def test_a_lab_learns_after_three_similar_runs_and_says_so(tmp_path):
    with Lab(provider="sim", time_scale=0.002, home=tmp_path, quiet=True, measure=False) as lab:
        first = [lab.run_sync(T2V("a kite", duration=5, seed=s), timeout=120) for s in (1, 2, 3)]
        said = [next(e.detail for e in j.events if e.kind == "poll_policy") for j in first]
        assert all(s.startswith("host cadence") for s in said), said
        later = lab.run_sync(T2V("a kite", duration=6, seed=4), timeout=120)    # same band: 4–8 s
        text = next(e.detail for e in later.events if e.kind == "poll_policy")
        assert text.startswith("learned") and "3 similar runs" in text, text
        assert later.status is Status.SUCCEEDED
        assert lab.log.get(later.id)["polls"] == later.polls


def test_wavespeed_history_is_the_hosts_inference_time_not_the_poll_gaps(tmp_path):
    """WaveSpeed reports no run start or end, but a finished task's `timings.inference`: that is what the
    default learns from, so history does not carry the poll gaps of earlier runs."""
    with Lab(provider="sim", protocol="wavespeed", time_scale=0.002, home=tmp_path, quiet=True,
             measure=False) as lab:
        job = lab.run_sync(T2V("a kite", duration=5, seed=1), timeout=120)
        assert job.status is Status.SUCCEEDED
        host = job.usage["inference_ms"] / 1000
        client_view = job.timings["ended"] - job.timings["scheduled"]
        assert job.run_time == pytest.approx(host)
        assert lab.log.get(job.id)["run_s"] == pytest.approx(host)
        assert client_view != pytest.approx(host, abs=1e-6)  # the client saw it through its polls
