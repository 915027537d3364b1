"""A token's life through the real pipeline, local market and database (SQLite and PostgreSQL):
discovered -> active -> demoted -> archived, with the reasons an operator sees."""
from __future__ import annotations

from sqlalchemy import select

from tokens import queries
from tokens.models import ACTIVE, ARCHIVED, MONITORING, Check, Token
from tokens.sql import execute
from tests.tokens.conftest import eventually

MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
QUIET = {"txns": {"m5": {"buys": 0, "sells": 0}, "h1": {"buys": 0, "sells": 0}},
         "volume": {"m5": 0, "h1": 0}}


async def _all_checks(session):
    return list((await execute(session, select(Check.id))).scalars())


async def token(db, mint=MINT):
    return await db.run(lambda s: queries.get_token(s, mint))


async def transitions(db, mint=MINT):
    rows = await db.run(lambda s: queries.last_transitions(s, mint, limit=50))
    return [(t.from_status, t.to_status, t.reason) for t in reversed(rows)]


async def test_discovered_activated_demoted_and_archived_after_monitoring_timeout(db, clock, market, make_pipeline):
    pipeline = await make_pipeline(monitoring_timeout_h=1.0)
    market.model.set_pairs(MINT, [market.model.make_pair(MINT, "pumpswap", "SOL", 20_000, **QUIET)])
    assert await pipeline.intake.add(MINT, source="test")
    assert (await token(db)).next_check_at == clock.time()  # checked promptly

    assert await pipeline.processor.run_once() == 1
    t = await token(db)
    assert t.status == MONITORING and t.failure_codes == ["no_external_pool", "insufficient_liquidity"]
    assert t.next_check_at == clock.time() + pipeline.settings.hot_check_interval_s  # fresh: hot for 2 min

    clock.advance(60)
    market.model.set_pairs(MINT, [market.model.make_pair(MINT, "pumpswap", "SOL", 20_000),
                                  market.model.make_pair(MINT, "raydium", "USDC", 900)])
    await pipeline.processor.run_once()
    t = await token(db)
    assert t.status == ACTIVE and t.activated_at == clock.time() and t.failure_codes == []
    assert t.next_check_at == clock.time() + pipeline.settings.hot_check_interval_s  # active is hot

    clock.advance(10)
    market.model.set_pairs(MINT, [market.model.make_pair(MINT, "pumpswap", "SOL", 20_000),
                                  market.model.make_pair(MINT, "raydium", "USDC", 50)])
    await pipeline.processor.run_once()
    assert (await token(db)).status == MONITORING

    # still failing an hour after the demotion: archived, never checked again
    for _ in range(4):
        clock.advance(20 * 60)
        await pipeline.processor.run_once()
    t = await token(db)
    assert t.status == ARCHIVED and t.next_check_at is None
    assert await transitions(db) == [
        (None, MONITORING, "discovered"),
        (MONITORING, ACTIVE, "activated"),
        (ACTIVE, MONITORING, "insufficient_liquidity"),
        (MONITORING, ARCHIVED, "monitoring_timeout"),
    ]
    last = await db.run(lambda s: queries.last_transitions(s, MINT, limit=1))
    assert last[0].time_in_previous_s == 3600.0  # demoted at +70 s, archived at +3670 s
    clock.advance(3600)
    assert await pipeline.processor.run_once() == 0


async def test_active_token_with_a_low_score_is_archived_after_low_score_timeout(db, clock, market, make_pipeline):
    pipeline = await make_pipeline(low_score_timeout_h=2.0, min_score=20.0)
    market.model.set_pairs(MINT, [market.model.make_pair(MINT, "pumpswap", "SOL", 20_000, **QUIET),
                                  market.model.make_pair(MINT, "orca", "SOL", 5_000, **QUIET)])
    await pipeline.intake.add(MINT)
    await pipeline.processor.run_once()
    t = await token(db)
    assert t.status == ACTIVE and t.score_ewma < 20 and t.low_score_since == clock.time()
    for _ in range(12):
        clock.advance(15 * 60)
        await pipeline.processor.run_once()
    t = await token(db)
    assert t.status == ARCHIVED
    assert (await transitions(db))[-1] == (ACTIVE, ARCHIVED, "low_score_timeout")


