"""Failure-statistics advice on junk and on clear-cut data, on SQLite and PostgreSQL."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitoring.failure_stats import failure_stats
from monitoring.pipeline.percentiles import Distribution, percentile_cont
from tests.monitoring.pipeline_data import N, liquidity_conditions
from tokens.models import Check, Token


async def _seed(db, liquidities, junk: int = 0) -> None:
    async with db.session() as session:
        token = Token(mint="F" * 44, status="monitoring", status_since=N - 100, discovered_at=N - 100)
        session.add(token)
        await session.flush()
        for i, liq in enumerate(liquidities):
            session.add(Check(check_id=f"v{i}", token_id=token.id, at=N - 60 - i, status_at_check="monitoring",
                              primary_failure="insufficient_liquidity", failure_codes="insufficient_liquidity",
                              conditions=liquidity_conditions(liq)))
        for i in range(junk):
            session.add(Check(check_id=f"j{i}", token_id=token.id, at=N - 10 - i, status_at_check="monitoring",
                              primary_failure="insufficient_liquidity",
                              conditions=["{oops", "[1, 2", '"text"'][i % 3]))
        await session.commit()


async def test_junk_conditions_are_counted_and_skipped(db):
    await _seed(db, [185.0, 190.0, 195.0], junk=3)
    async with db.session() as s:
        stats = await failure_stats(s, N)
    # 6 liquidity failures; 3 with unreadable JSON are skipped; the 3 readable ones: median 190 < $200
    assert stats.malformed_conditions == 3
    assert stats.top_condition.samples == 3 and stats.top_condition.median_observed == 190.0
    assert "just under the $200 threshold: median external liquidity $190" in stats.recommendation


async def test_far_below_threshold_is_not_called_just_under(db):
    await _seed(db, [40.0, 50.0, 60.0, 70.0])
    async with db.session() as s:
        stats = await failure_stats(s, N)
    # median (50 + 60) / 2 = 55, far under $200 (more than 25 % below)
    assert stats.recommendation == ("most failures (100%, last 1h) are insufficient_liquidity: "
                                    "median external liquidity $55 against a threshold of $200")


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=50),
       st.floats(min_value=0, max_value=1))
def test_percentile_is_within_range_and_monotone(values, p):
    ordered = sorted(values)
    got = percentile_cont(ordered, p)
    assert ordered[0] <= got <= ordered[-1]
    assert percentile_cont(ordered, 0.0) == ordered[0] and percentile_cont(ordered, 1.0) == ordered[-1]
    d = Distribution.of(values)
    assert d.p50 <= d.p95 <= d.max and d.count == len(values)
