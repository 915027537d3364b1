"""The market model: seeded, deterministic, pools evolving on an injected clock."""
from __future__ import annotations

import json

import pytest

from app.clock import ManualClock
from simulator.model import EXTERNAL_DEX_IDS, PUMP_DEX_IDS, MarketModel, UnknownToken
from simulator.names import _ADJECTIVES, _NOUNS, NameGenerator, hostile_names

PAIR_KEYS = {"chainId", "dexId", "url", "pairAddress", "baseToken", "quoteToken", "priceNative",
             "priceUsd", "txns", "volume", "priceChange", "liquidity", "fdv", "marketCap", "pairCreatedAt"}


def assert_well_formed(pair: dict) -> None:
    assert PAIR_KEYS <= set(pair)
    assert pair["chainId"] == "solana"
    assert set(pair["baseToken"]) == {"address", "name", "symbol"}
    assert pair["quoteToken"]["symbol"] in {"SOL", "USDC"}
    assert isinstance(pair["priceUsd"], str) and float(pair["priceUsd"]) > 0
    assert "e" not in pair["priceUsd"].lower() and "e" not in pair["priceNative"].lower()
    for window in ("m5", "h1", "h6", "h24"):
        assert set(pair["txns"][window]) == {"buys", "sells"}
        assert min(pair["txns"][window].values()) >= 0
        assert pair["volume"][window] >= 0
    assert set(pair["liquidity"]) == {"usd", "base", "quote"}
    assert isinstance(pair["pairCreatedAt"], int) and pair["pairCreatedAt"] > 10**12
    json.dumps(pair, allow_nan=False)  # serialisable, no NaN/inf


def first_of(model: MarketModel, fate: str, n: int = 200):
    for mint in model.seed_tokens(n):
        if model.tokens[mint].fate == fate:
            return model.tokens[mint]
    raise AssertionError(f"no {fate} token among {n}")


def test_same_seed_gives_same_tokens_and_pairs():
    a, b = MarketModel(seed=7, clock=ManualClock()), MarketModel(seed=7, clock=ManualClock())
    mints_a, mints_b = a.seed_tokens(25), b.seed_tokens(25)
    assert mints_a == mints_b
    assert [a.tokens[m].name for m in mints_a] == [b.tokens[m].name for m in mints_b]
    assert [a.tokens[m].fate for m in mints_a] == [b.tokens[m].fate for m in mints_b]
    assert a.batch_pairs(mints_a) == b.batch_pairs(mints_b)
    assert MarketModel(seed=8, clock=ManualClock()).seed_tokens(25) != mints_a


def test_tokens_added_by_hand_do_not_shift_the_seeded_sequence():
    a, b = MarketModel(seed=3, clock=ManualClock()), MarketModel(seed=3, clock=ManualClock())
    first = a.seed_tokens(5)
    b.add_token("HandMadeMint111pump")
    b.set_pairs("Other111pump", [])
    assert b.seed_tokens(5) == first


def test_seeded_tokens_are_pump_style_and_every_pair_is_well_formed():
    clock = ManualClock()
    model = MarketModel(seed=1, clock=clock)
    mints = model.seed_tokens(300)
    assert len(set(mints)) == 300 and all(m.endswith("pump") and len(m) == 44 for m in mints)
    for t in (0, 45, 4000):
        clock.set(1_700_000_000.0 + t)
        pairs = model.batch_pairs(mints)
        assert pairs
        for pair in pairs:
            assert_well_formed(pair)
    assert {model.tokens[m].fate for m in mints} == {"fade", "activate", "pump", "die"}


def test_every_token_starts_with_a_pump_pool_quoted_in_sol():
    model = MarketModel(seed=2, clock=ManualClock())
    for mint in model.seed_tokens(50):
        pairs = model.token_pairs(mint)
        assert len(pairs) == 1
        assert pairs[0]["dexId"] in PUMP_DEX_IDS and pairs[0]["quoteToken"]["symbol"] == "SOL"


def test_activating_token_gains_external_pool_with_enough_liquidity_within_30s():
    clock = ManualClock()
    model = MarketModel(seed=4, clock=clock)
    token = first_of(model, "activate")
    assert len(model.token_pairs(token.mint)) == 1
    clock.advance(31)
    external = [p for p in model.token_pairs(token.mint) if p["dexId"] in EXTERNAL_DEX_IDS]
    assert len(external) == 1
    assert external[0]["liquidity"]["usd"] >= 200
    assert external[0]["quoteToken"]["symbol"] in {"SOL", "USDC"}


def test_share_of_activating_tokens_is_tunable():
    model = MarketModel(seed=5, clock=ManualClock(), fate_weights={"activate": 1.0})
    assert {model.tokens[m].fate for m in model.seed_tokens(20)} == {"activate"}
    default = MarketModel(seed=5, clock=ManualClock())
    share = sum(default.tokens[m].fate == "activate" for m in default.seed_tokens(400)) / 400
    assert 0.25 <= share <= 0.45
    with pytest.raises(ValueError, match="fate_weights"):
        MarketModel(fate_weights={"moon": 1.0})


def test_fading_token_trades_less_as_time_passes():
    clock = ManualClock()
    model = MarketModel(seed=6, clock=clock)
    token = first_of(model, "fade")
    clock.advance(120)
    early = model.token_pairs(token.mint)[0]["txns"]["m5"]
    clock.advance(3600)
    late = model.token_pairs(token.mint)[0]["txns"]["m5"]
    assert sum(late.values()) < sum(early.values())