async def test_demotion_reason_is_the_primary_failure(db, clock, market, make_pipeline):
    pipeline = await make_pipeline()
    market.model.set_pairs(MINT, [market.model.make_pair(MINT, "pumpswap", "SOL"),
                                  market.model.make_pair(MINT, "raydium", "SOL", 400)])
    await pipeline.intake.add(MINT)
    await pipeline.processor.run_once()
    market.model.set_pairs(MINT, [market.model.make_pair(MINT, "pumpswap", "SOL")])
    clock.advance(30)
    await pipeline.processor.run_once()
    assert (await transitions(db))[-1] == (ACTIVE, MONITORING, "no_external_pool")
    checks = await db.run(lambda s: queries.last_checks(s, MINT, limit=5))
    assert checks[0].primary_failure == "no_external_pool" and checks[0].status_at_check == ACTIVE
    assert {c["name"] for c in checks[0].conditions} >= {"pump_pool", "external_pool", "external_liquidity"}


async def test_hot_and_cold_scheduling(db, clock, market, make_pipeline):
    pipeline = await make_pipeline(hot_check_interval_s=5, cold_check_interval_s=60, hot_score_threshold=50)
    busy = "9wFFyRfZBsuAha4YcuxcXLKwMxJR43S7fPfQLusDBzvT"
    market.model.set_pairs(MINT, [market.model.make_pair(MINT, "pumpswap", "SOL", **QUIET)])
    market.model.set_pairs(busy, [market.model.make_pair(
        busy, "pumpswap", "SOL", txns={"m5": {"buys": 90, "sells": 10}, "h1": {"buys": 150, "sells": 60}},
        volume={"m5": 20_000, "h1": 30_000})])
    await pipeline.intake.add(MINT)
    await pipeline.intake.add(busy)
    await pipeline.processor.run_once()
    quiet_t, busy_t = await token(db), await token(db, busy)
    assert quiet_t.status == busy_t.status == MONITORING
    # both fresh migrations: checked at the hot interval for their first FRESH_HOT_S (120 s)
    assert quiet_t.next_check_at == busy_t.next_check_at == clock.time() + 5

    clock.advance(125)  # past the fresh window
    await pipeline.processor.run_once()
    quiet_t, busy_t = await token(db), await token(db, busy)
    assert quiet_t.next_check_at == clock.time() + 60  # cold
    assert busy_t.score_ewma > 50 and busy_t.next_check_at == clock.time() + 5  # hot though not active


async def test_a_failed_fetch_is_recorded_and_the_token_retried_with_backoff(db, clock, market, make_pipeline):
    pipeline = await make_pipeline(hot_check_interval_s=5, cold_check_interval_s=60)
    pipeline.client.max_retries = 1
    pipeline.client.retry_base_s = 0.01
    await pipeline.intake.add(MINT)
    market.faults.set(error_rate=1.0, error_codes=[503])
    await pipeline.processor.run_once()
    t = await token(db)
    assert t.status == MONITORING and t.consecutive_failures == 1
    assert clock.time() < t.next_check_at <= clock.time() + 60 * 4
    checks = await db.run(lambda s: queries.last_checks(s, MINT))
    assert len(checks) == 1 and not checks[0].ok and "http_503" in checks[0].error
    assert pipeline.counters.check_failures == 1

    market.faults.reset()
    clock.advance(t.next_check_at - clock.time())
    await pipeline.processor.run_once()
    t = await token(db)
    assert t.consecutive_failures == 0 and t.last_success_at == clock.time()


async def test_malformed_and_empty_responses_never_lose_a_token(db, clock, market, make_pipeline):
    pipeline = await make_pipeline()
    pipeline.client.max_retries = 0
    await pipeline.intake.add(MINT)
    for fault in ({"malformed_rate": 1.0}, {"empty_rate": 1.0}):
        market.faults.reset()
        market.faults.set(**fault)
        await pipeline.processor.run_once()
        t = await token(db)
        clock.advance(t.next_check_at - clock.time())
    t = await token(db)
    assert t.status == MONITORING and t.consecutive_failures == 2 and t.next_check_at is not None
    errors = [c.error for c in await db.run(lambda s: queries.last_checks(s, MINT))]
    assert any("malformed_json" in e for e in errors) and any("empty_body" in e for e in errors)


