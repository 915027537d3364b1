"""A command reply that waited out a Telegram outage is sent once when Telegram is back, headed
"Late reply" with how long ago it was asked; replies are never posted to the outage fallback."""
from __future__ import annotations

import time

from app.clock import ManualClock
from delivery import Outbox
from delivery.models import CRITICAL
from delivery.queries import SenderQueries
from tests.bot.test_outbox import nothing_pending, outbox_world, running, until


async def test_a_reply_after_a_long_outage_is_sent_once_marked_late(db):
    async with outbox_world(db) as (fake, outbox, sender):
        asked = ManualClock(time.time() - 300)  # asked 5 minutes ago, Telegram away since
        await Outbox(db, asked).enqueue_reply(42, "<b>status</b>: all fine", key="reply:1:1")
        await outbox.enqueue_reply(43, "<b>fresh</b> answer", key="reply:2:1")
        fake.set_outage(True)
        await sender.drain_once()
        assert fake.all_sent() == []
        fake.set_outage(False)
        async with running(sender):
            await until(lambda: nothing_pending(outbox), what="sent after the outage")
        [late] = fake.sent(42)
        assert late.plain.startswith("⏳ Late reply: Telegram was unreachable; you asked 5m 0")
        assert late.plain.endswith("status: all fine")
        assert [m.plain for m in fake.sent(43)] == ["fresh answer"]  # on time: no header


async def test_replies_go_first_but_never_to_the_outage_fallback(db):
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(42, "info", key="info")
        await outbox.enqueue(42, "critical alert", key="crit", priority=CRITICAL)
        await outbox.enqueue_reply(42, "your /status", key="reply:9:1")
        fallback = await SenderQueries(db).critical_without_fallback()
        assert [r.idempotency_key for r in fallback] == ["crit"]
        while await sender.drain_once():
            pass
        assert [m.text for m in fake.sent(42)] == ["critical alert", "your /status", "info"]


async def test_late_replies_are_counted(db):
    async with outbox_world(db) as (fake, _outbox, sender):
        await Outbox(db, ManualClock(time.time() - 120)).enqueue_reply(42, "old answer", key="reply:3:1")
        await sender.drain_once()
        assert sender.stats.late_replies == 1 and "Late reply" in fake.sent(42)[0].plain
