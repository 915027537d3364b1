"""Backoffs stay bounded however long a failure lasts (review findings 3, 4).

A market that stays unreachable for a long time must not end the websocket listener (it
keeps reconnecting and connects when the market is back), and a token whose fetch failed
thousands of times in a row is still checked, recorded and rescheduled within the cap.
"""
from __future__ import annotations

import asyncio

import aiohttp
from sqlalchemy import update

from tokens import queries
from tokens.discovery_ws import MigrationListener
from tokens.intake import TokenIntake
from tokens.lifecycle import LifecyclePolicy, TokenState, backoff_s, decide
from tokens.models import MONITORING, Token
from tokens.sql import execute
from tests.tokens.conftest import eventually
from tests.tokens.pairfactory import MINT

FAILED_ATTEMPTS = 1100  # 2 ** 1024 no longer fits a float


async def test_listener_keeps_reconnecting_after_a_very_long_outage(sqlite_db, clock, market) -> None:
    delays: list[float] = []

    async def quick_sleep(seconds: float) -> None:  # the backoff is recorded, not waited out
        delays.append(seconds)
        await asyncio.sleep(0)

    await market.apply_faults({"outage": True, "outage_mode": "refuse"})
    async with aiohttp.ClientSession() as session:
        listener = MigrationListener(market.pumpportal_ws_url, session, TokenIntake(sqlite_db, clock),
                                     min_backoff_s=0.5, max_backoff_s=30.0, clock=clock, sleep=quick_sleep)
        task = asyncio.create_task(listener.run())
        try:
            await eventually(lambda: listener.failed_attempts >= FAILED_ATTEMPTS or task.done(), timeout_s=60)
            assert not task.done(), task.exception() if task.done() else None
            await market.apply_faults({"outage": False})
            await eventually(lambda: listener.state == "connected" or task.done(), timeout_s=10)
            assert listener.state == "connected" and listener.connects == 1
            assert max(delays) <= 30.0 and min(delays) >= 0.5
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await listener.stop()


def test_backoff_is_capped_after_thousands_of_failures() -> None:
    policy = LifecyclePolicy(hot_interval_s=10.0, cold_interval_s=45.0)
    cap = 45.0 * policy.backoff_cap_factor
    for failures in (1, 30, 1025, 1026, 10**6):
        assert 0 < backoff_s(failures, policy) <= cap * 1.25
        assert backoff_s(failures, policy, jitter=False) <= cap
    state = TokenState(MONITORING, status_since=0.0, consecutive_failures=5000)
    decision = decide(state, ok=False, passed=False, primary_failure=None, score_ewma=None, now=100.0,
                      policy=policy)
    assert decision.status == MONITORING and 100.0 < decision.next_check_at <= 100.0 + cap * 1.25


async def test_a_token_failing_for_ages_is_still_checked_and_rescheduled(db, clock, market, make_pipeline):
    pipeline = await make_pipeline(hot_check_interval_s=5, cold_check_interval_s=60)
    pipeline.client.max_retries = 0
    await pipeline.intake.add(MINT)
    await db.run(lambda s: execute(s, update(Token).where(Token.mint == MINT)
                                   .values(consecutive_failures=FAILED_ATTEMPTS)))
    market.faults.set(error_rate=1.0, error_codes=[503])
    assert await pipeline.processor.run_once() == 1
    t = await db.run(lambda s: queries.get_token(s, MINT))
    assert t.consecutive_failures == FAILED_ATTEMPTS + 1 and t.check_count == 1
    assert clock.time() < t.next_check_at <= clock.time() + 60 * 4 * 1.25
    check = (await db.run(lambda s: queries.last_checks(s, MINT, limit=1)))[0]
    assert not check.ok and "http_503" in check.error


def test_token_backoff_keeps_its_rule_on_the_shared_helper() -> None:
    """Hot interval doubling per failure, capped at cold x factor, jittered within 0.75-1.25."""
    policy = LifecyclePolicy(hot_interval_s=10.0, cold_interval_s=45.0, backoff_cap_factor=4.0)
    assert [backoff_s(n, policy, jitter=False) for n in (0, 1, 2, 3, 4, 5, 6)] == [10, 10, 20, 40, 80, 160, 180]
    delays = [backoff_s(3, policy) for _ in range(500)]
    assert 30.0 <= min(delays) < 32.0 and 48.0 < max(delays) <= 50.0
