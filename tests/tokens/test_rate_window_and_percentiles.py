"""The API limit holds in every 60 s window whatever the settings say, and latency percentiles
are the nearest rank (review findings 11, 12)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from app.clock import ManualClock
from app.settings import Settings
from app.percentiles import percentile
from tokens.api_stats import ApiStats
from tokens.pipeline import api_limiter, profiles_limiter
from tokens.ratelimit import RateLimiter


def max_in_any_window(times: list[float], window_s: float = 60.0) -> int:
    """The most requests in any closed window ``[t, t + window_s]`` (``times`` sorted)."""
    best, j = 0, 0
    for i, start in enumerate(times):
        j = max(j, i)
        while j + 1 < len(times) and times[j + 1] <= start + window_s:
            j += 1
        best = max(best, j - i + 1)
    return best


async def drive(limiter: RateLimiter, clock: ManualClock, gaps: list[float], pauses: dict[int, float]) -> list[float]:
    sent: list[float] = []
    for i, gap in enumerate(gaps):
        clock.advance(gap)
        if i in pauses:
            limiter.pause_for(pauses[i])
        await limiter.acquire()
        sent.append(clock.monotonic())
    return sent


def fake_time() -> tuple[ManualClock, object]:
    clock = ManualClock(0.0)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return clock, sleep


@pytest.mark.parametrize("limit, headroom", [(300, 1.0), (300, 0.999), (300, 0.97), (10, 1.0), (2, 1.0), (1, 1.0)])
async def test_the_api_limit_holds_in_every_60s_window_even_at_full_headroom(limit, headroom) -> None:
    clock, sleep = fake_time()
    s = Settings(_env_file=None, api_rate_limit_per_min=limit, api_rate_headroom=headroom)
    limiter = api_limiter(s, clock, sleep)  # type: ignore[arg-type]
    # an idle start (full burst), a steady flood, an idle gap, then the flood again
    gaps = [0.0] * (limit * 3) + [120.0] + [0.0] * (limit * 3)
    sent = await drive(limiter, clock, gaps, {})
    assert max_in_any_window(sent) <= limit
    assert max_in_any_window(sent) >= int(limit * headroom) - 3  # and the budget is still used


async def test_raising_the_rate_later_cannot_break_the_limit() -> None:
    clock, sleep = fake_time()
    limiter = api_limiter(Settings(_env_file=None, api_rate_limit_per_min=300), clock, sleep)  # type: ignore[arg-type]
    limiter.set_rate_per_min(10_000)
    sent = await drive(limiter, clock, [0.0] * 900, {})
    assert max_in_any_window(sent) <= 300


async def test_the_profiles_limit_holds_too() -> None:
    clock, sleep = fake_time()
    limiter = profiles_limiter(Settings(_env_file=None, profiles_rate_limit_per_min=60), clock, sleep)  # type: ignore[arg-type]
    sent = await drive(limiter, clock, [0.0] * 200, {})
    assert max_in_any_window(sent) <= 60


@hsettings(max_examples=60, deadline=None)
@given(runs=st.lists(st.tuples(st.sampled_from([0.0, 0.05, 0.3, 1.0, 7.0, 30.0, 61.0]), st.integers(1, 90)),
                     min_size=1, max_size=8),
       pauses=st.dictionaries(st.integers(0, 399), st.floats(0.0, 10.0), max_size=5))
async def test_no_window_over_the_limit_with_any_traffic_and_retry_after(runs, pauses) -> None:
    # runs: (idle gap, then that many requests at once), like a processor waking up after a lull
    gaps = [g for gap, n in runs for g in [gap] + [0.0] * (n - 1)]
    clock, sleep = fake_time()
    limiter = api_limiter(Settings(_env_file=None, api_rate_limit_per_min=60, api_rate_headroom=1.0),
                          clock, sleep)  # type: ignore[arg-type]
    sent = await drive(limiter, clock, gaps, pauses)
    assert max_in_any_window(sent) <= 60


def test_p95_of_twenty_requests_is_not_the_one_outlier() -> None:
    stats = ApiStats()
    for _ in range(19):
        stats.record("tokens_batch", latency_s=0.010, status=200)
    stats.record("tokens_batch", latency_s=10.0, status=200)
    snap = stats.snapshot()["tokens_batch"]
    assert snap.p95_s == 0.010  # 19 of 20 (95 %) took 10 ms
    assert snap.p99_s == 10.0


# rank = ceil(p x n) in double precision, as PostgreSQL's percentile_disc computes it: 0.07 x 100 is
# 7.000000000000001 in binary floating point, so rank 8 on both sides (checked against PostgreSQL
# in tests/monitoring/test_percentiles_agree.py)
@pytest.mark.parametrize("n, p, rank", [(6, 0.5, 3), (102, 0.5, 51), (20, 0.95, 19), (100, 0.99, 99), (100, 0.07, 8),
                                        (1000, 0.999, 999), (3, 0.5, 2), (1, 0.0, 1), (10, 1.0, 10)])
def test_percentile_is_the_nearest_rank(n: int, p: float, rank: int) -> None:
    assert percentile([float(i) for i in range(1, n + 1)], p) == float(rank)