async def test_batch_misses_fall_back_to_token_pairs_and_record_the_discrepancy(db, clock, market, make_pipeline):
    from tokens.models import PoolDiscrepancy

    pipeline = await make_pipeline()
    market.model.set_pairs(MINT, [market.model.make_pair(MINT, "pumpswap", "SOL"),
                                  market.model.make_pair(MINT, "raydium", "SOL", 600)])
    for p in market.model.token_pairs(MINT):
        market.model.omit_from_batch(MINT, p["pairAddress"])
    await pipeline.intake.add(MINT)
    await pipeline.processor.run_once()
    assert (await token(db)).status == ACTIVE
    rows = await db.run(lambda s: execute(s, select(PoolDiscrepancy.kind)))
    assert [r[0] for r in rows.all()] == ["missing_pool", "missing_pool"]
    assert market.stats.requests["token_pairs"] == 1


async def test_junk_pairs_are_counted_and_good_ones_still_used(db, clock, market, make_pipeline):
    pipeline = await make_pipeline()
    good = [market.model.make_pair(MINT, "pumpswap", "SOL"), market.model.make_pair(MINT, "meteora", "USDC", 300)]
    junk = [{**good[0], "pairAddress": None}, {**good[0], "chainId": "bsc", "pairAddress": "X"},
            {**good[1], "baseToken": {"address": MINT, "name": "\u202e<i>" * 300}, "pairAddress": "Y"}]
    market.model.set_pairs(MINT, good + junk)
    await pipeline.intake.add(MINT)
    await pipeline.processor.run_once()
    t = await token(db)
    assert t.status == ACTIVE
    assert pipeline.counters.malformed_pairs == {"no_pair_address": 1, "wrong_chain": 1}
    check = (await db.run(lambda s: queries.last_checks(s, MINT)))[0]
    assert check.pairs_count == 3
    rows = await db.run(lambda s: execute(s, select(Check.check_id, Token.name).join(Token)))
    check_id, name = rows.one()
    assert len(check_id) == 32 and name is not None and len(name) <= 512


async def test_archive_job_archives_tokens_that_are_not_being_checked(db, clock, market, make_pipeline):
    pipeline = await make_pipeline(monitoring_timeout_h=1.0)
    await pipeline.intake.add(MINT)
    clock.advance(3601)
    assert await pipeline.processor.archive_expired() == 1
    t = await token(db)
    assert t.status == ARCHIVED and t.next_check_at is None
    assert (await transitions(db))[-1] == (MONITORING, ARCHIVED, "monitoring_timeout")


async def test_retention_deletes_old_history_of_archived_tokens_only(db, clock, market, make_pipeline):
    pipeline = await make_pipeline(monitoring_timeout_h=1.0, retention_days=1.0)
    live = "9wFFyRfZBsuAha4YcuxcXLKwMxJR43S7fPfQLusDBzvT"
    await pipeline.intake.add(MINT)
    await pipeline.intake.add(live)
    await pipeline.processor.run_once()

    async def checks_written() -> bool:   # a batch's write may land just after its run (group commit)
        return len(await db.run(_all_checks)) == 2
    await eventually(checks_written, timeout_s=30.0)
    clock.advance(3601)
    await pipeline.processor.archive_expired()  # both archived by timeout
    await pipeline.intake.add("4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T")  # old history, but live
    clock.advance(2 * 86400)
    checks_deleted, transitions_deleted = await pipeline.processor.retention()
    assert checks_deleted == 2 and transitions_deleted == 4  # all history of the two archived tokens
    remaining = await db.run(lambda s: queries.last_transitions(s, None, limit=50))
    assert [(t.mint, t.reason) for t in remaining] == [("4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T", "discovered")]
    assert (await token(db)).status == ARCHIVED  # the token itself is kept: rediscovery stays a duplicate
    assert not await pipeline.intake.add(MINT)
