"""The due queue and its guards, on SQLite and PostgreSQL."""
from __future__ import annotations

import logging

from tokens import queries
from tokens.repository import CheckOutcome, apply_checks, archive_expired, claim_due, insert_token
from tests.tokens.conftest import TEST_RUN_BUDGET_S

MINTS = ["7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU", "9wFFyRfZBsuAha4YcuxcXLKwMxJR43S7fPfQLusDBzvT",
         "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T"]


async def test_claimed_tokens_are_leased_and_come_back_if_never_written(db, clock):
    now = clock.time()
    for i, mint in enumerate(MINTS):
        await db.run(lambda s, m=mint, i=i: insert_token(s, m, now=now + i))
    first = await db.run(lambda s: claim_due(s, now + 10, limit=2, lease_s=120))
    assert [t.mint for t in first] == MINTS[:2]  # oldest due first
    second = await db.run(lambda s: claim_due(s, now + 10, limit=30, lease_s=120))
    assert [t.mint for t in second] == MINTS[2:]  # never the same token twice
    assert await db.run(lambda s: claim_due(s, now + 10, limit=30, lease_s=120)) == []
    # a worker that died mid-check: its tokens are due again once the lease ends
    again = await db.run(lambda s: claim_due(s, now + 10 + 121, limit=30, lease_s=120))
    assert sorted(t.mint for t in again) == sorted(MINTS)


async def test_a_check_racing_an_archive_does_not_resurrect_the_token(db, clock):
    now = clock.time()
    await db.run(lambda s: insert_token(s, MINTS[0], now=now))
    (tok,) = await db.run(lambda s: claim_due(s, now, limit=1, lease_s=120))
    archived = await db.run(lambda s: archive_expired(s, now + 10, monitoring_timeout_s=5, low_score_timeout_s=5))
    assert archived == [(MINTS[0], "monitoring_timeout")]
    outcome = CheckOutcome(
        token_id=tok.id, expected_status=tok.status,
        check={"check_id": "a" * 32, "at": now + 11, "status_at_check": tok.status, "ok": True, "passed": True},
        token_values={"status": "active", "status_since": now + 11, "next_check_at": now + 21},
        transition=("monitoring", "active", "activated", 11.0), mint=tok.mint)
    assert await db.run(lambda s: apply_checks(s, [outcome])) == 0
    assert not outcome.written
    t = await db.run(lambda s: queries.get_token(s, MINTS[0]))
    assert t.status == "archived" and t.next_check_at is None
    assert await db.run(lambda s: queries.last_checks(s, MINTS[0])) == []


async def test_check_log_lines_carry_mint_and_check_id(sqlite_db, clock, market, caplog):
    from tests.tokens.conftest import pipeline_settings
    from tokens.pipeline import Pipeline

    mint = MINTS[0]
    market.model.set_pairs(mint, [market.model.make_pair(mint, "pumpswap"), market.model.make_pair(mint, "orca")])
    async with Pipeline(pipeline_settings(), sqlite_db, clock, market.dexscreener_base_url, listen=False,
                        run_budget_s=TEST_RUN_BUDGET_S) as p:
        await p.intake.add(mint)
        with caplog.at_level(logging.DEBUG, logger="tokens"):
            await p.processor.run_once()
    records = [r for r in caplog.records if getattr(r, "mint", None) == mint and hasattr(r, "check_id")]
    assert any("activated" in r.getMessage() for r in records)
    check = (await sqlite_db.run(lambda s: queries.last_checks(s, mint)))[0]
    assert all(r.check_id == check.check_id for r in records)
