"""The API limit shared through Redis (tokens/shared_limit.py), on real Redis.

Two ``SharedRateLimiter`` instances are two processes behind one address: they share only Redis.
Time is a ManualClock whose ``time()`` the Lua scripts use (instead of Redis TIME) and whose
fake sleep moves it, so "any 60 s window" is checked exactly, without waiting.
"""
from __future__ import annotations

import logging
import random
import uuid

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.clock import ManualClock
from app.settings import Settings
from tests.conftest import REDIS_TEST_URL
from tests.redis_outage import OwnRedis
from tests.tokens.test_rate_window_and_percentiles import max_in_any_window
from tokens.pipeline import API_BURST
from tokens.shared_limit import FALLBACK, SHARED, SharedRateLimiter, limiter_redis, shared_api_limiter


def fake_time() -> tuple[ManualClock, object]:
    clock = ManualClock(1_700_000_000.0)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return clock, sleep


def two_processes(redis: aioredis.Redis, clock: ManualClock, sleep: object, limit: int = 300,
                  headroom: float = 1.0, egress: str | None = None) -> list[SharedRateLimiter]:
    s = Settings(_env_file=None, api_rate_limit_per_min=limit, api_rate_headroom=headroom,
                 egress_id=egress or f"t{uuid.uuid4().hex[:8]}")
    return [shared_api_limiter(s, redis, clock=clock, sleep=sleep, burst=API_BURST)  # type: ignore[arg-type]
            for _ in range(2)]


async def drive(limiters: list[SharedRateLimiter], clock: ManualClock, steps: list[tuple[int, float]],
                pauses: dict[int, tuple[int, float]] | None = None) -> list[float]:
    """Each step: (which process, idle gap before its request). ``pauses``: at step i, process p
    got a 429 with Retry-After s. Returns the times the requests went out (all processes)."""
    sent: list[float] = []
    for i, (who, gap) in enumerate(steps):
        clock.advance(gap)
        if pauses and i in pauses:
            p, seconds = pauses[i]
            limiters[p].pause_for(seconds)
            await limiters[p].flush()  # the pause has reached Redis
        await limiters[who].acquire()
        sent.append(clock.monotonic())
    return sent


async def test_two_processes_together_stay_under_one_limit_in_every_60s_window(redis_client) -> None:
    clock, sleep = fake_time()
    a, b = two_processes(redis_client, clock, sleep, limit=300)
    rng = random.Random(7)
    # both flood at once (an idle start with its burst), a lull, then both flood again
    steps = [(rng.randrange(2), 0.0) for _ in range(900)] + [(0, 120.0)] + [(rng.randrange(2), 0.0) for _ in range(900)]
    sent = await drive([a, b], clock, steps)
    assert max_in_any_window(sent) <= 300
    assert max_in_any_window(sent) >= 297  # and together they use the whole budget, not half each
    assert a.acquired + b.acquired == len(steps) and a.state == b.state == SHARED


async def test_one_process_alone_may_use_the_whole_egress_limit(redis_client) -> None:
    clock, sleep = fake_time()
    a, _ = two_processes(redis_client, clock, sleep, limit=300)
    sent = await drive([a], clock, [(0, 0.0)] * 600)
    assert 297 <= max_in_any_window(sent) <= 300


async def test_another_egress_has_a_limit_of_its_own(redis_client) -> None:
    clock, sleep = fake_time()
    (a, _), (b, _) = two_processes(redis_client, clock, sleep, 60), two_processes(redis_client, clock, sleep, 60)
    sent = await drive([a, b], clock, [(i % 2, 0.0) for i in range(240)])
    assert max_in_any_window(sent) > 60  # two addresses: 60 each
    assert max_in_any_window([t for t, (who, _) in zip(sent, [(i % 2, 0) for i in range(240)]) if who == 0]) <= 60


@hsettings(max_examples=25, deadline=None)
@given(runs=st.lists(st.tuples(st.sampled_from([0.0, 0.05, 0.3, 1.0, 7.0, 30.0, 61.0]), st.integers(1, 60),
                               st.integers(0, 1)), min_size=1, max_size=8),
       pauses=st.dictionaries(st.integers(0, 299), st.tuples(st.integers(0, 1), st.floats(0.0, 10.0)), max_size=4))
async def test_no_window_over_the_limit_with_any_interleaving_and_retry_after(runs, pauses) -> None:
    # runs: (idle gap, then that many requests, from this process), like processors waking up after a lull
    redis = aioredis.from_url(REDIS_TEST_URL)
    try:
        try:
            await redis.ping()
        except Exception as exc:  # noqa: BLE001
            from tests.conftest import unavailable
            unavailable("Redis", exc)
        clock, sleep = fake_time()
        limiters = two_processes(redis, clock, sleep, limit=60)
        steps = [(who, g) for gap, n, who in runs for g in [gap] + [0.0] * (n - 1)]
        sent = await drive(limiters, clock, steps, pauses)
        assert max_in_any_window(sent) <= 60
    finally:
        await redis.aclose()


