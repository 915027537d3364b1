"""The DexScreener client against the local market: Retry-After, retries, junk."""
from __future__ import annotations

import aiohttp
import pytest

from simulator.faults import FaultError
from simulator.server import LocalMarket
from tokens.api_stats import ApiStats
from tokens.dexscreener import DexScreenerClient, EndpointTimeouts, FetchError
from tokens.ratelimit import RateLimiter


@pytest.fixture
async def live_market():
    async with LocalMarket(seed=11, autostart_flow=False, rate_limit_per_min=6000) as m:
        yield m


@pytest.fixture
async def client(live_market):
    async with aiohttp.ClientSession() as session:
        yield DexScreenerClient(live_market.dexscreener_base_url, session, RateLimiter(6000), ApiStats(),
                                EndpointTimeouts(2.0), retry_base_s=0.01, retry_max_s=0.05)


async def test_429_retry_after_is_honoured_without_hammering(live_market, client):
    mints = live_market.model.seed_tokens(3)
    live_market.faults.set(storm_s=0.4, storm_retry_after_s=1)
    result = await client.fetch_batch(mints)
    assert all(result.pairs_by_mint[m] for m in mints)
    assert live_market.stats.served_429 == 1  # we waited out Retry-After instead of retrying at once
    assert client.limiter.pauses == 1
    assert client.stats.snapshot()["tokens_batch"].rate_limited == 1


async def test_server_errors_are_retried_then_reported(live_market, client):
    mints = live_market.model.seed_tokens(2)
    live_market.faults.set(error_rate=1.0, error_codes=[502])
    with pytest.raises(FetchError) as err:
        await client.fetch_batch(mints)
    assert err.value.kind == "http_502"
    snap = client.stats.snapshot()["tokens_batch"]
    assert snap.requests == client.max_retries + 1 and snap.error_rate == 1.0


async def test_hanging_requests_time_out_per_endpoint(live_market, client):
    mints = live_market.model.seed_tokens(1)
    client.set_timeout_s("tokens_batch", 0.2)
    client.max_retries = 0
    live_market.faults.set(hang_rate=1.0)
    with pytest.raises(FetchError) as err:
        await client.fetch_batch(mints)
    assert err.value.kind == "timeout" and client.timeout_s("tokens_batch") == 0.2
    assert client.stats.snapshot()["tokens_batch"].timeouts == 1


async def test_more_than_30_mints_is_refused_before_any_request(client):
    with pytest.raises(ValueError):
        await client.fetch_batch(["x"] * 31)


async def test_profiles_skip_other_chains(live_market, client):
    live_market.model.seed_tokens(10)
    addresses = await client.fetch_profiles()
    assert len(addresses) == 10 and all(not a.startswith("0x") for a in addresses)


async def test_429_with_an_http_date_retry_after_is_waited_out(market, clock):
    """``Retry-After: <HTTP date>`` (RFC 9110) is read as a date, not as junk worth a 1 s default:
    a 30 s storm answered with dates 20 s ahead costs two 429s and two ~20 s waits."""
    mints = market.model.seed_tokens(2)
    market.faults.set(storm_s=30, storm_retry_after_s=20, retry_after_form="http_date")
    waits: list[float] = []

    async def wait_on_the_manual_clock(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{market.dexscreener_base_url}/tokens/v1/solana/{mints[0]}") as response:
            assert response.status == 429 and response.headers["Retry-After"].endswith(" GMT")
        limiter = RateLimiter(6000, clock=clock, sleep=wait_on_the_manual_clock)
        client = DexScreenerClient(market.dexscreener_base_url, session, limiter, ApiStats(), 2.0, clock=clock,
                                   sleep=wait_on_the_manual_clock)
        result = await client.fetch_batch(mints)
    assert all(result.pairs_by_mint[m] for m in mints)
    assert market.stats.served_429 == 3 and limiter.pauses == 2  # our probe, then two for the client
    assert len(waits) == 2 and all(19.0 <= w <= 21.0 for w in waits)


def test_the_retry_after_form_is_a_validated_fault_setting(market) -> None:
    with pytest.raises(FaultError, match="retry_after_form"):
        market.faults.set(retry_after_form="minutes")
    assert market.faults.snapshot()["retry_after_form"] == "seconds"
