"""One hostile token name never blocks its batch (issue 7, section 0).

The local market serves a name with a lone surrogate (``"bad\\ud800name"``, sent as the JSON
escape ``\\ud800``), which no database can store. Cleaned at the edge, it is stored as
``bad\\ufffdname`` and every token of the batch is checked. Should junk ever slip past the
cleaner, the batch is written row by row: the others are checked, and the token whose check
cannot be written is quarantined with its reason, shown by /stuck and /token, and let out
again by the next check that is written.
"""
from __future__ import annotations

import asyncio

import tokens.pairs
from delivery.html import to_plain
from bot.views.stuck import render_stuck
from bot.views.token import render_token_debug
from monitoring.activation_debug import TokenDebug
from monitoring.pipeline.stuck import QUARANTINED, StuckParams, stuck_tokens
from simulator.model import derive_address
from simulator.names import LONE_SURROGATE, hostile_names
from tokens import queries
from tokens.repository import QUARANTINE_AFTER_WRITE_FAILURES, QUARANTINE_S, WRITE_RETRY_S
from tests.tokens.conftest import eventually

HOSTILE = derive_address("hostile")
OTHERS = [derive_address("good", i) for i in range(4)]
BAD_NAME = f"bad{LONE_SURROGATE}name"


def _plain(html: str) -> str:
    return to_plain(html)


def market_with_hostile_batch(market) -> None:
    assert BAD_NAME in hostile_names()  # the market's own catalogue carries it
    for mint in OTHERS:
        market.model.add_token(mint)
    market.model.add_token(HOSTILE, name=BAD_NAME, symbol=f"B{LONE_SURROGATE}")


async def test_a_lone_surrogate_name_is_cleaned_and_the_whole_batch_is_checked(db, clock, market, make_pipeline):
    market_with_hostile_batch(market)
    pipeline = await make_pipeline()
    for mint in [*OTHERS, HOSTILE]:
        await pipeline.intake.add(mint)

    assert await pipeline.processor.run_once() == 5  # one batch, all five written

    for mint in [*OTHERS, HOSTILE]:
        t = await db.run(lambda s, m=mint: queries.get_token(s, m))
        assert t.check_count == 1 and t.last_success_at == clock.time() and t.quarantined_at is None, mint
    hostile = await db.run(lambda s: queries.get_token(s, HOSTILE))
    assert (hostile.name, hostile.symbol) == ("bad\ufffdname", "B\ufffd")
    clock.advance(300)  # what /stuck showed before: 11 tokens "never checked" after 300 s
    page = await db.run(lambda s: stuck_tokens(s, clock.time(), StuckParams(stuck_after_s=180), page_size=50))
    assert all(item.reason not in ("never_checked",) and not item.reason.startswith(QUARANTINED)
               for item in page.items)


async def test_the_name_from_the_websocket_is_cleaned_too(db, clock, market, make_pipeline):
    pipeline = await make_pipeline(listen=True)
    await eventually(lambda: market.stats.ws_subscribers == 1)
    await market.push_migration(HOSTILE, name=BAD_NAME, symbol="\u202eBAD\x00")
    await eventually(lambda: pipeline.counters.discovered == 1)
    t = await db.run(lambda s: queries.get_token(s, HOSTILE))
    assert (t.name, t.symbol) == ("bad\ufffdname", "BAD")


