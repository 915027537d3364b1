"""Pipeline monitoring queries against a hand-built dataset, on SQLite and PostgreSQL.

The dataset is in ``pipeline_data.py``; N is now. Every expected figure is worked out
in the comment next to it.
"""
from __future__ import annotations

import pytest

from monitoring.failure_stats import FETCH_ERROR, failure_stats
from tokens.activation import parse_conditions
from monitoring.pipeline import (
    LagParams,
    PipelineParams,
    QueueTrend,
    StageView,
    StuckParams,
    activation_success,
    checks_per_minute,
    pipeline_snapshot,
    processing_lag,
    stuck_tokens,
    time_to_activation,
    transitions_per_minute,
)
from tests.monitoring import pipeline_data
from tests.monitoring.pipeline_data import N
from tokens.queries import counts_by_status

# fresh_hot_s=0: bands by status and score only (the fresh-token rule has its own test below)
LAG = LagParams(hot_score_threshold=50.0, hot_interval_s=10.0, cold_interval_s=45.0, fresh_hot_s=0.0)
STUCK = StuckParams(stuck_after_s=180.0, failure_streak=3)


@pytest.fixture
async def data(db):
    async with db.session() as session:
        return await pipeline_data.build(session)


async def test_counts_and_rates(db, data):
    async with db.session() as s:
        counts = await counts_by_status(s)
        moves = await transitions_per_minute(s, N, 300)
        checks = await checks_per_minute(s, N, 300)
    # monitoring: T1 T2 T3 T6 S1 S2 S3 S4 S5 S7 = 10; active: T4 T5 S6 S8 = 4; archived: T7
    assert counts == {"monitoring": 10, "active": 4, "archived": 1}
    # 300 s = 5 min: 6 discoveries -> 1.2/min; 3 activations (N-100, -200, -250) -> 0.6;
    # archivals from monitoring: only N-50 (N-3000 is outside) -> 0.2; active->archived N-10 -> 0.2
    assert moves == pytest.approx({(None, "monitoring"): 1.2, ("monitoring", "active"): 0.6,
                                   ("monitoring", "archived"): 0.2, ("active", "archived"): 0.2})
    # monitoring checks inside 300 s: 2 passed + 6 failed + 2 fetch errors = 10 -> 2/min; active: 5 -> 1/min
    assert checks == pytest.approx({"monitoring": 2.0, "active": 1.0})


async def test_lag_and_backlog(db, data):
    async with db.session() as s:
        lag = await processing_lag(s, N, LAG)
    mon, act = lag.by_status["monitoring"], lag.by_status["active"]
    # nearest rank: the value at rank ceil(p x n).
    # monitoring due lags [5, 20, 50]: p50 rank ceil(1.5) = 2 -> 20; p95 rank ceil(2.85) = 3 -> 50; max 50
    assert (mon.count, mon.p50, mon.p95, mon.max) == (3, pytest.approx(20.0), pytest.approx(50.0), 50.0)
    # active [2, 15]: p50 rank 1 -> 2; p95 rank 2 -> 15
    assert (act.count, act.p50, act.p95, act.max) == (2, pytest.approx(2.0), pytest.approx(15.0), 15.0)
    hot, cold = lag.by_band["hot"], lag.by_band["cold"]
    # hot = T1 (score 60 > 50), T4 and T5 (active): [2, 5, 15]: p50 rank 2 -> 5; p95 rank 3 -> 15
    assert (hot.count, hot.p50, hot.p95, hot.max) == (3, pytest.approx(5.0), pytest.approx(15.0), 15.0)
    # cold = T2 (score 10), T3 (no score): [20, 50]: p50 rank 1 -> 20; p95 rank 2 -> 50
    assert (cold.count, cold.p50, cold.p95, cold.max) == (2, pytest.approx(20.0), pytest.approx(50.0), 50.0)
    # backlog: 5 due; overdue by more than one interval: T4 (15 > 10, hot) and T3 (50 > 45, cold)
    assert (lag.due, lag.overdue, lag.overdue_by_band) == (5, 2, {"hot": 1, "cold": 1})