def test_dying_token_loses_its_liquidity_and_pumping_token_rises():
    clock = ManualClock()
    model = MarketModel(seed=9, clock=clock)
    dying, pumping = first_of(model, "die"), first_of(model, "pump")
    start_price = float(model.token_pairs(pumping.mint)[0]["priceUsd"])
    clock.advance(600)
    assert model.token_pairs(dying.mint)[0]["liquidity"]["usd"] < 1.0
    assert float(model.token_pairs(pumping.mint)[0]["priceUsd"]) > start_price * 2


def test_young_pairs_lack_long_window_price_changes():
    clock = ManualClock()
    model = MarketModel(seed=1, clock=clock)
    mint = model.seed_tokens(1)[0]
    clock.advance(60)
    assert set(model.token_pairs(mint)[0]["priceChange"]) == {"m5", "h1"}
    clock.advance(7200)
    assert set(model.token_pairs(mint)[0]["priceChange"]) == {"m5", "h1", "h6", "h24"}


def test_add_token_with_pair_specs_and_exact_pairs():
    model = MarketModel(seed=1, clock=ManualClock())
    token = model.add_token("Spec111pump", name="<b>x</b>", symbol="X", pairs=[
        {"dex_id": "pumpswap"}, {"dex_id": "raydium", "quote": "USDC", "liquidity_usd": 250.0},
    ])
    pairs = model.token_pairs(token.mint)
    assert [(p["dexId"], p["quoteToken"]["symbol"]) for p in pairs] == [("pumpswap", "SOL"), ("raydium", "USDC")]
    assert pairs[1]["liquidity"]["usd"] == 250.0
    assert all(p["baseToken"]["name"] == "<b>x</b>" for p in pairs)
    for pair in pairs:
        assert_well_formed(pair)

    crafted = model.make_pair("Spec111pump", "orca", liquidity_usd=10, priceUsd=None, fdv=None)
    assert crafted["priceUsd"] is None and crafted["fdv"] is None
    model.set_pairs("Spec111pump", [crafted])
    assert model.token_pairs("Spec111pump") == [crafted]
    model.set_pairs("Nothing111pump", [])
    assert model.token_pairs("Nothing111pump") == [] and "Nothing111pump" in model


def test_add_token_defaults_to_one_steady_pump_pool():
    clock = ManualClock()
    model = MarketModel(seed=1, clock=clock)
    model.add_token("Steady111pump")
    clock.advance(3600)
    pairs = model.token_pairs("Steady111pump")
    assert [p["dexId"] for p in pairs] == ["pumpswap"]
    assert pairs[0]["liquidity"]["usd"] > 1000
    with pytest.raises(ValueError, match="fate"):
        model.add_token("Bad111pump", fate="moon")
    model.add_token("Chosen111pump", fate="activate")
    clock.advance(31)
    assert len(model.token_pairs("Chosen111pump")) == 2


def test_omit_from_batch_hides_pool_only_from_batch():
    model = MarketModel(seed=1, clock=ManualClock())
    model.add_token("Omit111pump", pairs=[{"dex_id": "pumpswap"}, {"dex_id": "meteora", "liquidity_usd": 900}])
    external = model.token_pairs("Omit111pump")[1]["pairAddress"]
    model.omit_from_batch("Omit111pump", external)
    assert [p["pairAddress"] for p in model.batch_pairs(["Omit111pump"])] != [p["pairAddress"] for p in model.token_pairs("Omit111pump")]
    assert external not in {p["pairAddress"] for p in model.batch_pairs(["Omit111pump"])}
    assert external in {p["pairAddress"] for p in model.token_pairs("Omit111pump")}
    with pytest.raises(UnknownToken):
        model.omit_from_batch("Unknown111pump", external)


def test_names_include_every_kind_of_hostile_text():
    import random

    gen = NameGenerator(random.Random(0), hostile_share=1.0)
    names = [gen.next()[0] for _ in range(300)]
    assert any("<" in n for n in names)
    assert any("\u202e" in n for n in names)
    assert any("\u200b" in n for n in names)
    assert any(len(n) == 200 for n in names)
    assert any(ord(ch) > 0xFFFF for n in names for ch in n)  # emoji
    assert any(len(n) == 200 for n in hostile_names()) and "" in hostile_names()
    ordinary = {f"{adjective} {noun}" for adjective in _ADJECTIVES for noun in _NOUNS}
    for share, low, high in ((0.0, 0, 0), (0.5, 30, 70), (1.0, 100, 100)):
        model = MarketModel(seed=1, clock=ManualClock(), hostile_share=share)
        seeded = [model.tokens[m].name for m in model.seed_tokens(100)]
        hostile = [n for n in seeded if n not in ordinary]
        assert low <= len(hostile) <= high, (share, len(hostile))


def test_ready_made_pairs_take_the_name_given_to_add_token():
    model = MarketModel(seed=1, clock=ManualClock())
    ready = model.make_pair("Ready111pump", "raydium", liquidity_usd=300)
    model.add_token("Ready111pump", name="Given <i>", symbol="GIV", pairs=[ready])
    (pair,) = model.token_pairs("Ready111pump")
    assert pair["pairAddress"] == ready["pairAddress"]
    assert (pair["baseToken"]["name"], pair["baseToken"]["symbol"]) == ("Given <i>", "GIV")
