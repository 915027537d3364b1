"""Scenario files: loading by name or path, validation, and timed steps on a running market."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from simulator.scenario import ScenarioError, available_scenarios, load_scenario, parse_scenario
from simulator.server import LocalMarket


def test_shipped_scenarios_load_by_name_and_path():
    assert {"rate_limit_storm", "flaky_api", "outage"} <= set(available_scenarios())
    for name in available_scenarios():
        scenario = load_scenario(name)
        assert scenario.steps and [s.at_s for s in scenario.steps] == sorted(s.at_s for s in scenario.steps)
    from simulator.scenario import SCENARIO_DIR

    by_path = load_scenario(str(SCENARIO_DIR / "outage.json"))
    assert by_path == load_scenario("outage") == load_scenario("outage.json")
    storm = load_scenario("rate_limit_storm").steps[0]
    assert storm.set["storm_s"] > 0


@pytest.mark.parametrize("data, message", [
    ({"at_s": 1}, "list"),
    ([{"set": {"error_rate": 0.1}}], "at_s"),
    ([{"at_s": -1, "reset": True}], "at_s"),
    ([{"at_s": 1, "set": {"error_rate": 9}}], "error_rate"),
    ([{"at_s": 1, "sett": {}}], "sett"),
    ([{"at_s": 1}], "does nothing"),
    (["step"], "object"),
])
def test_bad_scenarios_say_which_step_is_wrong(data, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data, name="bad")


def test_missing_or_unreadable_scenario_is_a_clear_error(tmp_path):
    with pytest.raises(ScenarioError, match="not found.*flaky_api"):
        load_scenario("no_such_scenario")
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(ScenarioError, match="broken.json"):
        load_scenario(broken)


async def wait_for_status(http, url, wanted: int) -> None:
    for _ in range(500):
        async with http.get(url) as response:
            if response.status == wanted:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never saw HTTP {wanted}")


async def test_scenario_steps_run_in_order_on_a_live_market(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([
        {"at_s": 0, "set": {"error_rate": 1.0, "error_codes": [502]}},
        {"at_s": 0.1, "ws_disconnect": True},
        {"at_s": 0.2, "reset": True},
    ]), encoding="utf-8")
    market = LocalMarket(seed=1, autostart_flow=False, scenario=str(path))
    market.model.add_token("Scen111pump")
    await market.start()
    try:
        url = f"{market.dexscreener_base_url}/token-pairs/v1/solana/Scen111pump"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            ws = await http.ws_connect(market.pumpportal_ws_url)
            await wait_for_status(http, url, 502)
            await wait_for_status(http, url, 200)
            assert (await ws.receive(timeout=5)).type in (
                aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert market.faults.snapshot()["error_rate"] == 0.0
    finally:
        await market.stop()


def test_market_rejects_unknown_scenario_at_construction():
    with pytest.raises(ScenarioError):
        LocalMarket(scenario="definitely_not_there")