async def test_fresh_monitoring_tokens_are_in_the_hot_band(db, data):
    # With FRESH_HOT_S = 120 s, T2 and T3 (in monitoring since N-100, low or no score) are hot, as
    # the processor schedules them. hot = T1, T4, T5 + T2, T3: lags [2, 5, 15, 20, 50]:
    # p50 rank ceil(2.5) = 3 -> 15; p95 rank ceil(4.75) = 5 -> 50; max 50. Nothing is cold.
    # overdue: T4 (15 > 10), T2 (20 > 10), T3 (50 > 10) = 3, all hot.
    fresh = LagParams(hot_score_threshold=50.0, hot_interval_s=10.0, cold_interval_s=45.0, fresh_hot_s=120.0)
    async with db.session() as s:
        lag = await processing_lag(s, N, fresh)
    hot = lag.by_band["hot"]
    assert (hot.count, hot.p50, hot.p95, hot.max) == (5, pytest.approx(15.0), pytest.approx(50.0), 50.0)
    assert "cold" not in lag.by_band
    assert (lag.due, lag.overdue, lag.overdue_by_band) == (5, 3, {"hot": 3, "cold": 0})


async def test_nothing_due_reports_empty_lag(db):
    async with db.session() as s:
        lag = await processing_lag(s, N, LAG)
    assert (lag.due, lag.overdue, lag.by_status, lag.overall_max) == (0, 0, {}, None)


async def test_lag_of_a_larger_backlog_matches_the_full_distribution(db):
    """The bounded lag queries (ranks fetched one pair at a time on SQLite) agree with the
    distribution of every due row, ties and NULL scores included."""
    import random

    from monitoring.pipeline.percentiles import Distribution
    from tokens.models import Token

    rng = random.Random(7)
    rows = []
    async with db.session() as session:
        for i in range(157):
            status = rng.choice(["monitoring", "monitoring", "active"])
            score = rng.choice([None, 10.0, 49.0, 51.0, 90.0])
            lag = float(rng.choice([0, 1, 2, 3, 7.5, 9, 11, 30, 44, 46, 120, 600]) if i % 3 else rng.uniform(0, 900))
            next_at = N - lag if i % 11 else N + 5  # every 11th token is not due yet
            session.add(Token(mint=f"L{i:043d}", status=status, status_since=N - 1000, discovered_at=N - 1000,
                              next_check_at=next_at, score_ewma=score))
            if next_at <= N:
                rows.append((status, "hot" if status == "active" or (score or 0) > 50 else "cold", N - next_at))
        await session.commit()
    async with db.session() as s:
        lag = await processing_lag(s, N, LAG)

    def dist(values):  # exactly: nearest rank picks an observed value on both sides
        d = Distribution.of(values)
        return (d.count, d.p50, d.p95, d.max)

    for status in ("monitoring", "active"):
        got = lag.by_status[status]
        assert (got.count, got.p50, got.p95, got.max) == dist([x for st, _, x in rows if st == status])
    for band in ("hot", "cold"):
        got = lag.by_band[band]
        assert (got.count, got.p50, got.p95, got.max) == dist([x for _, b, x in rows if b == band])
        assert lag.overdue_by_band[band] == sum(1 for _, b, x in rows if b == band and x > LAG.interval(band))
    assert lag.due == len(rows)