async def test_a_row_that_cannot_be_written_is_quarantined_and_the_rest_go_on(db, clock, market, make_pipeline,
                                                                             monkeypatch):
    market_with_hostile_batch(market)
    # Junk that slips past the cleaner (the old one only stripped NULs): the name reaches the write.
    monkeypatch.setattr(tokens.pairs, "clean_text", lambda value, max_chars=512: value or None
                        if isinstance(value, str) else None)
    pipeline = await make_pipeline(hot_check_interval_s=5, cold_check_interval_s=5)

    for mint in [*OTHERS, HOSTILE]:
        await pipeline.intake.add(mint)
    for attempt in range(1, QUARANTINE_AFTER_WRITE_FAILURES + 1):
        assert await pipeline.processor.run_once() == len(OTHERS)  # the others are written every time
        hostile = await db.run(lambda s: queries.get_token(s, HOSTILE))
        assert hostile.write_failures == attempt and hostile.check_count == 0
        if attempt < QUARANTINE_AFTER_WRITE_FAILURES:  # lease released: retried soon, not at lease end
            assert hostile.quarantined_at is None and hostile.next_check_at == clock.time() + WRITE_RETRY_S
            clock.advance(WRITE_RETRY_S)
    for mint in OTHERS:
        t = await db.run(lambda s, m=mint: queries.get_token(s, m))
        assert t.check_count == QUARANTINE_AFTER_WRITE_FAILURES and t.quarantined_at is None

    # Quarantined: status unchanged, out of the due queue, when and why stored.
    assert hostile.status == "monitoring" and hostile.quarantined_at == clock.time()
    assert hostile.quarantine_reason.startswith("write_failed: ") and "ncode" in hostile.quarantine_reason
    assert hostile.next_check_at == clock.time() + QUARANTINE_S
    assert pipeline.counters.quarantined == 1 and pipeline.counters.write_failures == QUARANTINE_AFTER_WRITE_FAILURES
    clock.advance(60)
    await pipeline.processor.run_once()
    assert (await db.run(lambda s: queries.get_token(s, HOSTILE))).write_failures == QUARANTINE_AFTER_WRITE_FAILURES

    # /stuck names it with the reason...
    now = clock.time()
    page = await db.run(lambda s: stuck_tokens(s, now, StuckParams(), page_size=10))
    (item,) = [i for i in page.items if i.mint == HOSTILE]
    assert item.reason.startswith(f"{QUARANTINED}:write_failed: ")
    text = _plain(render_stuck(page, now, stuck_after_s=180, failure_streak=3))
    assert "🚫 quarantined 1m 00s ago: its check results could not be written (write_failed: " in text
    # ...and so does /token, with the way out.
    token = await db.run(lambda s: queries.get_token(s, HOSTILE))
    text = _plain(render_token_debug(TokenDebug(HOSTILE, True, token), now, fetch_unavailable=True))
    assert "🚫 Quarantined 1m 00s ago: write_failed: " in text
    assert (f"could not be written {QUARANTINE_AFTER_WRITE_FAILURES} times in a row, so it is out of the check "
            f"queue; it is retried in 29m 00s, and the next check that is written lifts the quarantine.") in text

    # The way out: when the quarantine ends it is checked again; a written check lifts it.
    monkeypatch.undo()
    clock.advance(QUARANTINE_S)
    await pipeline.processor.run_once()
    hostile = await db.run(lambda s: queries.get_token(s, HOSTILE))
    assert hostile.check_count == 1 and hostile.name == "bad\ufffdname"
    assert (hostile.quarantined_at, hostile.quarantine_reason, hostile.write_failures) == (None, None, 0)
    page = await db.run(lambda s: stuck_tokens(s, clock.time(), StuckParams(), page_size=10))
    assert HOSTILE not in {i.mint for i in page.items}


async def test_batches_written_together_keep_a_bad_row_to_its_own_batch(db, clock, market, make_pipeline, monkeypatch):
    # Two batches of five; the one with the hostile token and a clean one wait to write at the same
    # time, so they go into one transaction (group commit). That write fails on the hostile row:
    # each batch is written again alone, the clean one whole, the other row by row.
    market_with_hostile_batch(market)
    clean = [derive_address("clean", i) for i in range(5)]
    for mint in clean:
        market.model.add_token(mint)
    monkeypatch.setattr(tokens.pairs, "clean_text", lambda value, max_chars=512: value or None
                        if isinstance(value, str) else None)
    pipeline = await make_pipeline(batch_size=5, fetch_concurrency=2)
    processor = pipeline.processor
    for mint in [*OTHERS, HOSTILE, *clean]:
        await pipeline.intake.add(mint)
    hold = db.write_turn  # SQLite: the writers' turn; holding it makes both batches wait together
    if hold is not None:
        market.faults.set(latency_ms=1500)  # both batches are at the market when the turn is taken
        run = asyncio.create_task(processor.run_once())
        await eventually(lambda: len(processor.inflight_ids) == 10, timeout_s=30)
        await hold.acquire()
        await eventually(lambda: len(processor._write_queue) == 2, timeout_s=30)
        hold.release()
        checked = await run
    else:  # PostgreSQL: the batches may or may not meet; either way the outcome is the same
        checked = await processor.run_once()
    assert checked == 9
    hostile = await db.run(lambda s: queries.get_token(s, HOSTILE))
    assert hostile.write_failures == 1 and hostile.check_count == 0
    for mint in [*OTHERS, *clean]:
        t = await db.run(lambda s, m=mint: queries.get_token(s, m))
        assert t.check_count == 1 and t.write_failures == 0, mint
