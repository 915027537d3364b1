"""Tokens by status as /status shows them, counted without reading every archived token each
cycle (``monitoring/pipeline/status_counts.py``): always equal to a full count, however the
tokens move between reads."""
from __future__ import annotations

from sqlalchemy import update

from monitoring.pipeline.status_counts import StatusCounts
from tokens.models import Token
from tokens.queries import counts_by_status

NOW = 1_700_000_000.0


async def _add(db, n: int, status: str, since: float, prefix: str) -> None:
    async with db.session() as s:
        s.add_all(Token(mint=f"{prefix}{i:040d}", status=status, status_since=since - i, discovered_at=since - i)
                  for i in range(n))
        await s.commit()


async def _archive(db, prefix: str, at: float) -> None:
    async with db.session() as s:
        await s.exec(update(Token).where(Token.mint.startswith(prefix)).values(status="archived", status_since=at))
        await s.commit()


async def test_counts_equal_a_full_count_as_tokens_are_archived(db):
    counts = StatusCounts(recount_every_s=3600.0, settle_s=300.0)
    await _add(db, 30, "archived", NOW - 86_400, "old")
    await _add(db, 5, "archived", NOW - 100, "new")       # archived moments ago
    await _add(db, 7, "monitoring", NOW - 50, "mon")
    await _add(db, 3, "active", NOW - 500, "act")

    async def both(now: float) -> tuple[dict, dict]:
        async with db.session() as s:
            return await counts.read(s, now), await counts_by_status(s)

    first, full = await both(NOW)
    assert first == full == {"monitoring": 7, "active": 3, "archived": 35}
    # archived after the count, one of them committed late with a moment before it: still counted
    await _archive(db, f"mon{0:040d}", NOW - 20)
    await _archive(db, "act", NOW + 30)
    later, full = await both(NOW + 60)
    assert later == full == {"monitoring": 6, "active": 0, "archived": 39}
    # an hour on, the archived are recounted: still the same figures
    await _add(db, 2, "monitoring", NOW + 3000, "fresh")
    hour, full = await both(NOW + 3700)
    assert hour == full == {"monitoring": 8, "active": 0, "archived": 39}
