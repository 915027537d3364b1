"""DexScreener endpoints of the local market, over real HTTP on loopback."""
from __future__ import annotations

import pytest

from app.clock import ManualClock
from simulator.server import LocalMarket
from tests.simulator.test_market_model import assert_well_formed


@pytest.fixture
async def market():
    clock = ManualClock()
    market = LocalMarket(seed=11, autostart_flow=False, clock=clock, rate_limit_per_min=40,
                         profiles_rate_limit_per_min=3)
    await market.start()
    yield market
    await market.stop()


async def get_json(http, url):
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


async def test_batch_endpoint_returns_bare_array_of_pairs_for_known_mints(market, http):
    mints = market.model.seed_tokens(5)
    pairs = await get_json(http, f"{market.dexscreener_base_url}/tokens/v1/solana/{','.join(mints + ['NotAMint'])}")
    assert isinstance(pairs, list)
    assert {p["baseToken"]["address"] for p in pairs} == set(mints)
    for pair in pairs:
        assert_well_formed(pair)
    assert market.stats.requests["tokens"] == 1


async def test_batch_endpoint_rejects_more_than_30_addresses(market, http):
    mints = market.model.seed_tokens(31)
    async with http.get(f"{market.dexscreener_base_url}/tokens/v1/solana/{','.join(mints)}") as response:
        assert response.status == 400
        assert "30" in (await response.json())["error"]
    ok = await get_json(http, f"{market.dexscreener_base_url}/tokens/v1/solana/{','.join(mints[:30])}")
    assert len({p["baseToken"]["address"] for p in ok}) == 30


async def test_single_token_endpoint_still_returns_pool_the_batch_misses(market, http):
    model = market.model
    model.add_token("Omit111pump", pairs=[{"dex_id": "pumpswap"}, {"dex_id": "raydium", "liquidity_usd": 800}])
    hidden = model.token_pairs("Omit111pump")[1]["pairAddress"]
    model.omit_from_batch("Omit111pump", hidden)
    base = market.dexscreener_base_url
    batch = await get_json(http, f"{base}/tokens/v1/solana/Omit111pump")
    single = await get_json(http, f"{base}/token-pairs/v1/solana/Omit111pump")
    latest = await get_json(http, f"{base}/latest/dex/tokens/Omit111pump")
    assert hidden not in {p["pairAddress"] for p in batch}
    assert hidden not in {p["pairAddress"] for p in latest["pairs"]}
    assert hidden in {p["pairAddress"] for p in single}
    assert len(single) == len(batch) + 1


async def test_latest_dex_tokens_wraps_pairs_and_gives_null_when_none(market, http):
    mint = market.model.seed_tokens(1)[0]
    base = market.dexscreener_base_url
    found = await get_json(http, f"{base}/latest/dex/tokens/{mint}")
    assert found["schemaVersion"] == "1.0.0" and found["pairs"][0]["baseToken"]["address"] == mint
    assert await get_json(http, f"{base}/latest/dex/tokens/Unknown111pump") == {"schemaVersion": "1.0.0", "pairs": None}
    assert await get_json(http, f"{base}/token-pairs/v1/solana/Unknown111pump") == []
    assert await get_json(http, f"{base}/tokens/v1/ethereum/{mint}") == []


async def test_hostile_names_arrive_intact_as_utf8(market, http):
    name = "<script>x</script> &amp; 🚀\u202eevil\u200b" + "N" * 150
    market.model.add_token("Hostile111pump", name=name, symbol="<b>")
    pairs = await get_json(http, f"{market.dexscreener_base_url}/token-pairs/v1/solana/Hostile111pump")
    assert pairs[0]["baseToken"]["name"] == name and pairs[0]["baseToken"]["symbol"] == "<b>"


async def test_profiles_list_recent_tokens_and_some_other_chains(market, http):
    mints = market.model.seed_tokens(12)
    profiles = await get_json(http, f"{market.dexscreener_base_url}/token-profiles/latest/v1")
    solana = [p for p in profiles if p["chainId"] == "solana"]
    assert [p["tokenAddress"] for p in solana] == list(reversed(mints))
    assert any(p["chainId"] != "solana" for p in profiles)
    for profile in profiles:
        assert {"url", "chainId", "tokenAddress", "icon", "description", "links"} <= set(profile)


async def test_past_the_limit_answers_429_with_retry_after(market, http):
    base = market.dexscreener_base_url
    mint = market.model.seed_tokens(1)[0]
    statuses = []
    for i in range(45):
        path = ("/tokens/v1/solana/", "/token-pairs/v1/solana/", "/latest/dex/tokens/")[i % 3]
        async with http.get(f"{base}{path}{mint}") as response:
            statuses.append(response.status)
            if response.status == 429:
                assert int(response.headers["Retry-After"]) >= 1
    assert statuses.count(200) == 40 and statuses.count(429) == 5  # the three endpoints share one limit
    assert market.stats.served_429 == 5
    assert market.stats.max_in_window == 45
    market.clock.advance(61)  # the window slides on the market's clock
    async with http.get(f"{base}/token-pairs/v1/solana/{mint}") as response:
        assert response.status == 200


async def test_client_under_the_limit_is_never_throttled(market, http):
    mint = market.model.seed_tokens(1)[0]
    for _ in range(3):
        for _ in range(20):
            await get_json(http, f"{market.dexscreener_base_url}/token-pairs/v1/solana/{mint}")
        market.clock.advance(60)
    assert market.stats.served_429 == 0
    assert market.stats.max_in_window == 20 <= 40
    assert market.stats.requests["token_pairs"] == 60


async def test_profiles_endpoint_has_its_own_limit(market, http):
    base = market.dexscreener_base_url
    codes = []
    for _ in range(5):
        async with http.get(f"{base}/token-profiles/latest/v1") as response:
            codes.append(response.status)
    assert codes == [200, 200, 200, 429, 429]
    assert market.stats.served_429_profiles == 2 and market.stats.served_429 == 0
    assert market.stats.max_in_window_profiles == 5
    await get_json(http, f"{base}/token-pairs/v1/solana/Any111pump")  # API budget untouched


async def test_admin_stats_report_what_was_served(market, http):
    mint = market.model.seed_tokens(1)[0]
    await get_json(http, f"{market.dexscreener_base_url}/token-pairs/v1/solana/{mint}")
    stats = await get_json(http, f"{market.admin_url}/stats")
    assert stats["requests"] == {"token_pairs": 1}
    assert stats["max_in_window"] == 1 and stats["served_429"] == 0
    index = await get_json(http, market.admin_url)
    assert index["dexscreener_base_url"] == market.dexscreener_base_url and index["tokens"] == 1
