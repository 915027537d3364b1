"""The polling supervisor: a refused token stops cleanly; an outage at start is ridden out."""
from __future__ import annotations

from bot.runner import BotRunner
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import VIEWER, say


async def test_refused_token_stops_polling_with_a_clear_reason(fake, frame_ctx):
    frame_ctx.settings.telegram_bot_token = "999:WRONG"
    runner = BotRunner(frame_ctx, polling_timeout=1, restart_backoff_s=(0.01, 0.05))
    await runner.start()
    await fake.wait_for(lambda: runner.fatal_error, 5)
    assert "TELEGRAM_BOT_TOKEN" in runner.fatal_error and "doctor" in runner.fatal_error
    await runner.stop()


async def test_polling_survives_telegram_being_down_at_start(fake, frame_ctx):
    fake.set_outage(True)
    runner = BotRunner(frame_ctx, polling_timeout=1, restart_backoff_s=(0.01, 0.05))
    await runner.start()
    try:
        await fake.wait_for(lambda: runner.restarts >= 2, 5)
        fake.set_outage(False)
        msg = await say(fake, VIEWER, VIEWER, "/start")
        assert "Your role: viewer" in msg.plain
    finally:
        await runner.stop()
