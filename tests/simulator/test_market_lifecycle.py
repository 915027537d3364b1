"""Starting and stopping the market: clean, repeatable, nothing leaked."""
from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from app.settings import Settings
from simulator.server import LocalMarket, run_standalone


def other_tasks() -> set[asyncio.Task]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def test_many_start_stop_cycles_leave_no_tasks_or_listeners():
    before = other_tasks()
    ports = []
    for i in range(10):
        market = LocalMarket(seed=i, migration_interval_s=0.01)
        await market.start()
        ports.append(market.port)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{market.dexscreener_base_url}/token-profiles/latest/v1") as response:
                assert response.status == 200
            ws = await http.ws_connect(market.pumpportal_ws_url)
            await market.stop()
            await ws.receive(timeout=5)
        await market.stop()  # twice is fine
        assert not market.running
    await asyncio.sleep(0)
    assert other_tasks() <= before
    for port in ports:
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", port))


async def test_market_restarts_and_urls_need_a_running_market():
    market = LocalMarket(seed=3, autostart_flow=False)
    with pytest.raises(RuntimeError, match="not started"):
        _ = market.dexscreener_base_url
    async with market:
        assert market.dexscreener_base_url.startswith("http://127.0.0.1:")
        assert market.pumpportal_ws_url.endswith("/api/data")
        assert market.admin_url.endswith("/admin")
        with pytest.raises(RuntimeError, match="already started"):
            await market.start()
    async with market:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{market.admin_url}/stats") as response:
                assert response.status == 200


async def test_stop_during_refuse_outage_and_hanging_request_is_clean():
    market = LocalMarket(seed=4, autostart_flow=False)
    await market.start()
    market.faults.set(hang_rate=1.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        pending = asyncio.ensure_future(http.get(f"{market.dexscreener_base_url}/token-pairs/v1/solana/X"))
        while market.stats.faults["hang"] == 0:
            await asyncio.sleep(0.01)
        await market.apply_faults({"outage": True, "outage_mode": "refuse"})
        await market.stop()
        try:
            response = await pending
        except aiohttp.ClientError:
            pass  # the connection died with the market
        else:
            assert response.status == 503  # or the market said it is going away
            response.release()
    assert not market.running


async def test_standalone_prints_urls_and_stops_when_cancelled(capsys):
    settings = Settings(sim_seed=5, sim_migration_interval_s=0.05, sim_scenario="flaky_api", sim_port=0)
    before = other_tasks()
    task = asyncio.ensure_future(run_standalone(settings))
    out = ""
    for _ in range(500):
        out += capsys.readouterr().out
        if "admin:" in out or task.done():
            break
        await asyncio.sleep(0.01)
    assert "DEXSCREENER_BASE_URL=http://127.0.0.1:" in out
    assert "PUMPPORTAL_WS_URL=ws://127.0.0.1:" in out and "/api/data" in out
    assert "scenario: flaky_api" in out
    url = out.split("DEXSCREENER_BASE_URL=")[1].split()[0]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/admin/stats") as response:
            assert response.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert other_tasks() <= before
