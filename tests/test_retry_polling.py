"""wanlab.retry, wanlab.polling, wanlab.limits and wanlab.secret: backoff, poll cadence (a simulated job
stepped through each policy), the token bucket, and the API key's masking."""
from __future__ import annotations

import asyncio
import copy
import email.utils
import logging
import pickle
import random
import time

import pytest

from wanlab.limits import Limits, RateLimiter
from wanlab.polling import EtaPoll, FixedInterval, HostCadence, PollState
from wanlab.providers.base import Status
from wanlab.retry import RetryPolicy, parse_retry_after
from wanlab.secret import Secret

# --------------------------------------------------------------------------------------------------
# Retry-After
# --------------------------------------------------------------------------------------------------

NOW = 1_775_000_000.0   # a fixed "now" for HTTP-date cases


@pytest.mark.parametrize("value, expected", [
    ("5", 5.0), (" 12 ", 12.0), ("2.5", 2.5), ("0", 0.0),
    ("-3", 0.0),                                        # negative: now
    (None, None), ("", None), ("soon", None), ("5 seconds", None), ("Tomorrow, 99 Foo 2026", None),
])
def test_parse_retry_after_forms(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_http_date():
    future = email.utils.formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(future, now=NOW) == pytest.approx(90.0, abs=1.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=NOW) == 0.0      # past date → 0
    assert parse_retry_after(email.utils.formatdate(NOW - 5, usegmt=True), now=NOW) == 0.0


def test_parse_retry_after_http_date_uses_wall_clock_by_default():
    future = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 57 <= parse_retry_after(future) <= 61


@pytest.mark.parametrize("value", ["inf", "1e400", "Infinity"])
def test_parse_retry_after_rejects_non_finite(value):
    got = parse_retry_after(value, now=NOW)
    assert got is None or got < 1e6


# --------------------------------------------------------------------------------------------------
# RetryPolicy
# --------------------------------------------------------------------------------------------------

def test_retry_after_wins_and_is_capped():
    p = RetryPolicy(retry_after_cap_s=120.0)
    rng = random.Random(1)
    assert p.delay(1, 7.0, rng) == 7.0
    assert p.delay(5, 0.0, rng) == 0.0
    assert p.delay(1, 500.0, rng) == 120.0
    assert RetryPolicy(retry_after_cap_s=10).delay(3, 11.0, rng) == 10.0


@pytest.mark.parametrize("time_scale", [1.0, 0.01])
def test_backoff_full_jitter_within_bounds(time_scale):
    p = RetryPolicy(base_s=0.5, max_backoff_s=30.0, time_scale=time_scale)
    rng = random.Random(42)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1)) * time_scale
        samples = [p.delay(attempt, None, rng) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples), attempt
        assert max(samples) - min(samples) > 0.3 * (ceiling / 2), "no jitter"
    # the ceiling stops at max_backoff_s
    assert max(p.delay(20, None, rng) for _ in range(100)) <= 30.0 * time_scale


def test_backoff_grows_and_is_reproducible_with_a_seed():
    p = RetryPolicy()
    a = [p.delay(n, None, random.Random(3)) for n in range(1, 8)]
    b = [p.delay(n, None, random.Random(3)) for n in range(1, 8)]
    assert a == b
    means = [sum(p.delay(n, None, random.Random(i)) for i in range(50)) / 50 for n in range(1, 7)]
    assert means == sorted(means)


def test_time_scale_scales_backoff():
    rng1, rng2 = random.Random(9), random.Random(9)
    full = RetryPolicy().delay(4, None, rng1)
    fast = RetryPolicy(time_scale=0.01).delay(4, None, rng2)
    assert fast == pytest.approx(full * 0.01)


# --------------------------------------------------------------------------------------------------
# Poll policies
# --------------------------------------------------------------------------------------------------

def _state(polls=0, since_submit=0.0, since_running=None, status=Status.PENDING, expected=120.0):
    return PollState(polls=polls, since_submit=since_submit, since_running=since_running, status=status,
                     expected_run=expected)


