"""Fixtures for the delivery layer's tests: the fake Bot API server and a running bot whose
command replies go through the outbox (the production wiring, ``bot.setup.build_bot``)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.clock import SYSTEM_CLOCK
from app.scheduler import Scheduler
from app.settings import Settings
from app.supervisor import Supervisor
from bot.context import BotContext
from bot.setup import RunningBot, build_bot
from simulator.telegram_api import FakeTelegram

TOKEN = "123456:TEST-delivery"
ADMIN = 111
VIEWER = 222
ALERT_CHAT = -100500


@dataclass
class ReplyWorld:
    fake: FakeTelegram
    ctx: BotContext
    bot: RunningBot


@pytest.fixture
async def reply_world(sqlite_url, sqlite_db):
    """Fake Telegram enforcing its flood limits + the bot in polling mode with its outbox sender."""
    fake = FakeTelegram(enforce_limits=True)
    await fake.start()
    fake.add_bot(TOKEN, "tokenwatch_test_bot")
    for uid in (ADMIN, VIEWER):
        fake.add_chat(uid, "private")
    fake.add_chat(ALERT_CHAT, "supergroup", title="alerts", members=[ADMIN, VIEWER])
    settings = Settings(
        _env_file=None, database_url=sqlite_url, telegram_bot_token=TOKEN, telegram_api_base=fake.base_url,
        telegram_admin_ids=[ADMIN], telegram_viewer_ids=[VIEWER], telegram_alert_chat_id=ALERT_CHAT,
        command_rate_limit_per_min=1000, api_timeout_s=2.0,
    )
    scheduler = Scheduler(settings, SYSTEM_CLOCK)
    scheduler.start()
    ctx = BotContext(settings=settings, db=sqlite_db, clock=SYSTEM_CLOCK, scheduler=scheduler,
                     started_at=SYSTEM_CLOCK.time())
    ctx.doctor_timeout_s = 2.0
    running = await build_bot(ctx, console_input=False)
    supervisor = ctx.supervisor = Supervisor(SYSTEM_CLOCK)  # runs polling and the sender, as the service does
    supervisor.add_all(running.loops())
    await supervisor.start()
    try:
        yield ReplyWorld(fake, ctx, running)
    finally:
        await supervisor.stop()
        await running.stop()
        await scheduler.shutdown()
        await fake.stop()
