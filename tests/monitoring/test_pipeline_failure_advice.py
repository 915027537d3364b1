"""Failure-statistics advice on junk and on clear-cut data, on SQLite and PostgreSQL."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitoring.failure_stats import failure_stats
from app.percentiles import percentile
from monitoring.pipeline.percentiles import Distribution
from tests.monitoring.pipeline_data import N, liquidity_check
from tests.tokens.pairfactory import MINT, pair
from tokens.activation import ActivationRules, evaluate
from tokens.models import Check, Token
from tokens.check_rollup import rebuild_check_rollup


async def _seed(db, liquidities, junk: int = 0) -> None:
    async with db.session() as session:
        token = Token(mint="F" * 44, status="monitoring", status_since=N - 100, discovered_at=N - 100)
        session.add(token)
        await session.flush()
        for i, liq in enumerate(liquidities):
            session.add(Check(check_id=f"v{i}", token_id=token.id, at=N - 60 - i, status_at_check="monitoring",
                              **liquidity_check(liq)))
        for i in range(junk):
            session.add(Check(check_id=f"j{i}", token_id=token.id, at=N - 10 - i, status_at_check="monitoring",
                              primary_failure="insufficient_liquidity",
                              conditions=["{oops", "[1, 2", '"text"'][i % 3]))
        await rebuild_check_rollup(session)  # the per-minute counts monitoring reads
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
    # median by nearest rank (the one percentile definition): rank ceil(0.5 x 4) = 2 -> $50,
    # far under $200 (more than 25 % below)
    assert stats.recommendation == ("most failures (100%, last 1h) are insufficient_liquidity: "
                                    "median external liquidity $50 against a threshold of $200")


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=50),
       st.floats(min_value=0, max_value=1))
def test_percentile_is_within_range_and_monotone(values, p):
    ordered = sorted(values)
    got = percentile(ordered, p)
    assert got in ordered  # nearest rank: always an observed value
    assert percentile(ordered, 0.0) == ordered[0] and percentile(ordered, 1.0) == ordered[-1]
    d = Distribution.of(values)
    assert d.p50 <= d.p95 <= d.max and d.count == len(values)


async def test_checks_stored_under_another_floor_or_the_old_count_form_are_not_mixed_in(db):
    await _seed(db, [180.0, 185.0, 190.0])  # the most recent checks, evaluated against the $200 floor
    legacy = ('[{"name": "external_liquidity", "observed": 0, "threshold": 1, "passed": false, '
              '"code": "insufficient_liquidity"}]')
    async with db.session() as session:
        token = Token(mint="G" * 44, status="monitoring", status_since=N - 900, discovered_at=N - 900)
        session.add(token)
        await session.flush()
        for i in range(4):  # older: two under a $500 floor (real evaluate), two in the old count-based form
            fields = liquidity_check(400.0, threshold=500.0) if i < 2 else dict(
                passed=False, primary_failure="insufficient_liquidity", failure_codes="insufficient_liquidity",
                conditions=legacy)
            session.add(Check(check_id=f"o{i}", token_id=token.id, at=N - 600 - i, status_at_check="monitoring",
                              **fields))
        await rebuild_check_rollup(session)  # the per-minute counts monitoring reads
        await session.commit()
    async with db.session() as s:
        stats = await failure_stats(s, N)
    # 7 liquidity failures, but only the 3 measured against today's $200 floor are summarised: median $185
    assert stats.windows["1h"].by_reason[0].count == 7
    assert (stats.top_condition.samples, stats.top_condition.median_observed, stats.top_condition.threshold) == (
        3, 185.0, 200.0)
    assert "just under the $200 threshold: median external liquidity $185" in stats.recommendation


async def test_no_external_pool_advice_says_it_is_not_a_threshold(db):
    # every failing check is a token with only its pump pool: nothing to tune, and the advice says so
    rules = ActivationRules(min_liquidity_usd=200.0)
    result = evaluate([pair("pumpswap", "SOL", 5000.0)], rules, now=N, fetched_at=N - 1, mint=MINT)

    async def build(session):
        token = Token(mint=MINT, status="monitoring", status_since=N - 600, discovered_at=N - 600)
        session.add(token)
        await session.flush()
        for i in range(5):
            session.add(Check(check_id=f"c{i}", token_id=token.id, at=N - 60 * (i + 1), status_at_check="monitoring",
                              ok=True, passed=False, primary_failure=result.primary_failure,
                              failure_codes=",".join(result.failure_codes), conditions=result.conditions_json()))
        await rebuild_check_rollup(session)

    await db.run(build)
    async with db.session() as session:
        stats = await failure_stats(session, N)
    assert result.primary_failure == "no_external_pool"
    assert stats.recommendation == ("most failures (100%, last 1h) are no_external_pool: no pool outside the "
                                    "pump.fun family yet; a market condition, not a threshold to tune")