async def test_stuck_tokens_with_reasons_paginated(db, data):
    async with db.session() as s:
        first = await stuck_tokens(s, N, STUCK, page=0, page_size=3)
        second = await stuck_tokens(s, N, STUCK, page=1, page_size=3)
        past_end = await stuck_tokens(s, N, STUCK, page=9, page_size=3)
    # stuck (cutoff N-180, streak 3): S1 never checked, S2 last success N-400, S3 4 failures, S4 3 failures,
    # S8 (active) 6 failures: 1 + 1 + 1 + 1 + 1 = 5 -> 2 pages of 3.
    # Not stuck: S5 (success N-60), S7 (2 failures, young), T* (young), S6 (active, 0 failures: the
    # time rule is for monitoring only). Oldest first: S1 N-1000, S2 N-900, S8 N-850, S4 N-800, S3 N-100.
    assert first.total == 5 and first.pages == 2 and first.has_next and not first.has_prev
    assert [(i.mint[:2], i.reason) for i in first.items] == [
        ("S1", "never_checked"),
        ("S2", "no_successful_check"),
        ("S8", "failing_checks:TimeoutError: read timed out"),
    ]
    assert first.items[0].stuck_for_s == pytest.approx(1000.0)
    assert (first.items[2].status, first.items[2].consecutive_failures) == ("active", 6)
    assert [(i.mint[:2], i.reason) for i in second.items] == [
        # S4's last check (N-4900) carries no error, only its failure code; the older error is ignored
        ("S4", "failing_checks:insufficient_liquidity"),
        ("S3", "failing_checks:HTTP 503 from dexscreener"),
    ]
    assert not second.has_next and second.has_prev
    assert past_end.page == 1 and [i.mint[:2] for i in past_end.items] == ["S4", "S3"]


async def test_stuck_counts_by_reason_agree_with_the_listed_reasons(db, data):
    """What an alert says about 500 stuck tokens (counts by reason) is what /stuck lists one by one."""
    from collections import Counter

    from monitoring.pipeline.stuck import count_stuck_by_reason

    async with db.session() as s:
        by_reason = await count_stuck_by_reason(s, N, STUCK)
        listed = await stuck_tokens(s, N, STUCK, page=0, page_size=50)
    assert by_reason == {"failing_checks": 3, "never_checked": 1, "no_successful_check": 1}
    assert by_reason == dict(Counter(i.reason.split(":")[0] for i in listed.items))
    assert list(by_reason) == ["failing_checks", "never_checked", "no_successful_check"]  # largest first


async def test_activation_rate_and_time_to_activation(db, data):
    async with db.session() as s:
        rate = await activation_success(s, N, 3600)
        tta = await time_to_activation(s, N, 3600)
    # left monitoring within 1 h: 3 activations + 2 archivals (N-50, N-3000); N-4000 is outside -> 3/5
    assert (rate.left_monitoring, rate.activated, rate.token_rate) == (5, 3, pytest.approx(0.6))
    # evaluated monitoring checks within 1 h: 2 passed + 6 failed + 4 failed (T6) = 12; fetch errors excluded
    assert (rate.checks_evaluated, rate.checks_passed) == (12, 2)
    assert rate.check_pass_rate == pytest.approx(2 / 12)
    # time in monitoring of the 3 activations [60, 120, 600]: p50 rank 2 -> 120; p95 rank 3 -> 600
    assert (tta.count, tta.p50, tta.p95, tta.max) == (3, pytest.approx(120.0), pytest.approx(600.0), 600.0)


