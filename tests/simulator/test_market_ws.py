"""PumpPortal websocket of the local market: subscribe, confirmation, events, drops."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from app.clock import ManualClock
from simulator.pumpportal_ws import SUBSCRIBED_MIGRATION
from simulator.server import LocalMarket


@pytest.fixture
async def market():
    market = LocalMarket(seed=21, autostart_flow=False, clock=ManualClock())
    await market.start()
    yield market
    await market.stop()


async def subscribe(http, market):
    ws = await http.ws_connect(market.pumpportal_ws_url)
    await ws.send_json({"method": "subscribeMigration"})
    confirmation = await ws.receive_json(timeout=5)
    assert confirmation == {"message": SUBSCRIBED_MIGRATION}
    return ws


async def test_subscribe_confirms_then_delivers_migrations_to_every_subscriber(market, http):
    first, second = await subscribe(http, market), await subscribe(http, market)
    assert market.stats.ws_subscribers == 2
    reached = await market.push_migration("Mig111pump")
    assert reached == 2
    for ws in (first, second):
        event = await ws.receive_json(timeout=5)
        assert event["mint"] == "Mig111pump" and event["txType"] == "migrate" and event["pool"] == "pump-amm"
        assert len(event["signature"]) > 80 and "name" not in event and "symbol" not in event
    assert "Mig111pump" in market.model  # a migrated token is on DexScreener
    assert market.stats.migrations_sent == 1
    await market.push_migration("Named111pump", name="<b>🚀</b>", symbol="\u202eX")
    event = await first.receive_json(timeout=5)
    assert (event["name"], event["symbol"]) == ("<b>🚀</b>", "\u202eX")
    await first.close()
    await second.close()


async def test_no_events_before_subscribing_and_after_unsubscribing(market, http):
    quiet = await http.ws_connect(market.pumpportal_ws_url)
    ws = await subscribe(http, market)
    assert await market.push_migration("One111pump") == 1
    assert (await ws.receive_json(timeout=5))["mint"] == "One111pump"
    await ws.send_json({"method": "unsubscribeMigration"})
    assert "Unsubscribed" in (await ws.receive_json(timeout=5))["message"]
    assert await market.push_migration("Two111pump") == 0
    await quiet.send_str("not json at all")
    assert "errors" in await quiet.receive_json(timeout=5)
    await quiet.close()
    await ws.close()


async def test_raw_frames_let_tests_send_garbage(market, http):
    ws = await subscribe(http, market)
    await market.push_migration("", raw='{"mint": null, "txType": "migrate"')
    assert await ws.receive_str(timeout=5) == '{"mint": null, "txType": "migrate"'
    assert market.stats.migrations_sent == 0
    await ws.close()


@pytest.mark.parametrize("via_admin", [False, True])
async def test_disconnect_fault_drops_every_connection(market, http, via_admin):
    ws = await subscribe(http, market)
    if via_admin:
        async with http.post(f"{market.admin_url}/ws/disconnect") as response:
            assert (await response.json())["disconnected"] == 1
    else:
        assert await market.disconnect_ws() == 1
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert ws.closed
    again = await subscribe(http, market)  # reconnecting works
    assert await market.push_migration("Back111pump") == 1
    assert (await again.receive_json(timeout=5))["mint"] == "Back111pump"
    assert market.stats.ws_connections == 2
    await again.close()


async def test_admin_migrate_pushes_a_seeded_token(market, http):
    ws = await subscribe(http, market)
    async with http.post(f"{market.admin_url}/migrate") as response:
        body = await response.json()
    assert body["subscribers"] == 1 and body["mint"] in market.model
    assert (await ws.receive_json(timeout=5))["mint"] == body["mint"]
    async with http.post(f"{market.admin_url}/migrate", json={"mint": 5}) as response:
        assert response.status == 400
    await ws.close()


async def first_migrations(seed: int, n: int) -> list[str]:
    async with LocalMarket(seed=seed, migration_interval_s=0.01) as market:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            ws = await subscribe(http, market)
            received = [(await ws.receive_json(timeout=5))["mint"] for _ in range(n)]
            await ws.close()
            created = list(market.model.tokens)
            start = created.index(received[0])  # events may have started before we subscribed
            assert created[start:start + n] == received
            pairs = market.model.token_pairs(received[0])
            assert pairs and pairs[0]["baseToken"]["address"] == received[0]
            return created[:n]


async def test_flow_sends_the_same_first_tokens_for_the_same_seed():
    a, b, c = await asyncio.gather(first_migrations(99, 5), first_migrations(99, 5), first_migrations(100, 5))
    assert a == b and len(set(a)) == 5
    assert a != c


async def test_market_stop_closes_open_websockets(http):
    market = LocalMarket(seed=1, autostart_flow=False)
    await market.start()
    ws = await subscribe(http, market)
    await market.stop()
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert json.dumps(market.stats.as_dict())
