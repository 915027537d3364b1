"""The activation rule: every condition, its failure code, and junk pool data."""
from __future__ import annotations

import json

import pytest

from app.settings import Settings
from tokens.activation import (
    FAILURE_CODES, INSUFFICIENT_LIQUIDITY, MALFORMED_PAIRS, NO_EXTERNAL_POOL, NO_PAIRS, NO_PUMP_POOL, STALE_DATA,
    ActivationRules, ConditionResult, evaluate,
)
from tests.tokens.pairfactory import MINT, OTHER, pair

NOW = 1_700_000_000.0
RULES = ActivationRules.from_settings(Settings(_env_file=None))


CASES = {
    "pump + liquid raydium SOL": ([pair(), pair("raydium", "SOL", 500)], True, []),
    "pump + liquid meteora USDC": ([pair(), pair("meteora", "USDC", 200)], True, []),
    "two liquid externals, no pump": ([pair("raydium", "SOL", 300), pair("orca", "USDC", 900)], True, []),
    "pump only": ([pair()], False, [NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]),
    "pump + thin external": ([pair(), pair("raydium", "SOL", 199.99)], False, [INSUFFICIENT_LIQUIDITY]),
    "pump + external with null liquidity": ([pair(), pair("raydium", "SOL", None)], False, [INSUFFICIENT_LIQUIDITY]),
    "pump + external with liquidity as string": ([pair(), pair("raydium", "SOL", "350.5")], True, []),
    "pump + external with garbage liquidity": ([pair(), pair("raydium", "SOL", "lots")], False,
                                               [INSUFFICIENT_LIQUIDITY]),
    "pump + external without liquidity object": ([pair(), {**pair("raydium"), "liquidity": None}], False,
                                                 [INSUFFICIENT_LIQUIDITY]),
    "pump + external quoted in an unknown token": ([pair(), pair("raydium", "BONK", 5000)], False,
                                                   [NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]),
    "pump + external with missing quote": ([pair(), {**pair("raydium", liq=5000), "quoteToken": None}], False,
                                           [NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]),
    "one liquid external, no pump": ([pair("raydium", "SOL", 5000)], False,
                                     [NO_PUMP_POOL, NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]),
    "pump pool quoted in USDC is not a pump pool": ([pair("pumpswap", "USDC"), pair("raydium", "SOL", 500)], False,
                                                    [NO_PUMP_POOL, NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]),
    "two pump pools are not external": ([pair("pumpswap"), pair("pumpfun-amm", "SOL", 9000)], False,
                                        [NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]),
    "dexId case does not matter": ([pair("PumpSwap"), pair("Raydium", "sol", 500)], True, []),
    "no pairs": ([], False, [NO_PAIRS, NO_PUMP_POOL, NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]),
    "pairs of another mint are ignored": ([pair(mint=OTHER), pair("raydium", "SOL", 500, mint=OTHER)], False,
                                          [NO_PAIRS, NO_PUMP_POOL, NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]),
    "all malformed": ([{**pair(), "pairAddress": None}, {"baseToken": None}, "junk", None, 42], False,
                      [MALFORMED_PAIRS, NO_PAIRS, NO_PUMP_POOL, NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]),
    "malformed beside good pools still activates": (
        [pair(), pair("raydium", "SOL", 500), {**pair("orca"), "pairAddress": ""}, {**pair(), "chainId": "base"}],
        True, []),
    "missing optional fields everywhere": (
        [{"chainId": "solana", "dexId": "pumpswap", "pairAddress": "A", "baseToken": {"address": MINT},
          "quoteToken": {"symbol": "SOL"}},
         {"dexId": "raydium", "pairAddress": "B", "baseToken": {"address": MINT}, "quoteToken": {"symbol": "SOL"},
          "liquidity": {"usd": 250}, "txns": None, "volume": "x", "pairCreatedAt": "soon"}],
        True, []),
}