async def test_failure_stats_and_recommendation(db, data):
    async with db.session() as s:
        stats = await failure_stats(s, N)
    h1, h24 = stats.windows["1h"], stats.windows["24h"]
    # 1 h: 14 monitoring checks, 12 failed: liquidity 6 (T2), no_pump_pool 4 (T6), fetch errors 2 (T3)
    assert (h1.checks, h1.failed) == (14, 12)
    assert [(f.reason, f.count) for f in h1.by_reason] == [
        ("insufficient_liquidity", 6), ("no_pump_pool", 4), (FETCH_ERROR, 2)]
    assert h1.by_reason[0].share == pytest.approx(0.5)
    # codes: T6 checks carry both codes -> liquidity 6 + 4 = 10, no_pump_pool 4
    assert [(f.reason, f.count) for f in h1.by_code] == [("insufficient_liquidity", 10), ("no_pump_pool", 4)]
    # 24 h adds S3 (fetch error), S4 (fetch error + liquidity): 17 checks, 15 failed
    assert (h24.checks, h24.failed) == (17, 15)
    assert [(f.reason, f.count) for f in h24.by_reason] == [
        ("insufficient_liquidity", 7), (FETCH_ERROR, 4), ("no_pump_pool", 4)]
    # external liquidity of the 6 liquidity failures in 1 h: 170 175 180 180 185 190 -> median 180 < $200
    assert stats.top_condition is not None
    assert (stats.top_condition.samples, stats.top_condition.median_observed) == (6, 180.0)
    assert stats.recommendation == (
        "most failures (50%, last 1h) are insufficient_liquidity just under the $200 threshold: "
        "median external liquidity $180 — consider whether $200 is the right floor")


async def test_failure_stats_empty_database_has_no_recommendation(db):
    async with db.session() as s:
        stats = await failure_stats(s, N)
    assert stats.recommendation is None and stats.windows["1h"].failed == 0


def test_parse_conditions_rejects_junk():
    assert parse_conditions("{not json") is None
    assert parse_conditions('"a string"') is None
    assert parse_conditions('[{"name": "x"}, 3, null]') == [{"name": "x"}]
    assert parse_conditions('{"conditions": [{"name": "y"}]}') == [{"name": "y"}]
    assert parse_conditions("[" * 100_000) is None  # nested too deep: junk, not a crash


async def test_snapshot_flags_a_stall_and_names_the_stopped_stage(db, data):
    params = PipelineParams(lag=LAG, stuck=STUCK, rate_window_s=300, activation_window_s=3600, stall_intervals=3)
    healthy = await pipeline_snapshot(db, N, params)
    # last check N-10; active tokens exist so the hot interval counts: 3 x 10 s = 30 s > 10 s silent
    # stuck: S1 S2 S3 S4 (monitoring) + S8 (active, 6 failures) = 5
    assert healthy.last_check_at == N - 10 and not healthy.stall.stalled and healthy.stuck_count == 5
    trend = QueueTrend(min_samples=3)
    now = N + 100
    for queue in (2, 5, 9):  # the fetch queue keeps growing while nothing is written
        stats = {
            "scheduler": {"count": 50, "last_at": now - 1, "durations": [0.01] * 5, "queue_size": 0},
            "fetch": {"count": 40, "last_at": N - 10, "durations": [2.0, 2.0], "queue_size": queue},
            "scoring": {"count": 40, "last_at": N - 10, "durations": [0.1], "queue_size": 0},
            "db_write": {"count": 40, "last_at": N - 10, "durations": [0.05], "queue_size": 0},
        }
        snap = await pipeline_snapshot(db, now, params, stage_stats=stats, trend=trend)
    # 110 s without a check > 30 s; scheduler ran 1 s ago, fetch's queue grew 2 -> 9
    assert snap.stall.stalled and snap.stall.silent_for_s == pytest.approx(110.0)
    assert snap.stall.stage == "fetch" and "queue growing (+7" in snap.stall.stage_reason
    assert snap.bottleneck.stage == "fetch" and snap.bottleneck.growing_queues == {"fetch": 7}


def test_bottleneck_by_share_of_time_and_stall_on_silent_scheduler():
    from monitoring.pipeline import detect_stall, find_bottleneck

    views = [StageView("scheduler", 10, 100.0, 1.0, 0), StageView("fetch", 10, 100.0, 6.0, 0),
             StageView("scoring", 10, 100.0, 2.0, 0), StageView("db_write", 10, 100.0, 1.0, 0)]
    neck = find_bottleneck(views)
    # fetch 6 of 10 s of stage time
    assert neck.stage == "fetch" and neck.share == pytest.approx(0.6)
    stall = detect_stall(200.0, 90.0, live_tokens=3, interval_s=10, stall_intervals=3, views=views)
    # every stage last ran at 100, 100 s ago > 30 s: the scheduler, first in the check flow, is named
    assert stall.stalled and stall.stage == "scheduler" and stall.stage_reason == "last ran 100 s ago"
    assert not detect_stall(200.0, None, live_tokens=0, interval_s=10, stall_intervals=3).stalled


