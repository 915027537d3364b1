"""API error rate, 429s, timeouts and latency cover a recent window; totals stay lifetime counters."""
from __future__ import annotations

from app.clock import ManualClock
from monitoring import metric_names as m
from monitoring.collector import CollectorRegistry
from monitoring.collectors.api import ApiCollector
from tokens.api_stats import ApiStats


def test_an_outage_that_ended_minutes_ago_no_longer_shows_in_the_error_rate(clock: ManualClock) -> None:
    stats = ApiStats(clock=clock, window_s=300)
    for _ in range(46):
        stats.record("tokens_batch", latency_s=0.05, status=503)
    stats.record("tokens_batch", latency_s=9.0, status=429)
    stats.record("tokens_batch", timeout=True)
    during = stats.snapshot()["tokens_batch"]
    assert during.error_rate == 1.0 and during.window_rate_limited == 1 and during.window_timeouts == 1

    clock.advance(301)
    for _ in range(20):
        stats.record("tokens_batch", latency_s=0.02, status=200)
    after = stats.snapshot()["tokens_batch"]
    assert after.error_rate == 0.0 and after.window_requests == 20
    assert after.window_rate_limited == 0 and after.window_timeouts == 0
    assert after.p99_s == 0.02  # the 9 s answer during the fault is out of the window
    # lifetime counters for Prometheus keep everything
    assert (after.requests, after.errors, after.rate_limited, after.timeouts) == (68, 48, 1, 1)


def test_a_mixed_window_counts_only_recent_failures(clock: ManualClock) -> None:
    stats = ApiStats(clock=clock, window_s=300)
    for _ in range(10):
        stats.record("token_pairs", latency_s=0.1, status=502)
    clock.advance(200)
    for _ in range(10):
        stats.record("token_pairs", latency_s=0.1, status=200)
    assert stats.snapshot()["token_pairs"].error_rate == 0.5
    clock.advance(150)  # the failures are now 350 s old
    assert stats.snapshot()["token_pairs"].error_rate == 0.0


def test_memory_stays_bounded_under_a_flood(clock: ManualClock) -> None:
    stats = ApiStats(clock=clock, max_events=100)
    for _ in range(5000):
        stats.record("tokens_batch", latency_s=0.01, status=200)
    snap = stats.snapshot()["tokens_batch"]
    assert snap.requests == 5000 and snap.window_requests == 100


def test_no_requests_in_the_window_reads_as_no_errors_and_no_latency(clock: ManualClock) -> None:
    stats = ApiStats(clock=clock)
    stats.record("token_profiles", latency_s=0.3, status=500)
    clock.advance(3600)
    snap = stats.snapshot()["token_profiles"]
    assert snap.error_rate == 0.0 and snap.p95_s is None and snap.errors == 1


async def test_metrics_export_the_window_next_to_lifetime_counters(clock: ManualClock) -> None:
    stats = ApiStats(clock=clock)
    for _ in range(5):
        stats.record("tokens_batch", timeout=True)
    clock.advance(600)
    stats.record("tokens_batch", latency_s=0.1, status=200)
    registry = CollectorRegistry(clock=clock)
    registry.register(ApiCollector(stats.snapshot))
    await registry.collect_all(clock.time())
    ep = {"endpoint": "tokens_batch"}
    assert registry.latest_value(m.API_ERROR_RATE, ep) == 0.0
    assert registry.latest_value(m.API_TIMEOUTS_TOTAL, ep) == 5
    assert registry.latest_value(m.API_WINDOW_TIMEOUTS, ep) == 0
    assert registry.latest_value(m.API_WINDOW_REQUESTS, ep) == 1
    assert registry.latest_value(m.API_WINDOW_SECONDS, ep) == 300