async def test_a_retry_after_in_one_process_pauses_the_other(redis_client) -> None:
    clock, sleep = fake_time()
    a, b = two_processes(redis_client, clock, sleep, limit=300)
    await drive([a, b], clock, [(0, 0.0), (1, 1.0)])
    a.pause_for(30.0)  # a got a 429 with Retry-After: 30
    await a.flush()
    before = clock.monotonic()
    await b.acquire()
    assert clock.monotonic() - before >= 30.0 - 1e-6  # b waited out a's Retry-After
    assert b.shared_pauses == 1 and b.pauses == 0 and a.pauses == 1
    sent = await drive([a, b], clock, [(i % 2, 0.0) for i in range(20)])
    assert max_in_any_window([clock.monotonic(), *sent]) <= 21  # the budget restarts smoothly, no backlog burst


async def test_redis_down_each_falls_back_to_its_share_and_rejoins_when_it_returns(caplog) -> None:
    caplog.set_level(logging.INFO, logger="tokens.shared_limit")
    with OwnRedis() as server:
        clock, sleep = fake_time()
        redis_a, redis_b = limiter_redis(server.url), limiter_redis(server.url)
        try:
            s = Settings(_env_file=None, api_rate_limit_per_min=300, api_rate_headroom=1.0, cluster_size_hint=1)
            a = shared_api_limiter(s, redis_a, clock=clock, sleep=sleep, burst=API_BURST)  # type: ignore[arg-type]
            b = shared_api_limiter(s, redis_b, clock=clock, sleep=sleep, burst=API_BURST)  # type: ignore[arg-type]
            assert await a.heartbeat() == 1 and await b.heartbeat() == 2 and await a.heartbeat() == 2
            assert a.rate_per_min == pytest.approx(297 / 2)  # the fair share while both are live

            server.stop()
            sent = await drive([a, b], clock, [(i % 2, 0.0) for i in range(600)])
            assert a.state == b.state == FALLBACK
            assert a.fallback_limiter().rate_per_min <= 150 - API_BURST  # each its share: 300 / 2 processes
            assert max_in_any_window(sent) <= 300  # together still under the one limit, without Redis
            assert max_in_any_window(sent) >= 280  # and the shares are used
            assert await a.heartbeat() is None
            falls = [r for r in caplog.records if "falls back" in r.getMessage()]
            assert len(falls) == 2  # one line per process, not one per request

            server.start()
            clock.advance(10.0)  # past retry_s: the next request tries Redis again
            await a.acquire()
            assert a.state == SHARED
            assert await b.heartbeat() is not None and b.state == SHARED  # a heartbeat rejoins too
            assert len([r for r in caplog.records if "reachable again" in r.getMessage()]) == 2
        finally:
            await redis_a.aclose()
            await redis_b.aclose()


async def test_a_process_that_never_reached_redis_takes_the_hinted_share() -> None:
    with OwnRedis() as server:
        url = server.url
    clock, sleep = fake_time()
    redis = limiter_redis(url)  # nobody listens there any more
    try:
        s = Settings(_env_file=None, api_rate_limit_per_min=300, api_rate_headroom=1.0, cluster_size_hint=4)
        limiter = shared_api_limiter(s, redis, clock=clock, sleep=sleep, burst=API_BURST)  # type: ignore[arg-type]
        sent = await drive([limiter], clock, [(0, 0.0)] * 300)
        assert limiter.state == FALLBACK and limiter.share == 4
        assert max_in_any_window(sent) <= 75  # 300 / CLUSTER_SIZE_HINT 4
    finally:
        await redis.aclose()


async def test_a_member_that_stops_heartbeating_no_longer_counts(redis_client) -> None:
    clock, sleep = fake_time()
    a, b = two_processes(redis_client, clock, sleep)
    assert await a.heartbeat() == 1 and await b.heartbeat() == 2
    clock.advance(a.member_ttl_s + 1)  # b died without leaving
    assert await a.heartbeat() == 1 and a.rate_per_min == pytest.approx(a.total_rate_per_min)
    await a.leave()
    assert await b.heartbeat() == 1  # a left cleanly; b is alone at once


async def test_the_pipeline_shares_its_limit_when_redis_is_set_and_keeps_the_local_one_without(redis_client,
                                                                                                sqlite_db) -> None:
    from tokens.pipeline import Pipeline
    from tokens.ratelimit import RateLimiter

    local = Pipeline(Settings(_env_file=None), sqlite_db, listen=False)
    assert isinstance(local.limiter, RateLimiter)
    s = Settings(_env_file=None, redis_url=REDIS_TEST_URL, egress_id="office", cluster_size_hint=3)
    async with Pipeline(s, sqlite_db, listen=False) as pipeline:
        limiter = pipeline.limiter
        assert isinstance(limiter, SharedRateLimiter) and limiter.egress == "office"
        assert [loop.id for loop in pipeline.loops()] == ["pipeline.shared_limit"]
        assert await limiter.heartbeat() == 1
        await limiter.acquire()
        assert await redis_client.exists("tokenwatch:limit:office:tat")
        assert pipeline.snapshot()["limiter"]["shared"]["state"] == SHARED
    assert await redis_client.zcard("tokenwatch:limit:office:members") == 0  # left on stop


async def test_a_flushed_redis_lets_no_fresh_burst_through(redis_client) -> None:
    clock, sleep = fake_time()
    a, b = two_processes(redis_client, clock, sleep, limit=60)
    sent = await drive([a, b], clock, [(i % 2, 0.0) for i in range(4)])  # an idle start: its burst went out
    await redis_client.flushdb()  # Redis restarted empty (or flushed): the tat is gone
    sent += await drive([a, b], clock, [(i % 2, 0.0) for i in range(90)])
    assert max_in_any_window(sent) <= 60  # the processes remembered where the schedule stood
