"""A crafted history for the picture tests: a week at 10-minute steps plus the last 90 minutes
at 30-second steps (rolled up into 1-minute and 1-hour rows), and token transitions for the flow."""
from __future__ import annotations

from charts.demo import synthetic_samples
from monitoring.store import MetricStore
from tokens.models import Token, Transition


async def craft_history(store: MetricStore, now: float) -> None:
    growth = (now - 7 * 86400, now)
    await store.write(synthetic_samples(now - 5400, span_s=7 * 86400 - 5400, step_s=600, growth=growth))
    await store.write(synthetic_samples(now, span_s=5400, step_s=30, seed=3, growth=growth))
    await store.rollup(now)


async def craft_transitions(db, now: float) -> None:
    """5 tokens discovered 30 min ago: 3 activated 20 min ago (1 archived since), 2 archived."""
    async with db.session() as session:
        tokens = [Token(mint=f"FlowMint{i}", status="monitoring", status_since=now - 1800, discovered_at=now - 1800)
                  for i in range(5)]
        session.add_all(tokens)
        await session.flush()
        moves = []
        for i, t in enumerate(tokens):
            moves.append(Transition(token_id=t.id, from_status=None, to_status="monitoring", at=now - 1800,
                                    reason="discovered"))
            if i < 3:
                moves.append(Transition(token_id=t.id, from_status="monitoring", to_status="active", at=now - 1200,
                                        reason="activated"))
            else:
                moves.append(Transition(token_id=t.id, from_status="monitoring", to_status="archived",
                                        at=now - 1200, reason="expired"))
        moves.append(Transition(token_id=tokens[0].id, from_status="active", to_status="archived", at=now - 600,
                                reason="low_score"))
        session.add_all(moves)
        await session.commit()
