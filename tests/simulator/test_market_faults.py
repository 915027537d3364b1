"""Every fault kind, as an aiohttp client sees it, set from Python and from the admin API."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from app.clock import ManualClock
from simulator.faults import FaultController, FaultError
from simulator.server import LocalMarket


@pytest.fixture
async def market():
    market = LocalMarket(seed=5, autostart_flow=False, clock=ManualClock())
    market.model.add_token("Fault111pump")
    await market.start()
    yield market
    await market.stop()


def pairs_url(market: LocalMarket) -> str:
    return f"{market.dexscreener_base_url}/token-pairs/v1/solana/Fault111pump"


async def status_of(http, url) -> int:
    async with http.get(url) as response:
        await response.read()
        return response.status


async def test_error_rate_answers_with_the_configured_codes(market, http):
    market.faults.set(error_rate=1.0, error_codes=[502, 503])
    codes = {await status_of(http, pairs_url(market)) for _ in range(20)}
    assert codes == {502, 503}
    market.faults.set(error_rate=0.5, error_codes=[500])
    codes = [await status_of(http, pairs_url(market)) for _ in range(40)]
    assert 0 < codes.count(500) < 40 and set(codes) == {200, 500}
    market.faults.reset()
    assert await status_of(http, pairs_url(market)) == 200


async def test_malformed_and_empty_bodies_are_200_but_not_json(market, http):
    market.faults.set(malformed_rate=1.0)
    for _ in range(6):
        async with http.get(pairs_url(market)) as response:
            assert response.status == 200 and response.content_type == "application/json"
            with pytest.raises(json.JSONDecodeError):
                json.loads(await response.text())
    market.faults.set(malformed_rate=0.0, empty_rate=1.0)
    async with http.get(pairs_url(market)) as response:
        assert response.status == 200 and await response.read() == b""
    assert market.stats.faults["malformed"] == 6 and market.stats.faults["empty"] == 1


async def test_latency_makes_an_impatient_client_time_out(market):
    market.faults.set(latency_ms=2000, jitter_ms=100)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.1)) as impatient:
        with pytest.raises(asyncio.TimeoutError):
            await status_of(impatient, pairs_url(market))
    assert market.stats.faults["latency"] == 1
    market.faults.set(latency_ms=0, jitter_ms=0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as patient:
        assert await status_of(patient, pairs_url(market)) == 200


async def test_hanging_response_never_answers_and_market_stays_healthy(market, http):
    market.faults.set(hang_rate=1.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as impatient:
        with pytest.raises(asyncio.TimeoutError):
            await status_of(impatient, pairs_url(market))
    assert market.stats.faults["hang"] == 1
    market.faults.reset()
    assert await status_of(http, pairs_url(market)) == 200


async def test_429_storm_answers_everything_with_retry_after_until_it_ends(market, http):
    market.faults.set(storm_s=30, storm_retry_after_s=7)
    for _ in range(5):
        async with http.get(pairs_url(market)) as response:
            assert response.status == 429 and response.headers["Retry-After"] == "7"
    assert market.stats.served_429 == 5 and market.faults.snapshot()["storm_remaining_s"] == 30
    market.clock.advance(31)
    assert await status_of(http, pairs_url(market)) == 200


async def test_outage_503_covers_api_and_websocket_but_not_admin(market, http):
    await market.apply_faults({"outage": True, "outage_mode": "503"})
    assert await status_of(http, pairs_url(market)) == 503
    assert await status_of(http, f"{market.dexscreener_base_url}/token-profiles/latest/v1") == 503
    with pytest.raises(aiohttp.WSServerHandshakeError) as handshake:
        await http.ws_connect(market.pumpportal_ws_url)
    assert handshake.value.status == 503
    assert await status_of(http, f"{market.admin_url}/faults") == 200
    async with http.post(f"{market.admin_url}/faults/reset") as response:
        assert (await response.json())["outage"] is False
    assert await status_of(http, pairs_url(market)) == 200


async def test_outage_refuse_refuses_connections_then_recovers_on_same_port(market):
    port = market.port
    await market.apply_faults({"outage": True, "outage_mode": "refuse"})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        with pytest.raises(aiohttp.ClientConnectorError):
            await status_of(http, pairs_url(market))
    await market.apply_faults({"outage": False})
    assert market.port == port
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        assert await status_of(http, pairs_url(market)) == 200


async def test_outage_with_duration_ends_by_itself(market, http):
    await market.apply_faults({"outage_s": 0.05, "outage_mode": "503"})
    assert await status_of(http, pairs_url(market)) == 503
    for _ in range(200):
        if not market.faults.state.outage:
            break
        await asyncio.sleep(0.01)
    assert await status_of(http, pairs_url(market)) == 200


async def test_admin_sets_reads_and_resets_faults(market, http):
    async with http.post(f"{market.admin_url}/faults", json={"error_rate": 1.0, "error_codes": [503]}) as response:
        assert response.status == 200 and (await response.json())["error_rate"] == 1.0
    assert await status_of(http, pairs_url(market)) == 503
    async with http.get(f"{market.admin_url}/faults") as response:
        assert (await response.json())["error_codes"] == [503]
    async with http.post(f"{market.admin_url}/faults/reset") as response:
        assert (await response.json())["error_rate"] == 0.0
    assert await status_of(http, pairs_url(market)) == 200


@pytest.mark.parametrize("body, field", [
    ({"error_rate": 2}, "error_rate"),
    ({"error_codes": [404]}, "error_codes"),
    ({"latency_ms": -1}, "latency_ms"),
    ({"outage_mode": "maybe"}, "outage_mode"),
    ({"nonsense": 1}, "nonsense"),
    ([1, 2], "object"),
])
async def test_admin_rejects_bad_faults_naming_the_field_and_changes_nothing(market, http, body, field):
    before = market.faults.snapshot()
    async with http.post(f"{market.admin_url}/faults", json=body) as response:
        assert response.status == 400
        assert field in (await response.json())["error"]
    async with http.post(f"{market.admin_url}/faults", data=b"{not json") as response:
        assert response.status == 400
    assert market.faults.snapshot() == before


def test_bad_change_set_is_all_or_nothing():
    faults = FaultController(clock=ManualClock())
    with pytest.raises(FaultError, match="hang_rate"):
        faults.set(error_rate=0.5, hang_rate=1.5)
    assert faults.state.error_rate == 0.0


async def test_faults_do_not_touch_admin_endpoints(market, http):
    market.faults.set(error_rate=1.0, hang_rate=1.0, storm_s=60)
    assert await status_of(http, f"{market.admin_url}/stats") == 200