def test_host_cadence_matches_the_sdk():
    c = HostCadence()
    assert [c.next_delay(_state(polls=n)) for n in range(12)] == [1, 1, 2, 2, 2, 4, 4, 4, 5, 5, 5, 5]
    assert c.next_delay(_state(polls=1000)) == 5


def test_fixed_interval():
    assert FixedInterval().next_delay(_state(polls=3)) == 15.0
    assert FixedInterval(2.5).next_delay(_state()) == 2.5


def simulate(policy, *, queue: float, run: float, expected: float, max_polls: int = 500):
    """Step a job through `policy` the way the client does: PENDING for `queue` s, RUNNING for `run` s;
    since_running counts from the run's start as the host reports it (DashScope's scheduled_time, which
    the client puts on its own clock). Returns (polls, lateness, delays)."""
    t, polls, status, seen_running, delays = 0.0, 0, Status.PENDING, None, []
    end = queue + run
    while polls < max_polls:
        state = PollState(polls=polls, since_submit=t, since_running=None if seen_running is None else t - seen_running,
                          status=status, expected_run=expected)
        d = policy.next_delay(state)
        assert d >= 0
        delays.append(d)
        t += d
        polls += 1
        status = Status.SUCCEEDED if t >= end else Status.RUNNING if t >= queue else Status.PENDING
        if status is Status.RUNNING and seen_running is None:
            seen_running = queue
        if status.terminal:
            return polls, t - end, delays
    raise AssertionError(f"not done after {max_polls} polls")


def test_eta_first_poll_is_early():
    p = EtaPoll()
    assert p.next_delay(_state(expected=120)) == 3.0
    assert p.next_delay(_state(expected=2)) == pytest.approx(1.7)     # never past the job's own estimate
    assert EtaPoll(expected=10).next_delay(_state(expected=120)) == pytest.approx(3.0)


def test_eta_pending_gaps_start_short_and_grow_capped():
    p = EtaPoll()
    assert p.next_delay(_state(polls=1, status=Status.PENDING, expected=120)) == pytest.approx(6.0)
    assert p.next_delay(_state(polls=2, status=Status.PENDING, expected=120)) == pytest.approx(12.0)
    assert p.next_delay(_state(polls=4, status=Status.PENDING, expected=120)) == 30.0      # capped
    assert p.next_delay(_state(polls=1, status=Status.PENDING, expected=2)) == 1.5         # never under a gap


def test_eta_sleeps_through_the_certain_part_then_polls_densely():
    p = EtaPoll()
    # sleep to one gap before the expected end (120 − 1.5), then poll every gap
    assert p.next_delay(_state(polls=1, since_running=0.0, status=Status.RUNNING)) == pytest.approx(118.5)
    assert p.next_delay(_state(polls=2, since_running=110.0, status=Status.RUNNING)) == pytest.approx(8.5)
    assert p.next_delay(_state(polls=3, since_running=119.0, status=Status.RUNNING)) == 1.5
    # `expected` overrides the catalog's estimate
    assert EtaPoll(expected=60).next_delay(_state(polls=1, since_running=0.0, status=Status.RUNNING)) == \
        pytest.approx(58.5)


@pytest.mark.parametrize("queue", [0.0, 10.0])
def test_eta_right_estimate_is_never_late_by_more_than_the_pending_gap(queue):
    polls, late, _ = simulate(EtaPoll(), queue=queue, run=120, expected=120)
    assert 0 <= late <= 1.5 + queue         # bounded lateness, even with the anchor on first-seen RUNNING
    cadence_polls, _, _ = simulate(HostCadence(), queue=queue, run=120, expected=120)
    assert polls < cadence_polls / 2        # and far fewer polls than the SDK's cadence (~28)


