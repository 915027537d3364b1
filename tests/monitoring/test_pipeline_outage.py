"""A total market outage must not look healthy (operator review, findings 1, 3, 9, 11/12).

Failed fetches are recorded as checks, so during an outage checks keep arriving while
nothing is learned. The pipeline snapshot, /metrics' stalled flag and /status judge on the
last SUCCESSFUL check and name the fetch stage; /token does not judge conditions on data it
never got; the failure hint talks about fetching first. Every figure is worked out in the
comments; the clock never moves on its own.
"""
from __future__ import annotations

import re

import pytest

from monitoring import metric_names as m
from monitoring.collectors.pipeline import PipelineCollector
from monitoring.failure_stats import failure_stats
from monitoring.pipeline import LagParams, PipelineParams, StuckParams, pipeline_snapshot
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import NOW, VIEWER, say
from tests.monitoring.market_helpers import track
from tests.monitoring.test_pipeline_bot import pipeline_bot  # noqa: F401 - fixture
from tokens.models import Check, Token
from tokens.check_rollup import rebuild_check_rollup

OUTAGE_ERROR = "http_503: tokens_batch failed after 4 attempts"
PARAMS = PipelineParams(lag=LagParams(50.0, 10.0, 45.0), stuck=StuckParams(180.0, 3), rate_window_s=300,
                        activation_window_s=3600, stall_intervals=3)


async def _outage(db, now: float) -> None:
    """One monitored token (not due: next check in 30 s). Its last successful check was 200 s
    ago; since then 50 fetches failed, one every 2 s (now-2 ... now-100)."""
    async with db.session() as session:
        token = Token(mint="O" * 44, name="Outage", status="monitoring", status_since=now - 1000,
                      discovered_at=now - 1000, next_check_at=now + 30, last_check_at=now - 2,
                      last_success_at=now - 200, consecutive_failures=50, check_count=51)
        session.add(token)
        await session.flush()
        session.add(Check(check_id="ok", token_id=token.id, at=now - 200, status_at_check="monitoring", ok=True,
                          passed=False, primary_failure="no_external_pool", failure_codes="no_external_pool"))
        session.add_all(Check(check_id=f"f{i}", token_id=token.id, at=now - 2 * i, status_at_check="monitoring",
                              ok=False, passed=False, error=OUTAGE_ERROR) for i in range(1, 51))
        await rebuild_check_rollup(session)  # the per-minute counts monitoring reads
        await session.commit()


async def test_an_outage_stalls_the_pipeline_at_the_fetch_stage(db):
    now = 1_700_000_000.0
    await _outage(db, now)
    snap = await pipeline_snapshot(db, now, PARAMS)
    # no active token: cold interval 45 s x 3 = 135 s; last successful check 200 s ago > 135 s
    assert snap.stall.stalled and snap.stall.silent_for_s == pytest.approx(200.0)
    # checks are still attempted (last one 2 s ago), so it is the fetch stage that stopped
    assert snap.stall.stage == "fetch"
    assert snap.stall.stage_reason == "every fetch failing (50 failed, last attempt 2 s ago)"
    # 300 s window = 5 min: 1 successful check -> 0.2/min, 50 failed -> 10/min
    assert (snap.check_rates.ok, snap.check_rates.failed) == (pytest.approx(0.2), pytest.approx(10.0))
    assert snap.last_check_at == now - 2 and snap.last_success_at == now - 200

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for s in await PipelineCollector(db, PARAMS).collect(now)}
    assert samples[(m.PIPELINE_STALLED, ())] == 1.0


async def test_checks_keep_the_pipeline_healthy_only_when_they_succeed(db):
    now = 1_700_000_000.0
    await _outage(db, now)
    # 150 s earlier the last successful check was 50 s old (< 135 s): not stalled, then
    snap = await pipeline_snapshot(db, now - 150, PARAMS)
    assert not snap.stall.stalled


