"""One percentile definition (nearest rank): the Python function and the SQL built by
``monitoring.pipeline.percentiles`` give the same value on the same data, on SQLite and on
PostgreSQL (``percentile_disc``), ties, duplicates and awkward ranks included."""
from __future__ import annotations

import random

import pytest

from app.percentiles import median, nearest_rank_index, percentile
from monitoring.pipeline.activation import time_to_activation
from monitoring.pipeline.percentiles import Distribution, percentile_of
from tokens.models import Token, Transition

N = 1_700_000_000.0
FROM = "FROM transitions WHERE to_status = 'active' AND at > :since"


async def _seed(db, values: list[float]) -> None:
    async with db.session() as session:
        token = Token(mint="P" * 44, status="active", status_since=N - 10, discovered_at=N - 10_000)
        session.add(token)
        await session.flush()
        session.add_all(Transition(token_id=token.id, from_status="monitoring", to_status="active", at=N - 1 - i,
                                   reason="activated", time_in_previous_s=v) for i, v in enumerate(values))
        await session.commit()


def test_nearest_rank_by_hand() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    # rank ceil(p x 4): 0.5 -> 2, 0.95 -> 4, 0.25 -> 1, 0 -> 1 (the first value)
    assert [percentile(values, p) for p in (0.5, 0.95, 0.25, 0.0, 1.0)] == [20.0, 40.0, 10.0, 10.0, 40.0]
    assert median([3.0, 1.0, 2.0, 4.0]) == 2.0 and median([]) is None
    assert nearest_rank_index(100, 0.07) == 7  # 0.07 x 100 = 7.000000000000001 in doubles: rank 8, as PostgreSQL
    with pytest.raises(ValueError):
        nearest_rank_index(3, 1.5)


@pytest.mark.parametrize("seed", [1, 2])
async def test_python_and_sql_agree_on_the_same_data(db, seed: int) -> None:
    rng = random.Random(seed)
    values = [float(rng.choice([1, 2, 2, 3, 5, 8, 13, 60])) if i % 2 else round(rng.uniform(0, 900), 3)
              for i in range(137)]
    await _seed(db, values)
    ordered = sorted(values)
    async with db.session() as s:
        for p in (0.0, 0.01, 0.07, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0):
            got = await percentile_of(s, "time_in_previous_s", FROM, {"since": N - 1000}, p)
            assert got == percentile(ordered, p), p
        tta = await time_to_activation(s, N, window_s=1000)
    assert tta == Distribution.of(values)


async def test_empty_sets_have_no_percentile(db) -> None:
    async with db.session() as s:
        assert await percentile_of(s, "time_in_previous_s", FROM, {"since": N - 1000}, 0.95) is None
        assert await time_to_activation(s, N, window_s=1000) == Distribution()
