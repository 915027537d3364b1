"""Delivering one row returns what happened (Sent / RetryAt / Dead / TokenRefused) instead of
raising; the dispatch loop records it. Real aiogram client against the fake Bot API server."""
from __future__ import annotations

import time

from delivery import BotTransport
from delivery.outcome import Dead, RetryAt, Sent, TokenRefused
from tests.bot.telegram_harness import make_bot
from tests.bot.test_outbox import outbox_world


async def test_each_telegram_answer_becomes_an_outcome(sqlite_db):
    async with outbox_world(sqlite_db) as (fake, outbox, sender):
        for key, chat in (("ok", 42), ("5xx", 42), ("429", 43), ("gone", 777), ("401", 42)):
            await outbox.enqueue(chat, f"row {key}", key=key)

        async def deliver(key: str):
            row = await outbox.get(key)
            assert row is not None
            return await sender.delivery.deliver(row)

        sent = await deliver("ok")
        assert sent == Sent(fake.sent(42)[0].message_id)

        fake.fail_next(1, status=500)
        before = time.time()
        retry = await deliver("5xx")
        assert isinstance(retry, RetryAt) and retry.counted and retry.at >= before
        assert "Internal Server Error" in retry.error

        fake.force_429(retry_after=3)
        throttled = await deliver("429")
        assert isinstance(throttled, RetryAt) and not throttled.counted  # a 429 is not the row's fault
        assert throttled.at >= before + 3

        dead = await deliver("gone")
        assert isinstance(dead, Dead) and "chat not found" in dead.reason

        revoked = make_bot(fake, token="5:unknown")
        sender.transport = BotTransport(revoked)
        try:
            assert isinstance(await deliver("401"), TokenRefused)
        finally:
            await revoked.session.close()
