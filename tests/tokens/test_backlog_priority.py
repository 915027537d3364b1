"""Under a backlog hot and high-score tokens are claimed first and cold checks stretch, never starve
(one query, on SQLite and PostgreSQL); without one the oldest due goes first."""
from __future__ import annotations

from sqlalchemy import update

from tokens import queries
from tokens.models import ACTIVE, Token
from tokens.repository import ClaimPriority, claim_due, insert_token
from tokens.sql import execute

PRIORITY = ClaimPriority(hot_boost_s=45.0, score_weight_s=0.1, hot_score_threshold=50.0, fresh_hot_s=120.0)


async def _token(db, mint: str, *, discovered: float, due: float, status: str = "monitoring",
                 score: float | None = None) -> None:
    token_id = await db.run(lambda s: insert_token(s, mint, now=discovered))

    async def set_state(s) -> None:
        await execute(s, update(Token).where(Token.id == token_id).values(  # type: ignore[arg-type]
            next_check_at=due, status=status, score_ewma=score))

    await db.run(set_state)


async def _queue(db, now: float) -> None:
    old = now - 3600  # discovered an hour ago: no longer fresh
    await _token(db, "cold_oldest", discovered=old, due=now - 30, score=10.0)
    await _token(db, "cold_overdue_a_lot", discovered=old, due=now - 50, score=10.0)
    await _token(db, "active", discovered=old, due=now - 1, status=ACTIVE, score=40.0)
    await _token(db, "high_score", discovered=old, due=now - 2, score=80.0)
    await _token(db, "fresh", discovered=now - 60, due=now - 3)
    await _token(db, "middling", discovered=old, due=now - 20, score=45.0)


async def test_without_a_backlog_the_oldest_due_goes_first(db, clock) -> None:
    now = clock.time()
    await _queue(db, now)
    plain = await db.run(lambda s: claim_due(s, now, limit=6, lease_s=120.0))
    assert [t.mint for t in plain] == ["cold_overdue_a_lot", "cold_oldest", "middling", "fresh", "high_score",
                                       "active"]


async def test_hot_and_high_score_tokens_go_first_and_cold_ones_are_not_starved(db, clock) -> None:
    now = clock.time()
    await _queue(db, now)
    ranked = await db.run(lambda s: claim_due(s, now, limit=6, lease_s=120.0, priority=PRIORITY))
    # rank = due - 45 if hot - 0.1 x score: high_score -55, cold_overdue_a_lot -51, active -50,
    # fresh -48, cold_oldest -31, middling -24.5
    assert [t.mint for t in ranked] == ["high_score", "cold_overdue_a_lot", "active", "fresh", "cold_oldest",
                                        "middling"]  # a cold token overdue by more than the boost still goes early


async def test_a_backlogged_processor_checks_hot_tokens_first(db, clock, market, make_pipeline) -> None:
    # 60 requests/min, one token per request: about one check per run, so 12 due tokens are a backlog
    pipeline = await make_pipeline(batch_size=1, fetch_concurrency=1, api_rate_limit_per_min=60, run_budget_s=0.5)
    mints = market.model.seed_tokens(12)
    for mint in mints:
        assert await pipeline.intake.add(mint, source="test")
    hot = set(mints[8:])

    async def heat(s) -> None:
        await execute(s, update(Token).where(Token.mint.in_(hot)).values(status=ACTIVE))  # type: ignore[attr-defined]

    await db.run(heat)
    clock.advance(600.0)  # nobody is fresh any more; the cold ones are the longest overdue
    checked = await pipeline.processor.run_once()
    assert pipeline.processor.backlogged and checked >= 1
    checked_mints = {c.mint for c in await db.run(lambda s: queries.last_checks(s, limit=50))}
    assert len(checked_mints) == checked and checked_mints <= hot
