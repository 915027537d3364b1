"""Parsing junk pair objects: skipped with a reason, never a crash."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from tokens.pairs import MAX_TEXT_CHARS, MalformedPair, parse_pair, parse_pairs
from tests.tokens.pairfactory import MINT, pair

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["chainId", "dexId", "pairAddress", "baseToken", "quoteToken", "liquidity",
                                        "txns", "volume", "pairCreatedAt", "priceUsd", "labels", "fdv"]),
                       json_values))
def test_any_json_object_parses_or_is_skipped_with_a_reason(raw: dict) -> None:
    try:
        parsed = parse_pair({**pair(), **raw})
    except MalformedPair as exc:
        assert exc.reason in {"not_an_object", "no_pair_address", "no_base_address", "wrong_chain", "no_dex_id"}
    else:
        assert parsed.liquidity_usd is None or parsed.liquidity_usd >= 0
        assert all(t.buys >= 0 and t.sells >= 0 for _, t in parsed.txns)


def test_skip_reasons_are_counted() -> None:
    pairs, skipped = parse_pairs([pair(), None, {**pair(), "pairAddress": None}, {**pair(), "baseToken": {}},
                                  {**pair(), "chainId": "ethereum"}, {**pair(), "dexId": 7}])
    assert len(pairs) == 1
    assert skipped == {"not_an_object": 1, "no_pair_address": 1, "no_base_address": 1, "wrong_chain": 1,
                       "no_dex_id": 1}


def test_hostile_names_are_cleaned_once_and_bounded() -> None:
    name = "<script>\x00\u202eevil\U0001F600\ud800" * 100
    parsed = parse_pair(pair(baseToken={"address": MINT, "name": name, "symbol": "A&B"},
                             pairAddress="P\ud800\n1", labels=["v\u202e2"]))
    assert parsed.base_name is not None and len(parsed.base_name) == MAX_TEXT_CHARS
    # HTML is kept (escaped at render time); NUL, the RTL override and the lone surrogate are not
    assert parsed.base_name.startswith("<script>evil\U0001F600\ufffd<script>")
    parsed.base_name.encode("utf-8")
    assert parsed.base_symbol == "A&B"
    assert parsed.pair_address == "P\ufffd 1" and parsed.labels == ("v2",)


def test_numbers_given_as_strings_and_ms_timestamps() -> None:
    parsed = parse_pair(pair(liquidity={"usd": "1234.5"}, pairCreatedAt=1_700_000_000_000,
                             txns={"m5": {"buys": "3", "sells": -4}}))
    assert parsed.liquidity_usd == 1234.5
    assert parsed.pair_created_at == 1_700_000_000.0
    assert (parsed.txns_in("m5").buys, parsed.txns_in("m5").sells) == (3, 0)
    assert parsed.txns_in("h6").total == 0
