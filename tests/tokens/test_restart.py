"""A restart (a new Pipeline on the same database) resumes without duplicates."""
from __future__ import annotations

from tokens import queries
from tests.tokens.conftest import eventually


async def test_restart_resumes_from_the_database_without_duplicates(db, clock, market, make_pipeline):
    mints = market.model.seed_tokens(40)
    first = await make_pipeline(listen=True)
    await eventually(lambda: market.stats.ws_subscribers == 1)
    for mint in mints[:30]:
        await market.push_migration(mint)
    await eventually(lambda: first.counters.discovered == 30)
    assert await first.processor.run_once() == 30
    await first.stop()

    clock.advance(5)  # nothing is due yet (hot interval is 10 s)
    second = await make_pipeline(listen=True)
    await eventually(lambda: market.stats.ws_subscribers == 1)
    for mint in mints:  # the source replays the first 30 and adds 10
        await market.push_migration(mint)
    await eventually(lambda: second.counters.discovered + second.counters.duplicates == 40)
    assert second.counters.discovered == 10 and second.counters.duplicates == 30
    assert await second.processor.run_once() == 10  # only the new ones are due

    clock.advance(60)
    assert await second.processor.run_once() == 40
    counts = await db.run(queries.counts_by_status)
    assert sum(counts.values()) == 40
    discovered = [t for t in await db.run(lambda s: queries.last_transitions(s, None, limit=500))
                  if t.reason == "discovered"]
    assert len(discovered) == 40
