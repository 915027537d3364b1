"""The capacity formula: tokens an API limit keeps on schedule (README's throughput table)."""
from __future__ import annotations

import pytest

from app.capacity import checks_per_s, demand_per_s, over_capacity, tokens_served


@pytest.mark.parametrize("limit, hot, cold", [
    (60, 291, 1309),
    (300, 1455, 6547),
    (1000, 4850, 21825),
    (3000, 14550, 65475),
])
def test_tokens_served_at_the_hot_and_cold_intervals(limit, hot, cold) -> None:
    # limit x 0.97 headroom x 30 tokens a request / 60 s, times the interval
    assert tokens_served(limit, 10.0) == hot
    assert tokens_served(limit, 45.0) == cold


def test_headroom_and_batch_size_scale_it() -> None:
    assert checks_per_s(300, headroom=1.0) == 150.0
    assert tokens_served(300, 10.0, headroom=1.0, batch=1) == 50
    with pytest.raises(ValueError):
        tokens_served(300, 0.0)


def test_a_mix_of_hot_and_cold_tokens_is_over_capacity_when_it_needs_more_checks_than_the_limit_allows() -> None:
    assert demand_per_s(hot=100, cold=450, hot_interval_s=10.0, cold_interval_s=45.0) == pytest.approx(20.0)
    # 300/min allows 145.5 checks/s: 1,000 hot (100/s) + 2,000 cold (44.4/s) fit, 2,100 cold do not
    assert not over_capacity(hot=1000, cold=2000, api_rate_per_min=300, hot_interval_s=10, cold_interval_s=45)
    assert over_capacity(hot=1000, cold=2100, api_rate_per_min=300, hot_interval_s=10, cold_interval_s=45)
    # the case: 10,000 cold tokens at 300/min need 222 checks/s
    assert over_capacity(hot=0, cold=10_000, api_rate_per_min=300, hot_interval_s=10, cold_interval_s=45)
    assert not over_capacity(hot=0, cold=10_000, api_rate_per_min=3000, hot_interval_s=10, cold_interval_s=45)
