"""``debug_token`` against the local market over loopback, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from monitoring.activation_debug import BATCH, TOKEN_PAIRS, InvalidMint, debug_token, validate_mint
from tokens.activation import ActivationRules
from tests.monitoring.market_helpers import market_and_client, track

RULES = ActivationRules(min_liquidity_usd=200.0)

# (case, pools as make_pair kwargs, failing condition names)
CASES = [
    ("passes", [dict(dex_id="pumpswap", quote="SOL", liquidity_usd=5000),
                dict(dex_id="raydium", quote="USDC", liquidity_usd=500)], []),
    ("no_pools", [], ["pairs_present", "pump_pool", "external_pool", "external_liquidity"]),
    ("malformed_only", [dict(dex_id="raydium", quote="SOL", liquidity_usd=500, pairAddress=None)],
     ["pairs_well_formed", "pairs_present", "pump_pool", "external_pool", "external_liquidity"]),
    ("no_pump_pool", [dict(dex_id="raydium", quote="SOL", liquidity_usd=900)],
     ["pump_pool", "external_pool", "external_liquidity"]),
    ("no_external_pool", [dict(dex_id="pumpswap", quote="SOL", liquidity_usd=5000)],
     ["external_pool", "external_liquidity"]),
    ("thin_external", [dict(dex_id="pumpswap", quote="SOL", liquidity_usd=5000),
                       dict(dex_id="meteora", quote="USDC", liquidity_usd=180)], ["external_liquidity"]),
]


@pytest.mark.parametrize("case,pools,failing", CASES, ids=[c[0] for c in CASES])
async def test_each_condition_is_reported_with_observed_and_threshold(db, clock, case, pools, failing):
    async with market_and_client(clock) as (market, client):
        mint = market.model.new_mint()
        market.model.add_token(mint, pairs=[])
        market.model.set_pairs(mint, [market.model.make_pair(mint, **p) for p in pools])
        await track(db, mint, clock.time())
        debug = await debug_token(db, client, RULES, mint, clock.time())
    assert debug.tracked and debug.result is not None
    assert [c.name for c in debug.result.conditions if not c.passed] == failing
    assert debug.result.passed is (not failing)
    by_name = {c.name: c for c in debug.result.conditions}
    # one external pool is enough next to a pump pool; without one, two are needed
    has_pump = any(p["dex_id"] == "pumpswap" for p in pools)
    assert by_name["external_pool"].threshold == (1 if has_pump else 2)
    # liquidity is shown in dollars against the $200 floor: the deciding external pool's liquidity
    external = sorted((p["liquidity_usd"] for p in pools if p["dex_id"] != "pumpswap"
                       and p.get("pairAddress", "") is not None), reverse=True)
    need = 1 if has_pump else 2
    liquidity = by_name["external_liquidity"]
    assert liquidity.threshold == 200.0
    assert liquidity.observed == (float(external[need - 1]) if len(external) >= need else 0.0)
    # history: the discovery transition written by insert_token
    assert [t.to_status for t in debug.transitions] == ["monitoring"]


async def test_batch_missing_every_pool_falls_back_to_token_pairs(db, clock):
    async with market_and_client(clock) as (market, client):
        mint = market.model.new_mint()
        pump = market.model.make_pair(mint, "pumpswap", "SOL", 5000)
        ext = market.model.make_pair(mint, "raydium", "SOL", 400)
        market.model.set_pairs(mint, [pump, ext])
        market.model.omit_from_batch(mint, pump["pairAddress"])
        market.model.omit_from_batch(mint, ext["pairAddress"])
        await track(db, mint, clock.time())
        debug = await debug_token(db, client, RULES, mint, clock.time())
    assert [(s.endpoint, s.pools) for s in debug.fetch_steps] == [(BATCH, 0), (TOKEN_PAIRS, 2)]
    assert debug.source == TOKEN_PAIRS and debug.result.passed


async def test_untracked_mint_spends_no_request(db, clock):
    async with market_and_client(clock) as (market, client):
        mint = market.model.new_mint()
        debug = await debug_token(db, client, RULES, mint, clock.time())
        assert sum(market.stats.requests.values()) == 0
    assert not debug.tracked and debug.result is None and debug.fetch_steps == []


async def test_market_down_is_reported_not_raised(db, clock):
    async with market_and_client(clock) as (market, client):
        mint = market.model.new_mint()
        await track(db, mint, clock.time())
        await market.stop()
        debug = await debug_token(db, client, RULES, mint, clock.time())
    assert debug.fetch_failed and [s.endpoint for s in debug.fetch_steps] == [BATCH, TOKEN_PAIRS]
    # nothing was fetched, so nothing is judged: no "fresh data" or "no_pairs" verdict on empty data
    assert debug.result is None and debug.fetch_error == debug.fetch_steps[-1].error


def test_extra_words_after_a_mint_are_refused_counting_the_mint_itself():
    mint = "So11111111111111111111111111111111111111112"  # 43 characters
    with pytest.raises(InvalidMint) as err:
        validate_mint(f"{mint} extra")
    assert str(err.value) == "give only the mint address: remove the word after it"
    with pytest.raises(InvalidMint) as err:
        validate_mint("abc extra words")  # the first word, "abc", has 3 characters (not 15 for the whole text)
    assert str(err.value) == "a mint address has 32-44 characters, the first word has 3"


@pytest.mark.parametrize("raw", ["", "   ", "abc", "0" * 40, "<b>" + "1" * 40, "1" * 45, "Ⅰ" * 40, None])
def test_malformed_mints_get_a_clear_error(raw):
    with pytest.raises(InvalidMint) as err:
        validate_mint(raw)
    assert "<" not in str(err.value)


def test_valid_mint_is_stripped():
    assert validate_mint("  So11111111111111111111111111111111111111112\n") == "So11111111111111111111111111111111111111112"
