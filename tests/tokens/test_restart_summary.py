"""After a restart, the tokens that fell due while stopped are summed up in one log line."""
from __future__ import annotations

import logging

from tokens import queries

MINTS = ["7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU", "9wFFyRfZBsuAha4YcuxcXLKwMxJR43S7fPfQLusDBzvT",
         "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T", "HeLp6NuQkmYB4pYWo2zYs22mESHXPQYzXbB8n4V98jwC",
         "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"]
LATE = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"


async def test_restart_demotions_are_one_line(db, clock, market, make_pipeline, caplog):
    for mint in MINTS[:3]:
        market.model.set_pairs(mint, [market.model.make_pair(mint, "pumpswap"), market.model.make_pair(mint, "orca")])
    first = await make_pipeline()
    for mint in MINTS:
        await first.intake.add(mint)
    assert await first.processor.run_once() == 5
    assert (await db.run(queries.counts_by_status)).get("active") == 3
    await first.stop()

    for mint in MINTS[:3]:  # while stopped, the three active tokens lose their pools
        market.model.set_pairs(mint, [])
    clock.advance(600)
    second = await make_pipeline()
    clock.advance(1)
    await second.intake.add(LATE)  # discovered after the start: not part of the catch-up
    with caplog.at_level(logging.INFO, logger="tokens"):
        assert await second.processor.run_once() == 6
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and r.name == "tokens.processor"]
    assert len(lines) == 1, lines
    assert lines[0].startswith("restart: 5 tokens were due while stopped; demoted 3 active -> monitoring (3 ")
    assert (await db.run(queries.counts_by_status)).get("monitoring") == 6

    caplog.clear()
    clock.advance(600)  # later runs log each transition again (none here) and no second summary
    with caplog.at_level(logging.INFO, logger="tokens"):
        await second.processor.run_once()
    assert not [r for r in caplog.records if r.getMessage().startswith("restart:")]


async def test_a_start_with_nothing_due_says_nothing(db, clock, market, make_pipeline, caplog):
    p = await make_pipeline()
    clock.advance(1)  # discovered after the start, as on a fresh database
    await p.intake.add(MINTS[0])
    with caplog.at_level(logging.INFO, logger="tokens"):
        await p.processor.run_once()
    assert not [r for r in caplog.records if r.getMessage().startswith("restart:")]