async def test_fetch_failures_come_first_in_the_hint_from_a_fifth_of_the_checks(db):
    now = 1_700_000_000.0
    async with db.session() as session:
        token = Token(mint="H" * 44, status="monitoring", status_since=now - 900, discovered_at=now - 900)
        session.add(token)
        await session.flush()
        # 7 checks failing on no_external_pool (a market condition) and 3 failed fetches
        session.add_all(Check(check_id=f"n{i}", token_id=token.id, at=now - 10 - i, status_at_check="monitoring",
                              ok=True, passed=False, primary_failure="no_external_pool",
                              failure_codes="no_external_pool") for i in range(7))
        session.add_all(Check(check_id=f"e{i}", token_id=token.id, at=now - 100 - i, status_at_check="monitoring",
                              ok=False, passed=False, error="http_503") for i in range(3))
        await rebuild_check_rollup(session)  # the per-minute counts monitoring reads
        await session.commit()
    async with db.session() as session:
        stats = await failure_stats(session, now)
    # no_external_pool is the top reason (7 of 10 = 70%), but 3 of 10 = 30% >= 20% failed to fetch
    assert stats.windows["1h"].by_reason[0].reason == "no_external_pool"
    assert stats.recommendation.startswith("30% of checks (last 1h: 3 of 10) failed to fetch pool data")
    assert "(top: no_external_pool 70%)" in stats.recommendation
    # under the threshold (demanding 31 %) the market-condition advice stays
    async with db.session() as session:
        calm = await failure_stats(session, now, fetch_alert_share=0.31)
    assert calm.recommendation.startswith("most failures (70%, last 1h) are no_external_pool")


async def test_status_during_an_outage_shows_failed_checks_and_the_stall(fake, frame_ctx, pipeline_bot):  # noqa: F811
    await _outage(frame_ctx.db, NOW)
    text = (await say(fake, VIEWER, VIEWER, "/status")).plain
    # the rate window (RATE_WINDOW_S, 1 min): the one ok check (200 s ago) is outside it; failed
    # fetches at now-2, now-4 ... now-58 -> 29 in the minute. The counts are per minute
    # (tokens/check_rollup.py): the minute holding now-60 counts for the share of its checks' span
    # inside the window, so unless NOW is on a minute the figure is 29 give or take one check.
    rate = re.search(r"Checks/min \(last 1 min\): 0\.0 ok, ([0-9.]+) failed \(fetch\)", text)
    assert rate is not None and abs(float(rate.group(1)) - 29.0) <= 1.0, text
    # 200 s = 3m 20s without a successful check, threshold 3 x 45 s = 135 s
    assert re.search(r"🔴 STALLED: no successful check for 3m 20s — stopped at fetch: every fetch failing "
                     r"\((28|29|30) failed, last attempt 2 s ago\)", text), text
    # the only token is not due: nothing is late
    assert "Lag hot: none due" in text and "Lag cold: none due" in text
    # every fetch fails now: the hint is about fetching, never about the tokens
    assert "💡 fetches are failing now (100% of checks in the last 1 min failed to fetch pool data)" in text
    assert "a market condition" not in text


async def test_token_during_an_outage_evaluates_nothing(fake, frame_ctx, pipeline_bot):  # noqa: F811
    market = pipeline_bot
    mint = market.model.new_mint()
    await track(frame_ctx.db, mint, NOW)
    market.faults.set(outage=True, outage_mode="503")
    text = (await say(fake, VIEWER, VIEWER, f"/token {mint}")).plain
    assert "⚠️ could not evaluate: the fetch failed (" in text and "no condition was judged" in text
    # nothing judged against the empty answer: no "fresh" data, no "no pairs" verdict
    assert "data_fresh" not in text and "would not activate" not in text and "no_pairs" not in text
    assert "fetch failures in a row 0" in text


async def test_a_check_written_after_the_cycle_read_its_clock_hides_no_earlier_success(db):
    """The cycle reads the clock at ``now``, half a second into a minute; a batch of checks is
    written (``at`` = now + 0.3) before its queries run. The newest minute with a success is then the
    new one, which holds no success at or before ``now``; the success 20 s before (the minute
    before) is still the last one. Judging "no success at all" raised a false critical stall the
    moment an outage began on a loaded machine (CI), and could on any cycle at a minute's start."""
    minute = 1_700_000_040.0              # a whole minute (28,333,334 x 60)
    now = minute + 0.5
    async with db.session() as session:
        token = Token(mint="N" * 44, name="Next", status="active", status_since=now - 500,
                      discovered_at=now - 500, next_check_at=now + 1, last_check_at=now + 0.3,
                      last_success_at=now + 0.3, check_count=2)
        session.add(token)
        await session.flush()
        for cid, at in (("before", minute - 20), ("after", now + 0.3)):
            session.add(Check(check_id=cid, token_id=token.id, at=at, status_at_check="active", ok=True,
                              passed=True))
        await rebuild_check_rollup(session)
        await session.commit()
    snap = await pipeline_snapshot(db, now, PARAMS)
    assert snap.last_success_at == minute - 20
    # active token: hot interval 10 s x 3 = 30 s; the last success 20.5 s ago is not a stall
    assert not snap.stall.stalled and snap.stall.silent_for_s == pytest.approx(20.5)
