"""The API and scheduler collectors over the real ApiStats and JobStats objects."""
from __future__ import annotations

import pytest

from app.clock import ManualClock
from app.scheduler import JobStats
from monitoring import metric_names as m
from monitoring.collector import CollectorRegistry
from monitoring.collectors.api import ApiCollector
from monitoring.collectors.scheduler import SchedulerCollector
from tokens.api_stats import ApiStats


async def test_api_collector(clock: ManualClock) -> None:
    stats = ApiStats()
    for latency in (0.1, 0.2, 0.3, 0.4):
        stats.record("tokens", latency_s=latency, status=200)
    stats.record("tokens", latency_s=1.0, status=429)
    stats.record("tokens", timeout=True)
    stats.cache_hit("tokens")
    stats.cache_hit("tokens")
    stats.cache_hit("tokens")
    stats.cache_miss("tokens")
    registry = CollectorRegistry(clock=clock)
    registry.register(ApiCollector(stats.snapshot))
    await registry.collect_all(clock.time())
    snap = stats.snapshot()["tokens"]
    assert registry.latest_value(m.API_REQUESTS_TOTAL, {"endpoint": "tokens"}) == snap.requests
    assert registry.latest_value(m.API_RATE_LIMITED_TOTAL, {"endpoint": "tokens"}) == 1
    assert registry.latest_value(m.API_TIMEOUTS_TOTAL, {"endpoint": "tokens"}) == 1
    assert registry.latest_value(m.API_ERROR_RATE, {"endpoint": "tokens"}) == pytest.approx(snap.error_rate)
    assert registry.latest_value(m.API_CACHE_HIT_RATE, {"endpoint": "tokens"}) == 0.75  # 3 of 4
    # window p95 by nearest rank of the 5 answered latencies [0.1 0.2 0.3 0.4 1.0]: rank ceil(4.75) = 5
    assert registry.latest_value(m.API_LATENCY_P95_SECONDS, {"endpoint": "tokens"}) == 1.0 == snap.p95_s
    # the histogram since start: cumulative buckets, the timeout is not an answered request
    bucket = {le: registry.latest_value(m.API_LATENCY_BUCKET, {"endpoint": "tokens", "le": le})
              for le in ("0.1", "0.25", "0.5", "1.0", "+Inf")}
    assert bucket == {"0.1": 1.0, "0.25": 2.0, "0.5": 4.0, "1.0": 5.0, "+Inf": 5.0}
    assert registry.latest_value(m.API_LATENCY_COUNT, {"endpoint": "tokens"}) == 5.0
    assert registry.latest_value(m.API_LATENCY_SUM, {"endpoint": "tokens"}) == pytest.approx(2.0)


async def test_scheduler_collector(clock: ManualClock) -> None:
    now = clock.time()
    busy = JobStats(id="pipeline.process", interval_s=1, budget_s=30, runs=5, errors=1, missed=2,
                    skipped_max_instances=3, last_start=now - 40, last_end=now - 41, running_since=now - 40)
    busy.durations.extend([1.0, 3.0, 2.0])
    idle = JobStats(id="monitoring.collect", interval_s=10, budget_s=10)
    collector = SchedulerCollector(lambda: [busy, idle])
    got = {(s.name, s.labels["job"]): s.value for s in await collector.collect(now)}
    job = "pipeline.process"
    assert got[(m.JOB_RUNNING_SECONDS, job)] == 40.0
    assert got[(m.JOB_DURATION_P50_SECONDS, job)] == 2.0 and got[(m.JOB_DURATION_MAX_SECONDS, job)] == 3.0
    assert (got[(m.JOB_RUNS_TOTAL, job)], got[(m.JOB_ERRORS_TOTAL, job)], got[(m.JOB_MISSED_TOTAL, job)],
            got[(m.JOB_SKIPPED_MAX_INSTANCES_TOTAL, job)]) == (5, 1, 2, 3)
    assert got[(m.JOB_RUNNING_SECONDS, "monitoring.collect")] == 0.0
    assert (m.JOB_LAST_START_TIMESTAMP, "monitoring.collect") not in got
