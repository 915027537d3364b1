"""Two senders on one database never send one row; a dead sender's lease runs out and its row
is sent by another. Real SQLite and PostgreSQL (``db``), real aiogram client, fake Bot API server."""
from __future__ import annotations

import asyncio
from collections import Counter

from sqlmodel import select

from app.clock import SYSTEM_CLOCK, ManualClock
from delivery import BotTransport, Outbox, OutboxSender
from delivery.models import SENT, OutboxMessage
from delivery.queries import SenderQueries
from tests.bot.test_outbox import fast_settings, nothing_pending, outbox_world, rows, running, until


async def test_two_senders_deliver_every_row_exactly_once(db):
    async with outbox_world(db) as (fake, outbox, sender_a):
        sender_b = OutboxSender(db, Outbox(db, SYSTEM_CLOCK), sender_a.transport, fast_settings(), SYSTEM_CLOCK,
                                retry_base_s=0.02, retry_max_s=0.1, poll_interval_s=0.01)
        chats = (42, 43, -100)
        expected = []
        for i in range(20):
            for chat in chats:
                await outbox.enqueue(chat, f"m{i} to {chat}", key=f"{chat}:{i}")
                expected.append((chat, f"m{i} to {chat}"))
        async with running(sender_a), running(sender_b):
            await until(lambda: nothing_pending(outbox), timeout=30, what="drained by two senders")
        delivered = Counter((m.chat_id, m.text) for m in fake.all_sent())
        assert sorted(delivered) == sorted(expected)
        assert set(delivered.values()) == {1}  # none twice
        for chat in chats:  # and still in order per chat
            assert [m.text for m in fake.sent(chat)] == [f"m{i} to {chat}" for i in range(20)]
        assert sender_a.stats.sent + sender_b.stats.sent == 60
        assert sender_a.stats.sent > 0 and sender_b.stats.sent > 0  # both really worked side by side
        assert all(r.status == SENT and r.lease_owner is None for r in (await rows(db)).values())


async def test_a_claim_is_exclusive_until_the_lease_runs_out(db):
    clock = ManualClock(1_000.0)
    outbox = Outbox(db, clock)
    await outbox.enqueue(42, "hello", key="k")
    row_id = (await outbox.get("k")).id
    a, b = SenderQueries(db, clock), SenderQueries(db, clock)
    results = await asyncio.gather(a.claim(row_id, owner="a", lease_s=60), b.claim(row_id, owner="b", lease_s=60))
    assert sorted(results) == [False, True]  # raced: exactly one won
    winner = "a" if results[0] else "b"
    loser, loser_q = ("b", b) if winner == "a" else ("a", a)
    clock.advance(59)
    assert not await loser_q.claim(row_id, owner=loser, lease_s=60)
    clock.advance(2)  # the winner died: its lease ran out
    assert await loser_q.claim(row_id, owner=loser, lease_s=60)
    assert (await outbox.get("k")).lease_owner == loser


async def test_a_row_leased_by_a_dead_sender_is_sent_once_the_lease_expires(db):
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(42, "orphaned", key="orphan")
        await outbox.enqueue(43, "free", key="free")
        row_id = (await outbox.get("orphan")).id
        assert await SenderQueries(db, SYSTEM_CLOCK).claim(row_id, owner="dead-process", lease_s=0.5)
        await sender.drain_once()
        assert [m.text for m in fake.sent(43)] == ["free"] and fake.sent(42) == []  # not while leased
        await asyncio.sleep(0.6)
        async with running(sender):
            await until(lambda: nothing_pending(outbox), what="orphan sent")
        assert [m.text for m in fake.sent(42)] == ["orphaned"]

        async def owners(session):
            return (await session.exec(select(OutboxMessage.lease_owner))).all()

        assert await db.run(owners) == [None, None]


async def test_sender_does_not_send_a_row_another_sender_holds(db):
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(42, "first", key="a")
        await outbox.enqueue(42, "second", key="b")
        row_id = (await outbox.get("a")).id
        assert await SenderQueries(db, SYSTEM_CLOCK).claim(row_id, owner="other-sender", lease_s=60)
        assert await sender.drain_once() == 0
        # the chat's head is in another sender's hands: the next row waits too (order per chat)
        assert fake.sent(42) == []
        assert isinstance(sender.transport, BotTransport)
