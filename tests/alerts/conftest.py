"""Fixtures for the watcher and digest tests: the fake Bot API server with the real outbox sender
running under a ``Supervisor``, as the service runs it."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.clock import SYSTEM_CLOCK
from app.supervisor import LoopSpec, Supervisor
from delivery import BotTransport, Outbox, OutboxSender
from simulator.telegram_api import FakeTelegram
from tests.bot.telegram_harness import telegram_harness
from tests.bot.test_outbox import fast_settings

ALERT_CHAT = -100777


@dataclass
class Delivery:
    fake: FakeTelegram
    outbox: Outbox
    sender: OutboxSender
    supervisor: Supervisor

    async def start(self) -> None:
        await self.supervisor.start()

    async def stop(self) -> None:
        await self.supervisor.stop()


@pytest.fixture
async def delivery(db):
    """Fake Telegram (limits enforced, HTML judged by ``simulator.telegram_html``) + Outbox +
    OutboxSender as a supervised loop (not started: call ``await delivery.start()``)."""
    async with telegram_harness(enforce_limits=True) as (fake, bot):
        fake.add_chat(ALERT_CHAT, "supergroup", title="alerts")
        outbox = Outbox(db, SYSTEM_CLOCK)
        sender = OutboxSender(db, outbox, BotTransport(bot), fast_settings(), SYSTEM_CLOCK,
                              retry_base_s=0.02, retry_max_s=0.1, poll_interval_s=0.05)
        supervisor = Supervisor(SYSTEM_CLOCK)
        supervisor.add(LoopSpec("bot.outbox_sender", sender.run, stop=sender.stop))
        world = Delivery(fake, outbox, sender, supervisor)
        try:
            yield world
        finally:
            await supervisor.stop()