def test_eta_backs_off_when_the_job_is_three_times_slower():
    polls, late, delays = simulate(EtaPoll(), queue=10, run=360, expected=120)
    cadence_polls, _, _ = simulate(HostCadence(), queue=10, run=360, expected=120)
    assert polls < cadence_polls * 0.6, (polls, cadence_polls)
    assert late <= EtaPoll().max_gap
    # past the estimate the gaps grow (non-decreasing) to at least 10 s, never beyond max_gap
    tail = delays[-15:]
    assert tail == sorted(tail) and tail[-1] >= 10 and max(delays[2:]) <= EtaPoll().max_gap * 4


def test_eta_backoff_is_capped_for_a_very_late_job():
    p = EtaPoll()
    assert p.next_delay(_state(polls=50, since_running=5000.0, status=Status.RUNNING)) == p.max_gap
    polls, late, _ = simulate(p, queue=0, run=1200, expected=120)
    assert polls <= 70 and late <= p.max_gap


def test_eta_right_estimate_few_polls_and_on_time():
    polls, late, _ = simulate(EtaPoll(), queue=10, run=120, expected=120)
    assert polls <= 6 and late <= 2.0, (polls, late)


def test_eta_right_estimate_no_queue_few_polls():
    polls, late, _ = simulate(EtaPoll(), queue=0, run=120, expected=120)
    assert polls <= 6 and late <= 2.0, (polls, late)


def test_eta_right_estimate_after_queue_on_time():
    _, late, _ = simulate(EtaPoll(), queue=10, run=120, expected=120)
    assert late <= 2.0, late


# --------------------------------------------------------------------------------------------------
# Limits and RateLimiter
# --------------------------------------------------------------------------------------------------

def test_limits_per_host():
    ds = Limits.for_host("dashscope")
    assert (ds.submits_per_s, ds.queries_per_s, ds.concurrent_jobs) == (5.0, 20.0, 5)
    ws = Limits.for_host("wavespeed")
    assert ws.submits_per_s == pytest.approx(5 / 60) and ws.concurrent_jobs <= 3


def test_rate_limiter_rejects_non_positive_rate():
    with pytest.raises(ValueError, match="rate must be > 0"):
        RateLimiter(0)


def test_rate_limiter_keeps_a_margin_for_late_arrivals():
    # n per 1 s window: n-1 gaps must span the window, so one late request cannot put n+1 in it
    assert RateLimiter(5.0).rate == pytest.approx(4.0)
    assert RateLimiter(20.0).rate == pytest.approx(19.0)
    assert RateLimiter(5 / 60).rate == pytest.approx(5 / 60 * 0.95)  # slow paces: 5 % under covers lateness


async def test_rate_limiter_spaces_acquisitions_in_order():
    rate = 20.0
    lim = RateLimiter(rate, burst=1)
    grants: list[tuple[int, float]] = []

    async def worker(i: int):
        await lim.acquire()
        grants.append((i, time.monotonic()))

    t0 = time.monotonic()
    tasks = []
    for i in range(10):
        tasks.append(asyncio.create_task(worker(i)))
        await asyncio.sleep(0)         # arrival order 0..9
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    assert [i for i, _ in grants] == list(range(10))           # served in arrival order
    gaps = [b - a for (_, a), (_, b) in zip(grants, grants[1:])]
    assert min(gaps) >= 1 / rate * 0.8, gaps
    assert elapsed >= 9 / rate * 0.9                            # 10 tokens at 20/s, burst 1: ≥ 0.45 s


async def test_rate_limiter_burst_then_rate():
    lim = RateLimiter(10.0)          # burst = rate = 10
    t0 = time.monotonic()
    waits = [await lim.acquire() for _ in range(12)]
    elapsed = time.monotonic() - t0
    assert waits[:10] == [0.0] * 10 and all(w > 0 for w in waits[10:])
    assert elapsed >= 0.17


async def test_rate_limiter_penalise_delays_the_next_acquire():
    lim = RateLimiter(10.0, burst=5)
    assert await lim.acquire() == 0.0
    lim.penalise(0.3)
    t0 = time.monotonic()
    waited = await lim.acquire()
    assert waited == pytest.approx(0.3, abs=0.03)
    assert time.monotonic() - t0 >= 0.27


