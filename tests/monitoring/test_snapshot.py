"""One MonitoringSnapshot per collection cycle, published to listeners (monitoring/snapshot.py):
listeners are isolated and logged on change of state, a refresh never overlaps a cycle, a failed
pipeline collector leaves no stale pipeline picture, and /metrics exposes API latency as a
Prometheus histogram that prometheus_client's own parser reads."""
from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.clock import ManualClock
from monitoring import metric_names as m
from monitoring.collector import CollectorRegistry
from monitoring.collectors.api import ApiCollector
from monitoring.collectors.pipeline import PipelineCollector
from monitoring.http import HttpServer
from monitoring.sample import Sample
from monitoring.snapshot import MonitoringSnapshot
from tokens.api_stats import ApiStats


class Counting:
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    async def collect(self, now: float) -> list[Sample]:
        self.calls += 1
        return [Sample("tokenwatch_test_calls", float(self.calls))]


async def test_each_collection_publishes_one_snapshot_to_every_listener(clock: ManualClock) -> None:
    registry = CollectorRegistry(clock=clock, collect_interval_s=10, rate_window_s=60)
    registry.register(Counting())
    seen: list[MonitoringSnapshot] = []
    sync_seen: list[float] = []

    async def listener(snap: MonitoringSnapshot) -> None:
        seen.append(snap)

    remove = registry.coordinator.add_listener(listener)
    registry.coordinator.add_listener(lambda snap: sync_seen.append(snap.at))  # plain functions too
    assert registry.coordinator.latest is None
    await registry.run_collection()
    clock.advance(10)
    await registry.run_collection()
    assert [s.cycle for s in seen] == [1, 2] and sync_seen == [clock.time() - 10, clock.time()]
    latest = registry.coordinator.latest
    assert latest is seen[-1] and latest.at == clock.time() and latest.rate_window_s == 60
    assert latest.value("tokenwatch_test_calls") == 2.0 and latest.collectors["counting"].ok
    remove()
    await registry.run_collection()
    assert len(seen) == 2 and len(sync_seen) == 3


async def test_a_failing_or_hanging_listener_is_isolated_and_logged_on_change_only(clock, caplog) -> None:
    registry = CollectorRegistry(clock=clock)
    registry.coordinator.listener_timeout_s = 0.05
    broken = {"on": True}
    after: list[int] = []

    def flaky(snap: MonitoringSnapshot) -> None:
        if broken["on"]:
            raise RuntimeError("rule engine down")

    async def hangs(snap: MonitoringSnapshot) -> None:
        await asyncio.Event().wait()

    registry.coordinator.add_listener(flaky)
    registry.coordinator.add_listener(hangs)
    registry.coordinator.add_listener(lambda snap: after.append(snap.cycle))
    with caplog.at_level(logging.INFO, logger="monitoring.snapshot"):
        for _ in range(3):
            await registry.run_collection()
        broken["on"] = False
        await registry.run_collection()
    assert after == [1, 2, 3, 4]  # the last listener heard every cycle
    assert registry.coordinator.listener_failures == 3 + 4  # flaky 3 times, hangs every time
    messages = [r.getMessage() for r in caplog.records]
    assert sum("flaky failing: RuntimeError: rule engine down" in msg for msg in messages) == 1
    assert sum("hangs failing: timed out" in msg for msg in messages) == 1
    assert sum("flaky recovered" in msg for msg in messages) == 1


async def test_status_refresh_shares_cycles_and_never_overlaps_one(clock: ManualClock) -> None:
    registry = CollectorRegistry(clock=clock, collect_interval_s=10)
    counting = registry.register(Counting())
    first = await registry.fresh_snapshot(10)  # nothing yet: collects
    clock.advance(5)
    assert await registry.fresh_snapshot(10) is first and counting.calls == 1  # 5 s old: shared
    again = await registry.fresh_snapshot(None)  # Refresh: always a new cycle
    assert again.cycle == 2 and counting.calls == 2
    results = await asyncio.gather(registry.run_collection(), registry.fresh_snapshot(10), registry.run_collection())
    assert counting.calls == 4  # the two jobs ran; the /status request shared a recent cycle
    assert isinstance(results[1], MonitoringSnapshot)


