"""A 401 Unauthorized stops sending and says so (log, metric, /ping's checklist); rows stay
pending, and sending resumes once a probe (getMe) finds the token accepted again."""
from __future__ import annotations

import logging

from app.clock import SYSTEM_CLOCK
from bot.doctor import check_outbox
from bot.metrics import DeliveryCollector
from delivery import BotTransport, Outbox, OutboxSender
from delivery.models import PENDING, SENT
from monitoring import metric_names as m
from tests.bot.telegram_harness import make_bot, telegram_harness
from tests.bot.test_outbox import fast_settings, rows

REVOKED = "999:revoked-token"


async def unauthorized_metric(collector: DeliveryCollector) -> float:
    return next(s.value for s in await collector.collect(SYSTEM_CLOCK.time()) if s.name == m.TELEGRAM_UNAUTHORIZED)


async def test_401_stops_sending_keeps_rows_and_recovers(db, caplog):
    async with telegram_harness(enforce_limits=False) as (fake, _good_bot):
        fake.add_chat(42)
        fake.add_chat(43)
        bot = make_bot(fake, token=REVOKED)  # Telegram does not know this token (revoked)
        outbox = Outbox(db, SYSTEM_CLOCK)
        sender = OutboxSender(db, outbox, BotTransport(bot), fast_settings(), SYSTEM_CLOCK,
                              token_probe_interval_s=0.0)
        collector = DeliveryCollector(outbox, sender, None, SYSTEM_CLOCK)
        try:
            for i in range(3):
                await outbox.enqueue(42 + i % 2, f"alert {i}", key=f"a{i}")
            assert await unauthorized_metric(collector) == 0.0
            with caplog.at_level(logging.ERROR, logger="delivery"):
                for _ in range(3):
                    await sender.drain_once()
            assert sender.token_refused
            state = await rows(db)
            assert [r.status for r in state.values()] == [PENDING] * 3  # nothing dead-lettered
            assert sender.stats.dead == 0 and fake.all_sent() == []
            errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
            assert len(errors) == 1 and "TELEGRAM_BOT_TOKEN" in errors[0] and "401" in errors[0]
            assert await unauthorized_metric(collector) == 1.0
            line = await check_outbox(outbox)
            assert not line.ok and "401" in line.detail and "3 message(s) waiting" in line.detail
            assert "TELEGRAM_BOT_TOKEN" in line.fix

            fake.add_bot(REVOKED, "tokenwatch_test_bot")  # the operator fixed the token
            while await sender.drain_once():
                pass
            assert not sender.token_refused
            assert sorted(msg.text for msg in fake.all_sent()) == ["alert 0", "alert 1", "alert 2"]
            assert all(r.status == SENT for r in (await rows(db)).values())
            assert await unauthorized_metric(collector) == 0.0
            assert (await check_outbox(outbox)).ok
        finally:
            await sender.stop()
            await bot.session.close()
