"""The batch write path on SQLite and PostgreSQL: one UPDATE for a batch's token rows that leaves a
token whose status changed alone and says which rows it wrote; claims that lease in the same
statement (PostgreSQL: two claimers at once never share a token, neither waits for the other)."""
from __future__ import annotations

import asyncio

from sqlalchemy import func, select, update

from app.db import Database, make_engine
from tokens.models import Check, Token, Transition
from tokens.repository import (
    CheckOutcome,
    apply_checks,
    archive_expired,
    claim_due,
    insert_token,
    release_claims,
)
from tokens.sql import execute

MINTS = [f"{c}" * 44 for c in "ABCDEFGHJK"]


async def _seed(db, now: float, n: int) -> None:
    for i, mint in enumerate(MINTS[:n]):
        await db.run(lambda s, m=mint, i=i: insert_token(s, m, now=now + i * 0.001))


async def _token(db, token_id: int) -> Token:
    async def q(s):
        return (await execute(s, select(Token).where(Token.id == token_id))).scalars().one()  # type: ignore[arg-type]
    return await db.run(q)


async def _count(db, model, token_id: int) -> int:
    async def q(s):
        return (await execute(s, select(func.count()).select_from(model).where(model.token_id == token_id))).scalar_one()
    return await db.run(q)


def _ok(tok, at: float, **values) -> CheckOutcome:
    return CheckOutcome(
        token_id=tok.id, expected_status=tok.status, mint=tok.mint,
        check={"check_id": f"{tok.id:032d}", "at": at, "status_at_check": tok.status, "ok": True, "passed": False,
               "conditions": "[]", "score": 30.0, "pairs_count": 1},
        token_values={"last_check_at": at, "last_success_at": at, "consecutive_failures": 0, "score": 30.0,
                      "score_ewma": 30.0, "status": tok.status, "status_since": tok.status_since,
                      "low_score_since": None, "next_check_at": at + 45, **values})


def _failed(tok, at: float) -> CheckOutcome:
    return CheckOutcome(
        token_id=tok.id, expected_status=tok.status, mint=tok.mint,
        check={"check_id": f"f{tok.id:031d}", "at": at, "status_at_check": tok.status, "ok": False,
               "passed": False, "error": "HTTP 503"},
        token_values={"last_check_at": at, "consecutive_failures": 1, "status": tok.status,
                      "status_since": tok.status_since, "low_score_since": None, "next_check_at": at + 20})


async def test_one_batch_write_skips_a_token_whose_status_changed_and_reports_the_rows_written(db, clock) -> None:
    now = clock.time()
    await _seed(db, now, 4)
    toks = await db.run(lambda s: claim_due(s, now + 1, limit=4, lease_s=120))
    assert len(toks) == 4
    archived_tok, activated_tok, failed_tok, plain_tok = toks
    # one token is archived while its check is in flight
    async def archive(s):
        await execute(s, update(Token).where(Token.id == archived_tok.id).values(  # type: ignore[arg-type]
            status="archived", next_check_at=None))
    await db.run(archive)
    # a quarantined token: a written check lifts the quarantine
    async def quarantine(s):
        await execute(s, update(Token).where(Token.id == plain_tok.id).values(  # type: ignore[arg-type]
            quarantined_at=now, quarantine_reason="write_failed: x", write_failures=3))
    await db.run(quarantine)
    at = now + 2
    activation = _ok(activated_tok, at, status="active", status_since=at, activated_at=at, name="Named", symbol="NMD")
    activation.transition = ("monitoring", "active", "activated", 2.0)
    outcomes = [_ok(archived_tok, at), activation, _failed(failed_tok, at), _ok(plain_tok, at)]
    outcomes[0].transition = ("monitoring", "active", "activated", 2.0)  # must not be recorded

    assert await db.run(lambda s: apply_checks(s, outcomes)) == 3
    assert [o.written for o in outcomes] == [False, True, True, True]

    gone = await _token(db, archived_tok.id)
    assert gone.status == "archived" and gone.next_check_at is None and gone.check_count == 0
    assert await _count(db, Check, archived_tok.id) == 0
    assert await _count(db, Transition, archived_tok.id) == 1  # its discovery only

    active = await _token(db, activated_tok.id)
    assert (active.status, active.activated_at, active.name, active.symbol) == ("active", at, "Named", "NMD")
    assert active.check_count == 1 and active.next_check_at == at + 45
    assert await _count(db, Transition, activated_tok.id) == 2  # discovered, activated: exactly once

    failed = await _token(db, failed_tok.id)
    # a failed check sets only its columns: the last success and the score stay as they were (unset)
    assert failed.consecutive_failures == 1 and failed.last_success_at is None and failed.score is None
    assert failed.next_check_at == at + 20 and failed.check_count == 1

    plain = await _token(db, plain_tok.id)
    assert plain.quarantined_at is None and plain.quarantine_reason is None and plain.write_failures == 0
    assert plain.score_ewma == 30.0 and plain.name is None  # a check that names nothing leaves the name
    assert await _count(db, Check, plain_tok.id) == 1


async def test_a_claim_leases_in_the_same_statement_and_a_release_puts_tokens_back_where_they_were(db, clock) -> None:
    now = clock.time()
    await _seed(db, now, 3)
    before = {t.mint: t.next_check_at for t in [await _token(db, i) for i in (1, 2, 3)]}
    claimed = await db.run(lambda s: claim_due(s, now + 5, limit=3, lease_s=120))
    assert [t.mint for t in claimed] == MINTS[:3]  # oldest due first
    assert {t.mint: t.next_check_at for t in claimed} == before  # what was due, to put it back
    for t in claimed:
        assert (await _token(db, t.id)).next_check_at == now + 5 + 120  # leased
    assert await db.run(lambda s: claim_due(s, now + 5, limit=3, lease_s=120)) == []
    assert await db.run(lambda s: release_claims(s, claimed)) == 3
    again = await db.run(lambda s: claim_due(s, now + 5, limit=3, lease_s=120))
    assert [t.mint for t in again] == MINTS[:3]
    # a claimed token archived meanwhile is not released back into the queue
    await db.run(lambda s: archive_expired(s, now + 10, monitoring_timeout_s=1, low_score_timeout_s=1))
    assert await db.run(lambda s: release_claims(s, again)) == 0


async def test_two_claimers_at_once_on_postgresql_never_share_a_token_and_neither_waits(pg_url, clock) -> None:
    db = Database(make_engine(pg_url), retry_base_s=0.01)
    try:
        now = clock.time()
        await _seed(db, now, 10)
        async with db.session() as first, db.session() as second:
            mine = await claim_due(first, now + 1, limit=5, lease_s=120)  # rows locked until `first` commits
            # `second` skips the locked rows instead of waiting for them (a wait would hit the timeout)
            theirs = await asyncio.wait_for(claim_due(second, now + 1, limit=10, lease_s=120), timeout=30)
            await first.commit()
            await second.commit()
        assert len(mine) == 5 and len(theirs) == 5
        assert not {t.id for t in mine} & {t.id for t in theirs}
        assert {t.mint for t in mine} | {t.mint for t in theirs} == set(MINTS)
    finally:
        await db.dispose()