async def test_a_failed_pipeline_collection_leaves_no_stale_pipeline_picture(sqlite_db, clock) -> None:
    registry = CollectorRegistry(clock=clock, collect_interval_s=10)
    collector = registry.register_pipeline(PipelineCollector(sqlite_db))
    await registry.run_collection()
    good = registry.coordinator.latest
    assert good.pipeline is not None and good.not_ready_reason(clock.time(), 30) is None

    async def broken(now: float) -> list[Sample]:
        raise ConnectionError("database went away")

    collector.collect = broken  # type: ignore[method-assign]
    clock.advance(10)
    await registry.run_collection()
    bad = registry.coordinator.latest
    assert bad.pipeline is None and not bad.collectors["pipeline"].ok
    assert bad.not_ready_reason(clock.time(), 30) == (
        "pipeline figures unavailable: ConnectionError: database went away")
    clock.advance(31)
    assert "last metrics collection 31s ago" in bad.not_ready_reason(clock.time(), 30)


async def test_api_latency_is_a_prometheus_histogram(clock: ManualClock) -> None:
    stats = ApiStats(clock=clock)
    for latency in (0.01, 0.02, 0.2, 0.3, 0.7, 3.0):
        stats.record("tokens_batch", latency_s=latency, status=200)
    stats.record("tokens_batch", timeout=True)  # no answer: not in the latency histogram
    registry = CollectorRegistry(clock=clock)
    registry.register(ApiCollector(stats.snapshot))
    server = HttpServer(registry=registry, db=None, port=0, clock=clock)
    await server.start()
    try:
        await registry.run_collection()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/metrics") as resp:
                body = await resp.text()
    finally:
        await server.stop()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    latency = families[m.API_LATENCY_SECONDS]
    assert latency.type == "histogram"
    assert not any('quantile="' in line for line in body.splitlines() if line.startswith(m.API_LATENCY_SECONDS))
    batch = [s for s in latency.samples if s.labels["endpoint"] == "tokens_batch"]
    buckets = [(s.labels["le"], s.value) for s in batch if s.name.endswith("_bucket")]
    # cumulative, in increasing le order, +Inf last and equal to _count
    assert buckets == [("0.025", 2.0), ("0.05", 2.0), ("0.1", 2.0), ("0.25", 3.0), ("0.5", 4.0), ("1.0", 5.0),
                       ("2.5", 5.0), ("5.0", 6.0), ("10.0", 6.0), ("+Inf", 6.0)]
    by_name = {s.name: s.value for s in batch if not s.name.endswith("_bucket")}
    assert by_name[m.API_LATENCY_COUNT] == 6.0 and by_name[m.API_LATENCY_SUM] == pytest.approx(4.23)
    # an endpoint without requests yet: every bucket 0, still a valid histogram
    idle = [s.value for s in latency.samples if s.labels["endpoint"] == "token_pairs"]
    assert idle and set(idle) == {0.0}
    # /status's p95 is the nearest-rank p95 of the window: rank ceil(0.95 x 6) = 6 -> 3.0 s
    p95 = families[m.API_LATENCY_P95_SECONDS]
    assert p95.type == "gauge" and [s.value for s in p95.samples if s.labels["endpoint"] == "tokens_batch"] == [3.0]


async def test_the_status_line_says_when_it_has_no_picture_or_an_old_one(sqlite_db, clock: ManualClock) -> None:
    from tokenwatch.status_line import snapshot_line

    registry = CollectorRegistry(clock=clock, collect_interval_s=10)
    assert snapshot_line(registry.coordinator.latest, clock.time()) == "no metrics collection yet"
    registry.register_pipeline(PipelineCollector(sqlite_db))
    await registry.run_collection()
    line = snapshot_line(registry.coordinator.latest, clock.time())
    assert line.startswith("monitoring=0 active=0 archived=0 | checks/min(last 1 min)=0.0 ok, 0.0 failed")
    assert "STALLED" not in line and "as of" not in line
    clock.advance(45)  # more than two collection intervals without a new snapshot: say how old it is
    assert snapshot_line(registry.coordinator.latest, clock.time()).endswith("| as of 45s ago")


def test_the_rate_window_setting_is_checked() -> None:
    from app.settings import SettingsError, load_settings

    assert load_settings(_env_file=None).rate_window_s == 60.0
    with pytest.raises(SettingsError, match="RATE_WINDOW_S"):
        load_settings(_env_file=None, rate_window_s=0)