@pytest.mark.parametrize("name", list(CASES))
def test_activation_cases(name: str) -> None:
    pairs, passed, codes = CASES[name]
    result = evaluate(pairs, RULES, now=NOW, fetched_at=NOW - 1, mint=MINT)
    assert result.passed is passed
    assert result.failure_codes == codes
    assert result.primary_failure == (codes[0] if codes else None)


def test_every_condition_is_recorded_with_observed_value_and_threshold() -> None:
    result = evaluate([pair(), pair("raydium", "SOL", 150)], RULES, now=NOW, fetched_at=NOW - 5, mint=MINT)
    by_name = {c.name: c for c in result.conditions}
    assert list(by_name) == ["data_fresh", "pairs_well_formed", "pairs_present", "pump_pool", "external_pool",
                             "external_liquidity"]
    assert by_name["data_fresh"].observed == 5 and by_name["data_fresh"].threshold == 600.0
    assert by_name["external_pool"].passed and by_name["external_pool"].observed == 1
    liq = by_name["external_liquidity"]
    # recorded in dollars: the best external pool's $150 against the $200 floor
    assert (liq.observed, liq.threshold, liq.passed, liq.code) == (150.0, 200.0, False, INSUFFICIENT_LIQUIDITY)
    assert "0 of 1 needed" in liq.detail and "$150" in liq.detail
    assert {c.code for c in result.conditions} == set(FAILURE_CODES)


@pytest.mark.parametrize("name", list(CASES))
def test_external_liquidity_is_in_dollars_and_agrees_with_its_verdict(name: str) -> None:
    pairs, _, _ = CASES[name]
    liq = next(c for c in evaluate(pairs, RULES, NOW, NOW - 1, mint=MINT).conditions if c.name == "external_liquidity")
    assert liq.threshold == RULES.min_liquidity_usd
    assert isinstance(liq.observed, float) and liq.passed is (liq.observed >= liq.threshold)


def test_without_a_pump_pool_the_second_best_external_pool_decides() -> None:
    result = evaluate([pair("raydium", "SOL", 5000), pair("orca", "USDC", 180)], RULES, NOW, NOW, mint=MINT)
    liq = next(c for c in result.conditions if c.name == "external_liquidity")
    # two liquid external pools are needed without a pump pool; the weaker one ($180) is under $200
    assert (liq.observed, liq.threshold, liq.passed) == (180.0, 200.0, False)
    assert "1 of 2 needed" in liq.detail and "best $5,000" in liq.detail


def test_stale_data_fails_with_its_own_code() -> None:
    result = evaluate([pair(), pair("raydium", "SOL", 500)], RULES, now=NOW, fetched_at=NOW - 601)
    assert not result.passed
    assert result.failure_codes == [STALE_DATA]


def test_thresholds_come_from_settings() -> None:
    rules = ActivationRules.from_settings(Settings(_env_file=None, activation_min_liquidity_usd=1000,
                                                   pump_dex_ids="pumpfun", external_quote_symbols="USDC"))
    assert not evaluate([pair("pumpfun"), pair("raydium", "USDC", 999)], rules, NOW, NOW).passed
    assert evaluate([pair("pumpfun"), pair("raydium", "USDC", 1000)], rules, NOW, NOW).passed
    # pumpswap is no longer a pump dex here, so it counts as an external pool (quote SOL is not accepted)
    assert evaluate([pair("pumpswap"), pair("raydium", "USDC", 5000)], rules, NOW, NOW).failure_codes == [
        NO_PUMP_POOL, NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY]


def test_conditions_are_json_and_round_trip() -> None:
    hostile = pair(baseToken={"address": MINT, "name": "<b>x</b>\u202e\U0001F680" * 40, "symbol": "&amp;"})
    result = evaluate([hostile, pair("raydium", "SOL", 500)], RULES, NOW, NOW, mint=MINT)
    data = json.loads(result.conditions_json())
    assert [ConditionResult.from_dict(d) for d in data] == result.conditions
    assert json.dumps([c.to_dict() for c in result.conditions])
