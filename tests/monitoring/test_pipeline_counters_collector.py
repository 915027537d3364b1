"""The pipeline's counters (discovered, duplicates, garbage, malformed pairs, checks, failures,
transitions) are in /metrics as Prometheus counters."""
from __future__ import annotations

from types import SimpleNamespace

import aiohttp

from app.clock import ManualClock
from monitoring.context import MonitoringContext
from app.settings import Settings
from monitoring import metric_names as m
from monitoring.collector import CollectorRegistry
from monitoring.collectors.pipeline_counters import PipelineCountersCollector
from monitoring.setup import build_monitoring
from tokens.counters import PipelineCounters


def _counters() -> PipelineCounters:
    counters = PipelineCounters(discovered=7, duplicates=3, garbage=2, checks=40, check_failures=12,
                                batch_failures=4)
    counters.malformed_pairs.update({"no_pair_address": 5, "bad_liquidity": 1})
    counters.transitions.update({"activated": 2, "monitoring_timeout": 1})
    counters.discovered_by_source.update({"pumpportal": 6, "dexscreener_profiles": 1})
    return counters


async def test_counters_become_samples_and_follow_the_live_object(clock: ManualClock) -> None:
    counters = _counters()
    registry = CollectorRegistry(clock=clock)
    registry.register(PipelineCountersCollector(counters))
    await registry.collect_all(clock.time())
    assert registry.latest_value(m.PIPELINE_DISCOVERED_TOTAL) == 7
    assert registry.latest_value(m.PIPELINE_DISCOVERED_BY_SOURCE_TOTAL, {"source": "pumpportal"}) == 6
    assert registry.latest_value(m.PIPELINE_DUPLICATES_TOTAL) == 3
    assert registry.latest_value(m.PIPELINE_GARBAGE_TOTAL) == 2
    assert registry.latest_value(m.PIPELINE_MALFORMED_PAIRS_TOTAL, {"reason": "no_pair_address"}) == 5
    assert registry.latest_value(m.PIPELINE_CHECKS_TOTAL) == 40
    assert registry.latest_value(m.PIPELINE_CHECK_FAILURES_TOTAL) == 12
    assert registry.latest_value(m.PIPELINE_BATCH_FAILURES_TOTAL) == 4
    assert registry.latest_value(m.PIPELINE_TRANSITIONS_TOTAL, {"reason": "activated"}) == 2

    counters.check_failures += 5
    counters.malformed_pairs["no_base_token"] += 1
    await registry.collect_all(clock.time())
    assert registry.latest_value(m.PIPELINE_CHECK_FAILURES_TOTAL) == 17
    assert registry.latest_value(m.PIPELINE_MALFORMED_PAIRS_TOTAL, {"reason": "no_base_token"}) == 1
    assert registry.states()["pipeline_counters"].bad_samples == 0


async def test_junk_in_the_counters_is_skipped_not_fatal(clock: ManualClock) -> None:
    junk = SimpleNamespace(discovered=float("nan"), duplicates="x", garbage=None, checks=3,
                           malformed_pairs={"<b>" * 40: 2}, transitions=None)
    samples = await PipelineCountersCollector(lambda: junk).collect(clock.time())
    names = {s.name for s in samples}
    assert m.PIPELINE_CHECKS_TOTAL in names and m.PIPELINE_DISCOVERED_TOTAL not in names
    reason = next(s for s in samples if s.name == m.PIPELINE_MALFORMED_PAIRS_TOTAL).labels["reason"]
    assert len(reason) <= 64


async def test_metrics_endpoint_serves_the_pipeline_counters(sqlite_db, sqlite_url, clock: ManualClock) -> None:
    settings = Settings(database_url=sqlite_url, http_port=0, redis_url=None, collect_interval_s=5)
    ctx = MonitoringContext(settings=settings, db=sqlite_db, clock=clock)
    # the counters of a pipeline that ran elsewhere: the collector the service registers for its pipeline
    monitoring = await build_monitoring(ctx, extra_collectors=[PipelineCountersCollector(_counters())])
    try:
        assert "pipeline_counters" in {c.name for c in monitoring.registry.collectors}
        await monitoring.registry.run_collection()
        async with aiohttp.ClientSession() as http, http.get(f"{monitoring.http.url}/metrics") as resp:
            body = await resp.text()
    finally:
        await monitoring.stop()
    assert "# TYPE tokenwatch_pipeline_check_failures_total counter" in body
    assert "tokenwatch_pipeline_check_failures_total 12" in body
    assert 'tokenwatch_pipeline_malformed_pairs_total{reason="no_pair_address"} 5' in body
    assert 'tokenwatch_pipeline_transitions_total{reason="activated"} 2' in body
    assert "tokenwatch_pipeline_garbage_total 2" in body and "tokenwatch_pipeline_duplicates_total 3" in body
