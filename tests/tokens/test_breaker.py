"""The circuit breaker's states on a ManualClock: closed -> open -> half-open -> closed, with a failure
rate over a sliding window and a minimum number of calls, slow calls, a doubling open wait and 429s
that are throttling, not failure. Jitter is pinned (random() = 1.0: the full wait)."""
from __future__ import annotations

import pytest

from app.clock import ManualClock
from tokens.breaker import (
    CLOSED,
    DROPPED,
    FAILURE,
    HALF_OPEN,
    OPEN,
    SUCCESS,
    THROTTLED,
    BreakerPolicy,
    BreakerTransition,
    CircuitBreaker,
)

POLICY = BreakerPolicy(window_s=30.0, min_calls=4, failure_rate=0.5, slow_call_s=10.0, slow_rate=0.8,
                       open_base_s=2.0, open_max_s=20.0, half_open_successes=2)


def make(policy: BreakerPolicy = POLICY, jitter: float = 1.0) -> tuple[CircuitBreaker, ManualClock, list]:
    clock = ManualClock()
    seen: list[BreakerTransition] = []
    return CircuitBreaker("tokens_batch", policy, clock, random=lambda: jitter, notify=seen.append), clock, seen


def call(breaker: CircuitBreaker, outcome, latency_s: float | None = 0.1) -> bool:
    permit = breaker.allow()
    if permit is None:
        return False
    breaker.record(permit, outcome, latency_s)
    return True


def test_closed_open_half_open_closed() -> None:
    breaker, clock, seen = make()
    for _ in range(3):  # 3 of 3 failed, but under the minimum of 4 calls: still closed
        assert call(breaker, FAILURE)
    assert breaker.state == CLOSED
    assert call(breaker, SUCCESS)  # the 4th call: 3 of 4 failed = 75% >= 50%
    assert breaker.state == OPEN and seen[-1].after == OPEN
    assert seen[-1].reason == "3 of 4 calls failed in 30 s" and seen[-1].open_for_s == 2.0

    # open: nothing goes until the wait is over
    assert breaker.allow() is None and breaker.refused == 1
    clock.advance(1.9)
    assert breaker.state == OPEN and not breaker.admits() and breaker.retry_in_s() == pytest.approx(0.1)
    clock.advance(0.1)
    assert breaker.state == HALF_OPEN and breaker.admits()

    # half-open: one probe at a time
    probe = breaker.allow()
    assert probe is not None and probe.probe
    assert not breaker.admits() and breaker.allow() is None
    breaker.record(probe, SUCCESS, 0.1)
    assert breaker.state == HALF_OPEN  # 1 of 2 probes answered
    assert call(breaker, SUCCESS)
    assert breaker.state == CLOSED and seen[-1].reason == "2 probes answered"
    assert [(t.before, t.after) for t in seen] == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_a_failed_probe_reopens_with_a_doubled_wait_up_to_the_cap() -> None:
    breaker, clock, seen = make()
    for _ in range(4):
        call(breaker, FAILURE)
    waits = [seen[-1].open_for_s]
    for _ in range(6):
        clock.advance(breaker.retry_in_s())
        assert call(breaker, FAILURE)  # the probe fails
        assert breaker.state == OPEN
        waits.append(seen[-1].open_for_s)
    assert waits == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]
    assert seen[-1].reason == "probe failed"
    # closing resets the growth: the next opening waits the base again
    clock.advance(breaker.retry_in_s())
    assert call(breaker, SUCCESS) and call(breaker, SUCCESS) and breaker.state == CLOSED
    for _ in range(4):
        call(breaker, FAILURE)
    assert seen[-1].after == OPEN and seen[-1].open_for_s == 2.0


def test_the_open_wait_is_jittered_between_half_and_all_of_it() -> None:
    breaker, _, seen = make(jitter=0.0)
    for _ in range(4):
        call(breaker, FAILURE)
    assert seen[-1].open_for_s == 1.0  # Backoff's jitter: 0.5 .. 1.0 of the wait


def test_429s_are_throttling_not_failure() -> None:
    breaker, _, seen = make()
    for _ in range(50):
        assert call(breaker, THROTTLED)
    assert breaker.state == CLOSED and breaker.window() == (0, 0, 0) and seen == []


def test_a_throttled_or_dropped_probe_only_frees_the_probe_slot() -> None:
    breaker, clock, _ = make()
    for _ in range(4):
        call(breaker, FAILURE)
    clock.advance(2.0)
    for outcome in (THROTTLED, DROPPED):
        probe = breaker.allow()
        assert probe is not None and probe.probe
        breaker.record(probe, outcome)
        assert breaker.state == HALF_OPEN and breaker.admits()


def test_slow_calls_open_it() -> None:
    breaker, _, seen = make()
    for _ in range(3):
        call(breaker, SUCCESS, latency_s=12.0)
    assert breaker.state == CLOSED
    call(breaker, SUCCESS, latency_s=0.2)  # 3 of 4 slow = 75% < 80%
    assert breaker.state == CLOSED
    call(breaker, SUCCESS, latency_s=10.0)  # 4 of 5 = 80%
    assert breaker.state == OPEN and seen[-1].reason == "4 of 5 calls slower than 10 s in 30 s"


def test_a_slow_probe_reopens_it() -> None:
    breaker, clock, seen = make()
    for _ in range(4):
        call(breaker, FAILURE)
    clock.advance(2.0)
    call(breaker, SUCCESS, latency_s=11.0)
    assert breaker.state == OPEN and seen[-1].reason == "probe took 11.0s"


def test_failures_older_than_the_window_are_forgotten() -> None:
    breaker, clock, _ = make()
    for _ in range(3):
        call(breaker, FAILURE)
    clock.advance(31.0)
    for _ in range(3):
        call(breaker, SUCCESS)
    call(breaker, FAILURE)  # 1 of 4 in the window
    assert breaker.state == CLOSED and breaker.window() == (4, 1, 0)


def test_a_failure_rate_under_the_threshold_keeps_it_closed() -> None:
    breaker, _, _ = make(BreakerPolicy(min_calls=10))
    for i in range(100):  # 30% errors, the "errors" phase (every window of >= 10 calls: <= 40%)
        call(breaker, FAILURE if i % 10 in (0, 4, 7) else SUCCESS)
    assert breaker.state == CLOSED


def test_outcomes_of_calls_let_through_before_a_change_are_ignored() -> None:
    breaker, clock, _ = make()
    late = breaker.allow()  # a slow call in flight while the breaker opens
    assert late is not None
    for _ in range(4):
        call(breaker, FAILURE)
    clock.advance(2.0)
    probe = breaker.allow()
    assert probe is not None
    breaker.record(late, SUCCESS)  # not the probe's answer
    assert breaker.state == HALF_OPEN and not breaker.admits()
    breaker.record(probe, FAILURE)
    assert breaker.state == OPEN


def test_a_run_of_failures_opens_it_before_the_rate_would() -> None:
    """An outage after a healthy spell: the window still holds the successes, the run does not."""
    breaker, _, seen = make(BreakerPolicy(min_calls=10, consecutive_failures=10))
    for _ in range(30):
        call(breaker, SUCCESS)
    for _ in range(9):
        call(breaker, FAILURE)
    assert breaker.state == CLOSED  # 9 of 39 = 23 %
    call(breaker, FAILURE)
    assert breaker.state == OPEN and seen[-1].reason == "10 calls in a row failed"
