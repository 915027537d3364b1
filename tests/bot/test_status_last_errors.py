"""/status "Last errors" shows Telegram delivery failures and bot handler errors beside the failed
fetches, newest first, with their times, escaped: through the real aiogram client and the fake
Bot API server, with a handler that really fails."""
from __future__ import annotations

import types

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

import bot.app as bot_app
from app.recent_errors import RecentErrors
from bot.commands import CommandSpec
from bot.routers.common import flags_for
from bot.runner import BotRunner
from bot.setup import build_status_sections
from delivery.html import validate_html
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import NOW, VIEWER, say
from tokens.models import Check, Token
from tokens.check_rollup import rebuild_check_rollup

HOSTILE = "<script>alert(1)</script> & \u202e"


def _failing_module() -> types.SimpleNamespace:
    spec = CommandSpec("explode", "Fails on purpose", "/explode")

    def make_router() -> Router:
        router = Router(name="explode")

        @router.message(Command("explode"), flags=flags_for(spec))
        async def explode(message: Message) -> None:
            raise RuntimeError(f"handler broke on {HOSTILE}")

        return router

    return types.SimpleNamespace(COMMANDS=[spec], make_router=make_router)


async def test_last_errors_show_delivery_and_handler_failures_with_times(fake, frame_ctx, monkeypatch):
    monkeypatch.setattr(bot_app, "ROUTER_MODULES", [*bot_app.ROUTER_MODULES, _failing_module()])
    sections = build_status_sections()
    dp = bot_app.build_dispatcher(frame_ctx, status_sections=sections)
    telegram = RecentErrors()  # what OutboxSender.stats.recent_errors holds
    sections.add_error_source("telegram", telegram)  # as bot/setup.py build_bot wires it
    sections.add_error_source("handler", dp["parts"].recent_errors)
    async with frame_ctx.db.session() as session:
        token = Token(mint="F" * 44, status="monitoring", status_since=NOW - 600, discovered_at=NOW - 600)
        session.add(token)
        await session.flush()
        session.add(Check(check_id="f1", token_id=token.id, at=NOW - 300, status_at_check="monitoring", ok=False,
                          error="HTTP 503"))
        await rebuild_check_rollup(session)  # the per-minute counts monitoring reads
        await session.commit()
    telegram.record(NOW - 120, "telegram", f"chat 42: Bad Request: can't parse entities {HOSTILE}")
    telegram.record(NOW - 7200, "telegram", "chat 42: an error from two hours ago")
    runner = BotRunner(frame_ctx, dispatcher=dp, polling_timeout=1)
    await runner.start()
    try:
        frame_ctx.clock.advance(60)
        reply = await say(fake, VIEWER, VIEWER, "/explode")
        assert "Something went wrong" in reply.plain
        status = await say(fake, VIEWER, VIEWER, "/status")
    finally:
        await runner.stop()
    validate_html(status.text)
    section = status.plain.split("Last errors\n", 1)[1].split("\n\n", 1)[0].splitlines()
    # newest first: the handler error (now), the Telegram failure (3 min ago), the failed fetch (6 min ago);
    # the two-hour-old one is past the hour shown
    assert len(section) == 3
    assert "(now) handler: RuntimeError: handler broke on <script>alert(1)</script> &" in section[0]
    assert "(3m 00s ago) telegram: chat 42: Bad Request: can't parse entities <script>" in section[1]
    assert "(6m 00s ago) fetch FFFFFF…FFFF HTTP 503" in section[2]
    assert "two hours ago" not in status.plain
    # escaped in the HTML that went to Telegram, and the right-to-left override did not survive
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in status.text and "\u202e" not in status.text
