"""Included last: unknown commands get a pointer to /help; unknown, forged or stale buttons
get a clear answer and change nothing."""
from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message

from bot.routers.common import send_pieces

log = logging.getLogger(__name__)

UNKNOWN_BUTTON = "This button is unknown or has expired. Send the command again."


class FallbackStats:
    """Counts of what fell through (exposed for metrics/tests)."""

    def __init__(self) -> None:
        self.unknown_commands = 0
        self.unknown_buttons = 0


def make_router(stats: FallbackStats | None = None) -> Router:
    router = Router(name="fallback")
    counts = stats or FallbackStats()

    @router.message(F.text.startswith("/"))
    async def unknown_command(message: Message, bot: Bot) -> None:
        head = (message.text or "").split(maxsplit=1)[0]
        _, at, mention = head.partition("@")
        if message.chat.type != "private":
            me = await bot.me()
            if not at or (me.username or "").lower() != mention.lower():
                return  # in groups, only answer commands addressed to this bot
        counts.unknown_commands += 1
        await send_pieces(message, "Unknown command. Send /help to see what you can use.")

    @router.callback_query()
    async def unknown_button(query: CallbackQuery) -> None:
        counts.unknown_buttons += 1
        log.warning("unknown or forged callback data from user %s: %r", query.from_user.id, (query.data or "")[:64])
        await query.answer(UNKNOWN_BUTTON, show_alert=True)

    return router
