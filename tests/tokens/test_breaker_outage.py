"""A full market outage through the real pipeline, local market and database: the circuit breaker
holds the service to probes, no token is charged for checks that were never made, and checks resume
after the market comes back. The breaker runs on the test's ManualClock, moved one processing tick
(PROCESS_INTERVAL_S = 1 s) at a time; request pacing runs on real time as in the service."""
from __future__ import annotations

from sqlalchemy import func, select

from tests.tokens.conftest import eventually
from tokens.breaker import CLOSED, OPEN
from tokens.dexscreener import TOKENS_BATCH
from tokens.models import Check, Token
from tokens.sql import execute

TOKENS = 300
OUTAGE_S = 180


async def _checks(db, *, ok: bool, since: float) -> int:
    async def q(session):
        stmt = select(func.count()).select_from(Check).where(Check.ok == ok, Check.at >= since)
        return (await execute(session, stmt)).scalar_one()
    return await db.run(q)


async def _stale_checks(db, *, since: float) -> dict[int, str | None]:
    """Token id -> error of the ok checks made since ``since`` (during an outage: served from the cache)."""
    async def q(session):
        stmt = select(Check.token_id, Check.error).where(Check.ok.is_(True), Check.at >= since)
        return {int(tid): error for tid, error in (await execute(session, stmt)).all()}
    return await db.run(q)


async def _tokens(db) -> list[Token]:
    async def q(session):
        return list((await execute(session, select(Token))).scalars())
    return await db.run(q)


async def test_an_outage_costs_probes_only_and_checks_resume_after_it(db, clock, market, make_pipeline):
    # the real API budget: 300 requests/min, 291/min after headroom
    pipeline = await make_pipeline(api_rate_limit_per_min=300)
    processor, breakers = pipeline.processor, pipeline.breakers
    normal_per_min = pipeline.limiter.rate_per_min
    for _ in range(TOKENS):
        assert await pipeline.intake.add(market.model.new_mint(), source="test")
    assert await processor.run_once() == TOKENS  # normal: every token checked

    clock.advance(120.0)  # every token due again
    outage_at = clock.time()
    due_at = {t.id: t.next_check_at for t in await _tokens(db)}
    await market.apply_faults({"outage": True, "outage_mode": "503"})
    before = market.stats.faults["outage"]
    moves = []
    breakers.on_transition(lambda t: moves.append(t.after) if t.endpoint == TOKENS_BATCH else None)
    for _ in range(OUTAGE_S):
        await processor.run_once()
        clock.advance(1.0)
    # a probe still out when its run's budget ended answers in the background (a loaded machine)
    await eventually(lambda: processor.batches_in_flight == 0, timeout_s=20)
    sent = market.stats.faults["outage"] - before
    # probed, reopened, never closed: its last move was to open. (Its state() may read half_open: the
    # last tick's clock step can end the open wait before another probe goes -- on a loaded machine,
    # where the probe fell in the ticks decides it.)
    assert breakers.get(TOKENS_BATCH).opened >= 2 and moves[-1] == OPEN and CLOSED not in moves
    # at most 10% of the normal request rate over the outage (291/min x 3 min = 873: at most 87)
    assert sent <= 0.10 * normal_per_min * OUTAGE_S / 60.0, sent
    # nothing lost, nobody charged for checks that were never made: every token is still monitored
    # and, but for the batches whose every attempt failed before the breaker opened, still due
    # when it was due
    tokens = await _tokens(db)
    assert len(tokens) == TOKENS and all(t.status == "monitoring" for t in tokens)
    failed = await _checks(db, ok=False, since=outage_at)
    charged = [t for t in tokens if t.consecutive_failures]
    assert len(charged) == failed <= processor.limit() * processor.batch_size()
    # a batch whose attempts failed before the breaker opened may be answered from the pool cache
    # (stale-if-error, data younger than STALE_DATA_S): an ok check that says it is stale
    served_stale = await _stale_checks(db, since=outage_at)
    assert all(error and error.startswith("stale:") for error in served_stale.values()), served_stale
    kept = [t for t in tokens if not t.consecutive_failures and t.id not in served_stale]
    assert kept and all(t.next_check_at == due_at[t.id] for t in kept)

    # the market comes back: the next probe finds it (the open wait is at most BREAKER_OPEN_MAX_S
    # = 20 s), its answer closes the breaker, and every token is checked at full pace
    await market.reset_faults()
    back_at = clock.time()
    while await _checks(db, ok=True, since=back_at) < TOKENS and clock.time() - back_at <= 60:
        await processor.run_once()
        clock.advance(1.0)
    assert breakers.state(TOKENS_BATCH) == CLOSED
    assert await _checks(db, ok=True, since=back_at) == TOKENS
    assert clock.time() - back_at <= 30.0  # on the injected clock: ticks, not wall time