async def test_collector_emits_the_hand_worked_figures(db, data):
    from monitoring import metric_names as m
    from monitoring.collectors.pipeline import PipelineCollector

    params = PipelineParams(lag=LAG, stuck=STUCK, rate_window_s=300, activation_window_s=3600, stall_intervals=3)
    collector = PipelineCollector(db, params)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in await collector.collect(N)}
    assert samples[(m.TOKENS, (("status", "monitoring"),))] == 10
    assert samples[(m.PROCESSING_LAG_SECONDS, (("band", "hot"), ("quantile", "0.95")))] == pytest.approx(15.0)
    assert samples[(m.PROCESSING_LAG_SECONDS, (("quantile", "1"), ("status", "monitoring")))] == 50.0
    assert samples[(m.OVERDUE_TOKENS, (("band", "cold"),))] == 1
    assert samples[(m.STUCK_TOKENS, ())] == 5  # S1 S2 S3 S4 + active S8
    assert samples[(m.ACTIVATION_SUCCESS_RATE, ())] == pytest.approx(0.6)
    assert samples[(m.TIME_TO_ACTIVATION_SECONDS, (("quantile", "0.95"),))] == pytest.approx(600.0)
    assert samples[(m.TRANSITIONS_PER_MINUTE, (("from", "none"), ("to", "monitoring")))] == pytest.approx(1.2)
    assert samples[(m.LAST_CHECK_AGE_SECONDS, ())] == 10.0
    assert samples[(m.PIPELINE_STALLED, ())] == 0.0
    assert all(name in m.METRICS for name, _ in samples)
    assert collector.last_snapshot is not None and collector.last_snapshot.stuck_count == 5


def test_stage_views_read_the_pipelines_stage_stats(clock):
    from monitoring.pipeline import stage_views
    from tokens.stage_stats import StageStats

    stats = StageStats(clock)
    stats.record("fetch", 0.5, items=30)
    stats.record("fetch", 1.5, items=30)
    stats.set_queue("scheduler", 12)
    views = {v.name: v for v in stage_views(stats)}
    # fetch: 60 items, busy 0.5 + 1.5 = 2 s, last run now; scheduler never ran but has a queue
    assert (views["fetch"].count, views["fetch"].busy_s, views["fetch"].last_at) == (60, 2.0, clock.time())
    assert (views["scheduler"].last_at, views["scheduler"].queue_size) == (None, 12)
    assert list(views)[:5] == ["discovery", "fetch", "scoring", "db_write", "scheduler"]


async def test_a_fresh_start_is_no_stall_until_its_tokens_are_overdue(db):
    """No check at all yet: tokens live for less than the threshold (3 x 45 s cold) are not overdue;
    once the oldest has waited longer, processing has stopped."""
    from tokens.models import Token

    params = PipelineParams(lag=LAG, stuck=STUCK, rate_window_s=300, activation_window_s=3600, stall_intervals=3)
    async with db.session() as session:
        session.add(Token(mint="F" * 44, status="monitoring", status_since=N - 20, discovered_at=N - 20))
        await session.commit()
    fresh = await pipeline_snapshot(db, N, params)
    assert fresh.live_tokens == 1 and not fresh.stall.stalled
    overdue = await pipeline_snapshot(db, N + 120, params)     # 140 s > 135 s with no check
    assert overdue.stall.stalled and overdue.stall.silent_for_s is None
