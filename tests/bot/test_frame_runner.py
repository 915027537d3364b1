"""Telegram polling as a supervised loop: a refused token stops it for good with a clear reason;
an outage at start is ridden out by restarts with backoff."""
from __future__ import annotations

import logging

from app.backoff import Backoff
from bot.runner import POLLING_LOOP, BotRunner
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import VIEWER, say

QUICK = Backoff(base_s=0.01, max_s=0.05)


async def test_refused_token_stops_polling_with_a_clear_reason(fake, frame_ctx, caplog):
    frame_ctx.settings.telegram_bot_token = "999:WRONG"
    runner = BotRunner(frame_ctx, polling_timeout=1, restart_backoff=QUICK)
    with caplog.at_level(logging.INFO):
        await runner.start()
        assert runner.supervisor is not None
        loop = runner.supervisor.get(POLLING_LOOP)
        await fake.wait_for(lambda: loop.state == "failed", 5)
        assert runner.fatal_error and "TELEGRAM_BOT_TOKEN" in runner.fatal_error and "doctor" in runner.fatal_error
        assert loop.restarts == 0 and loop.failures == 0, "a refused token is not retried"
        assert loop.last_error and "401" in loop.last_error
        await runner.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "TELEGRAM_BOT_TOKEN" in errors[0]


async def test_polling_survives_telegram_being_down_at_start(fake, frame_ctx):
    fake.set_outage(True)
    runner = BotRunner(frame_ctx, polling_timeout=1, restart_backoff=QUICK)
    await runner.start()
    try:
        assert runner.supervisor is not None
        loop = runner.supervisor.get(POLLING_LOOP)
        await fake.wait_for(lambda: loop.restarts >= 2, 5)
        assert loop.failures >= 2 and loop.last_error
        fake.set_outage(False)
        msg = await say(fake, VIEWER, VIEWER, "/start")
        assert "Your role: viewer" in msg.plain
        assert loop.state == "running"
    finally:
        await runner.stop()
    assert loop.state == "stopped"
