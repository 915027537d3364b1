"""Pool data served stale (RFC 5861) through the real client, pipeline, local market and database:
when the market fails, a token is judged on its cached pools, marked with their age, never older
than STALE_DATA_S; while the market is slow, cached pools live longer and spare requests."""
from __future__ import annotations

import json

import aiohttp
import pytest
from sqlalchemy import select

from bot.views.token import render_token_debug
from monitoring.activation_debug import debug_token
from monitoring.collectors.pool_cache import PoolCacheCollector
from recovery.cache_lifetime import CACHE_KNOB, CacheLifetimeController, register_cache_knob
from recovery.knobs import KnobRegistry
from tokens.api_stats import ApiStats
from tokens.dexscreener import DexScreenerClient, EndpointTimeouts, FetchError
from tokens.models import Check
from tokens.pool_cache import PoolCache
from tokens.ratelimit import RateLimiter
from tokens.sql import execute
from simulator.telegram_html import check_message
from tokens.activation import ActivationRules

STALE_DATA_S = 600.0


@pytest.fixture
async def cached_client(market, clock):
    async with aiohttp.ClientSession() as session:
        yield DexScreenerClient(market.dexscreener_base_url, session, RateLimiter(6000), ApiStats(),
                                EndpointTimeouts(2.0), clock, retry_base_s=0.01, retry_max_s=0.05,
                                cache=PoolCache(stale_if_error_s=STALE_DATA_S, max_entries=100))


async def test_a_failing_market_is_answered_from_the_cache_until_the_data_is_too_old(market, clock, cached_client):
    mints = market.model.seed_tokens(3)
    fresh = await cached_client.fetch_batch(mints)
    assert all(fresh.pairs_by_mint[m] for m in mints) and not fresh.cached_at

    clock.advance(120.0)
    await market.apply_faults({"error_rate": 1.0, "error_codes": [502]})
    stale = await cached_client.fetch_batch(mints)       # stale-if-error: no exception, the same pools
    assert {m: len(p) for m, p in stale.pairs_by_mint.items()} == {m: len(p) for m, p in fresh.pairs_by_mint.items()}
    assert all(clock.time() - stale.fetched_at_for(m) == pytest.approx(120.0) for m in mints)
    assert all("http_502" in stale.stale_reason[m] for m in mints)

    clock.advance(STALE_DATA_S)                           # now 720 s old: never served
    with pytest.raises(FetchError) as err:
        await cached_client.fetch_batch(mints)
    assert err.value.kind == "http_502"


async def test_inside_the_lifetime_a_batch_asks_nothing_of_the_market(market, clock, cached_client):
    mints = market.model.seed_tokens(2)
    await cached_client.fetch_batch(mints)
    asked = sum(market.stats.requests.values())
    cached_client.cache.set_fresh_s(30.0)
    clock.advance(10.0)
    result = await cached_client.fetch_batch(mints)
    assert sum(market.stats.requests.values()) == asked   # no request
    assert set(result.cached_at) == set(mints) and not result.stale_reason
    clock.advance(25.0)                                   # 35 s old: past the lifetime, revalidated
    result = await cached_client.fetch_batch(mints)
    assert sum(market.stats.requests.values()) == asked + 1 and not result.cached_at


async def test_a_check_judged_on_stale_pools_says_so_and_old_data_is_a_failed_check(db, clock, market,
                                                                                    make_pipeline):
    pipeline = await make_pipeline(stale_data_s=STALE_DATA_S)
    mint = market.model.new_mint()
    assert await pipeline.intake.add(mint, source="test")
    assert await pipeline.processor.run_once() == 1

    clock.advance(60.0)
    await market.apply_faults({"error_rate": 1.0, "error_codes": [503]})
    assert await pipeline.processor.run_once() == 1
    clock.advance(STALE_DATA_S)
    assert await pipeline.processor.run_once() == 1

    async def q(session):
        return list((await execute(session, select(Check).order_by(Check.at))).scalars())
    first, stale, too_old = await db.run(q)
    assert first.ok and first.error is None
    assert stale.ok and stale.error.startswith("stale: pools from 60s ago (the market failed:")
    age = next(c for c in json.loads(stale.conditions) if c["name"] == "data_fresh")
    assert age["observed"] == pytest.approx(60.0, abs=1.0)   # judged with the data's real age
    assert not too_old.ok and "503" in too_old.error          # older than STALE_DATA_S: no decision on it
    # /metrics counts the check answered from stale pools
    samples = await PoolCacheCollector(lambda: pipeline.pool_cache).collect(clock.time())
    served = {s.labels.get("kind"): s.value for s in samples if s.name == "tokenwatch_pool_cache_served_total"}
    assert served == {"fresh": 0.0, "stale": 1.0}


async def test_token_shows_cached_pools_as_stale(db, clock, market, make_pipeline):
    pipeline = await make_pipeline(stale_data_s=STALE_DATA_S)
    mint = market.model.new_mint()
    assert await pipeline.intake.add(mint, source="test")
    assert await pipeline.processor.run_once() == 1
    clock.advance(130.0)
    await market.apply_faults({"error_rate": 1.0, "error_codes": [500]})
    assert await pipeline.processor.run_once() == 1
    debug = await debug_token(db, pipeline.client, ActivationRules.from_settings(pipeline.settings), mint,
                              clock.time())
    text = render_token_debug(debug, clock.time())
    assert check_message(text, "HTML") is None
    assert "<b>stale</b>: cached 2m 10s ago; the market failed" in text
    assert "🕰 stale: pools from 130s ago" in text


def test_the_lifetime_rises_while_the_market_is_slow_and_falls_back_with_hysteresis(clock):
    cache = PoolCache(stale_if_error_s=STALE_DATA_S)
    knobs = KnobRegistry(clock)
    register_cache_knob(knobs, cache, maximum_s=STALE_DATA_S)
    controller = CacheLifetimeController(knobs, slow_lifetime_s=30.0)
    assert controller.observe(1.9) is None and cache.fresh_s() == 0.0
    assert controller.observe(2.4) == 30.0 and cache.fresh_s() == 30.0
    assert controller.observe(1.7) is None and cache.fresh_s() == 30.0   # between the edges: no flapping
    assert controller.observe(1.2) == 0.0 and cache.fresh_s() == 0.0
    knobs.adjust(CACHE_KNOB, 10.0, controller="operator", reason="/tune", actor="@ann")
    assert controller.observe(5.0) is None and cache.fresh_s() == 10.0  # an operator's pin is left alone


def test_the_cache_is_bounded_and_clearable(clock):
    cache = PoolCache(stale_if_error_s=STALE_DATA_S, max_entries=2)
    for i, mint in enumerate(("a", "b", "c")):
        cache.put(mint, [], fetched_at=float(i))
    assert cache.get("a") is None and len(cache) == 2     # the least recently stored went first
    assert cache.clear() == 2 and len(cache) == 0
