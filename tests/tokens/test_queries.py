"""The read functions the bot and monitoring use, on both databases."""
from __future__ import annotations

from tokens import queries

MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


async def test_queries_report_what_the_pipeline_did(db, clock, market, make_pipeline):
    pipeline = await make_pipeline()
    empty = await db.run(queries.counts_by_status)
    assert empty == {"monitoring": 0, "active": 0, "archived": 0}
    assert await db.run(lambda s: queries.get_token(s, MINT)) is None

    market.model.set_pairs(MINT, [market.model.make_pair(MINT, "pumpswap", "SOL"),
                                  market.model.make_pair(MINT, "raydium", "SOL", 700)])
    others = market.model.seed_tokens(4)
    start = clock.time()
    for mint in [MINT, *others]:
        await pipeline.intake.add(mint)
    assert await db.run(lambda s: queries.backlog(s, clock.time())) == 5
    await pipeline.processor.run_once()
    assert await db.run(lambda s: queries.backlog(s, clock.time())) == 0

    counts = await db.run(queries.counts_by_status)
    assert sum(counts.values()) == 5 and counts["active"] >= 1
    assert await db.run(lambda s: queries.activations_since(s, start)) == counts["active"]
    assert await db.run(lambda s: queries.activations_since(s, start + 1)) == 0
    assert await db.run(lambda s: queries.check_outcomes_per_minute(s, clock.time(), 60.0)) == queries.CheckRates(5.0, 0.0, 60.0)
    clock.advance(61)
    assert await db.run(lambda s: queries.check_outcomes_per_minute(s, clock.time(), 60.0)) == queries.CheckRates(0.0, 0.0, 60.0)
    assert await db.run(lambda s: queries.backlog(s, clock.time())) == 5

    t = await db.run(lambda s: queries.get_token(s, MINT))
    assert t.status == "active" and t.check_count == 1 and t.score is not None
    checks = await db.run(lambda s: queries.last_checks(s, MINT))
    assert len(checks) == 1 and checks[0].passed and checks[0].pairs_count == 2
    assert [c["passed"] for c in checks[0].conditions] == [True] * 6
    assert len(await db.run(lambda s: queries.last_checks(s, None, limit=3))) == 3
    reasons = [(x.to_status, x.reason) for x in await db.run(lambda s: queries.last_transitions(s, MINT))]
    assert reasons == [("active", "activated"), ("monitoring", "discovered")]  # newest first
    active = await db.run(lambda s: queries.tokens_by_status(s, "active"))
    assert MINT in {x.mint for x in active}
