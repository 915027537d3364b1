"""The signals the alert rules need that the windowed figures cannot give fast enough: how long
an API endpoint has been failing, how long discovery has been silent, stuck tokens by reason."""
from __future__ import annotations

from app.clock import ManualClock
from monitoring import metric_names as m
from monitoring.collector import CollectorRegistry
from monitoring.collectors.api import ApiCollector
from monitoring.collectors.pipeline import snapshot_samples
from monitoring.collectors.pipeline_counters import PipelineCountersCollector
from tests.alerts.scenario import pipeline_snapshot
from tokens.api_stats import ApiStats
from tokens.counters import PipelineCounters


def test_failing_seconds_count_from_the_first_failure_and_drop_at_the_first_answer(clock: ManualClock) -> None:
    stats = ApiStats(clock=clock)
    stats.record("tokens_batch", latency_s=0.1, status=200)
    assert stats.snapshot()["tokens_batch"].failing_s == 0.0
    for _ in range(6):  # a failure every 5 s for 25 s
        clock.advance(5)
        stats.record("tokens_batch", latency_s=0.1, status=503)
    snap = stats.snapshot()["tokens_batch"]
    assert snap.failing_s == 25.0 and snap.last_success_age_s == 30.0
    clock.advance(5)
    stats.record("tokens_batch", latency_s=0.1, status=404)  # an answer: the API is up
    assert stats.snapshot()["tokens_batch"].failing_s == 0.0


def test_two_failures_or_an_old_streak_are_not_failing(clock: ManualClock) -> None:
    stats = ApiStats(clock=clock, window_s=300)
    stats.record("token_pairs", timeout=True)
    clock.advance(100)
    stats.record("token_pairs", status=429, latency_s=0.1)
    assert stats.snapshot()["token_pairs"].failing_s == 0.0  # two in a row: not yet a streak
    clock.advance(100)
    stats.record("token_pairs", error="ClientConnectorError")
    assert stats.snapshot()["token_pairs"].failing_s == 200.0
    assert stats.snapshot()["token_pairs"].last_success_age_s is None  # never answered
    clock.advance(301)  # nobody asked since: no current evidence
    assert stats.snapshot()["token_pairs"].failing_s == 0.0


def test_failing_goes_on_counting_while_only_probes_go_out(clock: ManualClock) -> None:
    """The circuit breaker opened after a few failures: one probe every 20 s, each failing. The
    endpoint has been failing all along, so the outage alert's clock does not wait for the probes."""
    stats = ApiStats(clock=clock, window_s=300)
    for _ in range(3):
        stats.record("tokens_batch", status=503, latency_s=0.01)
        clock.advance(0.5)
    seen = []
    for _ in range(3):
        clock.advance(10)
        seen.append(stats.snapshot()["tokens_batch"].failing_s)
        clock.advance(10)
        stats.record("tokens_batch", status=503, latency_s=0.01)     # the probe
    assert seen == [11.5, 31.5, 51.5]
    stats.record("tokens_batch", status=200, latency_s=0.05)        # an answer ends it at once
    assert stats.snapshot()["tokens_batch"].failing_s == 0.0


async def test_the_api_collector_emits_the_streak(clock: ManualClock) -> None:
    stats = ApiStats(clock=clock)
    for _ in range(4):
        stats.record("tokens_batch", timeout=True)
        clock.advance(10)
    samples = {(s.name, s.labels.get("endpoint")): s.value for s in await ApiCollector(stats.snapshot).collect(0)}
    assert samples[(m.API_FAILING_SECONDS, "tokens_batch")] == 40.0   # from the first failure until now
    assert samples[(m.API_FAILING_SECONDS, "token_profiles")] == 0.0
    assert (m.API_LAST_SUCCESS_AGE_SECONDS, "tokens_batch") not in samples


async def test_discovery_silence_counts_from_the_last_token_seen_or_from_start(clock: ManualClock) -> None:
    counters = PipelineCounters()
    registry = CollectorRegistry(clock=clock)
    registry.register(PipelineCountersCollector(counters))
    await registry.collect_all(clock.time())
    assert registry.latest_value(m.DISCOVERY_SILENCE_SECONDS, {"source": "pumpportal"}) == 0.0
    clock.advance(120)
    await registry.collect_all(clock.time())
    assert registry.latest_value(m.DISCOVERY_SILENCE_SECONDS, {"source": "pumpportal"}) == 120.0
    counters.last_seen_at["pumpportal"] = clock.time() - 3
    counters.last_seen_at["dexscreener_profiles"] = clock.time() - 40
    await registry.collect_all(clock.time())
    assert registry.latest_value(m.DISCOVERY_SILENCE_SECONDS, {"source": "pumpportal"}) == 3.0
    assert registry.latest_value(m.DISCOVERY_SILENCE_SECONDS, {"source": "dexscreener_profiles"}) == 40.0


async def test_intake_marks_a_known_mint_as_discovery_talking(sqlite_db, clock: ManualClock) -> None:
    from tokens.intake import TokenIntake

    intake = TokenIntake(sqlite_db, clock)
    mint = "So1anaMint" + "1" * 30
    await intake.add(mint, source="pumpportal")
    clock.advance(50)
    assert not await intake.add(mint, source="pumpportal")  # a duplicate still proves the feed is alive
    assert intake.counters.last_seen_at["pumpportal"] == clock.time()
    await intake.add("not a mint", source="pumpportal")
    assert intake.counters.last_seen_at["pumpportal"] == clock.time()


def test_stuck_reasons_become_samples() -> None:
    snap = pipeline_snapshot(0.0, stuck=7, stuck_by_reason={"failing_checks": 5, "never_checked": 2})
    samples = {(s.name, s.labels.get("reason")): s.value for s in snapshot_samples(snap)}
    assert samples[(m.STUCK_TOKENS, None)] == 7
    assert samples[(m.STUCK_TOKENS_BY_REASON, "failing_checks")] == 5
    assert samples[(m.STUCK_TOKENS_BY_REASON, "never_checked")] == 2
