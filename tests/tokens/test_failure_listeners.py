"""Failure listeners (monitoring's pool cross-check) get the most useful failing checks of a batch
first, through the real pipeline, local market and database (SQLite and PostgreSQL)."""
from __future__ import annotations

import asyncio

from tests.tokens.conftest import eventually
from tokens import queries
from tokens.models import ACTIVE, MONITORING


async def test_active_tokens_then_liquidity_failures_are_offered_first(db, clock, market, make_pipeline):
    pipeline = await make_pipeline()
    model = market.model
    demoted = model.new_mint()
    model.set_pairs(demoted, [model.make_pair(demoted, "pumpswap", "SOL"), model.make_pair(demoted, "raydium", "SOL", 600)])
    await pipeline.intake.add(demoted)
    await pipeline.processor.run_once()
    assert (await db.run(lambda s: queries.get_token(s, demoted))).status == ACTIVE

    clock.advance(10)  # the active token is due again (hot interval), together with three fresh ones
    model.set_pairs(demoted, [model.make_pair(demoted, "pumpswap", "SOL")])  # its external pool vanished
    fresh = [model.new_mint() for _ in range(3)]
    for mint in fresh[:2]:  # no external pool: the common, least useful failure
        model.set_pairs(mint, [model.make_pair(mint, "pumpswap", "SOL")])
    thin = fresh[2]  # an external pool just under the $200 floor: a possible near miss
    model.set_pairs(thin, [model.make_pair(thin, "pumpswap", "SOL"), model.make_pair(thin, "raydium", "SOL", 150)])
    for mint in fresh:
        await pipeline.intake.add(mint)

    offered: list[tuple[str, str]] = []

    async def listener(tok, pairs, now):
        offered.append((tok.mint, tok.status))

    pipeline.processor.failure_listeners.append(listener)
    assert pipeline.processor.max_listener_calls_per_batch == 2
    assert await pipeline.processor.run_once() == 4  # one batch of four failing checks
    await eventually(lambda: len(offered) >= 2)
    for _ in range(5):
        await asyncio.sleep(0)
    # two calls per batch at most: the active token being demoted, then the liquidity failure
    assert offered == [(demoted, ACTIVE), (thin, MONITORING)]
    assert (await db.run(lambda s: queries.get_token(s, demoted))).status == MONITORING