# --------------------------------------------------------------------------------------------------
# Secret
# --------------------------------------------------------------------------------------------------

KEY = "sk-live-0123456789abcdefWXYZ"


def test_secret_repr_str_never_show_the_key():
    s = Secret(KEY)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"k": s})):
        assert KEY not in text and "0123456789" not in text
    assert s.masked == "sk-…WXYZ"
    assert repr(s) == "Secret(sk-…WXYZ)"
    assert s.reveal() == KEY and bool(s)


def test_secret_short_and_missing_keys():
    assert Secret("short-key").masked == "………" and "short-key" not in repr(Secret("short-key"))
    assert Secret().masked == "<no key>" and not Secret()


def test_secret_reads_env_at_use_time(monkeypatch):
    monkeypatch.delenv("WANLAB_TEST_KEY", raising=False)
    s = Secret(env="WANLAB_TEST_KEY")
    assert not s and s.reveal() == "" and repr(s) == "Secret(<no key> from $WANLAB_TEST_KEY)"
    monkeypatch.setenv("WANLAB_TEST_KEY", KEY)
    assert s and s.reveal() == KEY
    assert repr(s) == "Secret(sk-…WXYZ from $WANLAB_TEST_KEY)" and KEY not in repr(s)
    monkeypatch.setenv("WANLAB_TEST_KEY", "sk-rotated-9999999999999ABCD")
    assert s.reveal() == "sk-rotated-9999999999999ABCD"      # rotation is picked up without a new Secret


def test_secret_cannot_be_pickled_or_copied():
    s = Secret(KEY)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(s)
    with pytest.raises(TypeError):
        pickle.dumps({"lab": [s]})
    with pytest.raises(TypeError):
        copy.deepcopy(s)


@pytest.mark.parametrize("logger_name", ["wanlab", "httpx", "httpcore.http11"])
def test_log_records_are_scrubbed(caplog, logger_name):
    s = Secret(KEY)
    log = logging.getLogger(logger_name)
    with caplog.at_level(logging.DEBUG, logger=logger_name):
        log.info("HTTP Request: POST https://x/ headers={'Authorization': 'Bearer %s'}", KEY)
        log.warning(f"key inline {KEY} and again {KEY}")
    assert len(caplog.records) == 2
    for rec in caplog.records:
        assert KEY not in rec.getMessage() and "sk-…WXYZ" in rec.getMessage()
    assert KEY not in caplog.text
    assert caplog.records[1].getMessage() == "key inline sk-…WXYZ and again sk-…WXYZ"
    del s


def test_log_scrub_covers_env_keys_once_used(caplog, monkeypatch):
    monkeypatch.setenv("WANLAB_TEST_KEY2", "sk-env-ABCDEFGHIJKLMNOP1234")
    s = Secret(env="WANLAB_TEST_KEY2")
    s.reveal()                                   # the client reads it to send a request
    with caplog.at_level(logging.INFO, logger="wanlab"):
        logging.getLogger("wanlab").info("token=%s", "sk-env-ABCDEFGHIJKLMNOP1234")
    assert caplog.records[0].getMessage() == "token=sk-…1234"


def test_log_scrub_leaves_other_records_alone(caplog):
    s = Secret(KEY)
    with caplog.at_level(logging.INFO, logger="wanlab"):
        logging.getLogger("wanlab").info("polling %s every %d s", "task-1", 5)
    rec = caplog.records[0]
    assert rec.getMessage() == "polling task-1 every 5 s" and rec.args == ("task-1", 5)
    del s


def test_log_scrub_covers_child_loggers(caplog):
    s = Secret(KEY)
    with caplog.at_level(logging.INFO, logger="wanlab"):
        logging.getLogger("wanlab.client").info("key %s", KEY)
    assert KEY not in caplog.text
    del s
