"""The momentum score: bounded, ordered as an operator would expect, smoothed."""
from __future__ import annotations

from hypothesis import given, strategies as st

from tokens.pairs import parse_pair
from tokens.scoring import ewma, score_pairs
from tests.tokens.pairfactory import pair

NOW = 1_700_000_000.0


def _pair(m5=(0, 0), h1=(0, 0), vol=(0.0, 0.0), age_s=600.0):
    return parse_pair(pair(txns={"m5": {"buys": m5[0], "sells": m5[1]}, "h1": {"buys": h1[0], "sells": h1[1]}},
                           volume={"m5": vol[0], "h1": vol[1]}, pairCreatedAt=(NOW - age_s) * 1000))


def test_accelerating_buy_heavy_young_token_outscores_a_dead_old_one() -> None:
    hot = score_pairs([_pair(m5=(80, 10), h1=(120, 60), vol=(9000, 15000), age_s=300)], NOW)
    steady = score_pairs([_pair(m5=(5, 5), h1=(60, 60), vol=(500, 6000), age_s=3 * 3600)], NOW)
    dead = score_pairs([_pair(age_s=24 * 3600)], NOW)
    assert hot.score > 80 > steady.score > dead.score
    assert dead.score < 20  # below the default MIN_SCORE
    assert score_pairs([], NOW).score == 0.0


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6),
       st.floats(0, 1e9), st.floats(0, 1e9), st.floats(0, 1e7))
def test_score_is_always_within_0_and_100(b5, s5, b1, s1, v5, v1, age) -> None:
    result = score_pairs([_pair((b5, s5), (b1, s1), (v5, v1), age)], NOW)
    assert 0.0 <= result.score <= 100.0
    assert all(0.0 <= v <= 1.0 for v in result.components.values())


def test_ewma_smooths_and_starts_from_the_first_value() -> None:
    assert ewma(None, 80.0, 0.3) == 80.0
    assert ewma(80.0, 0.0, 0.3) == 56.0
