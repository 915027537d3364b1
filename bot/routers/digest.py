"""/digest: the digest (throughput, activations, alerts fired / acknowledged / resolved, time to
acknowledge, the noisiest rules) for the last 24 hours, now, in the chat that asked.

The digest service builds it (``DigestService.build``); the bot replies with its text, and with
its chart as a picture when there is one (the text is the caption when it fits in one).
"""
from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from alerts.api import DigestService
from bot.commands import CommandSpec
from bot.context import BotContext
from bot.routers.common import flags_for, send_pieces
from bot.views.alerts import ALERTING_OFF, render_digest_caption
from delivery.html import MAX_CAPTION_LEN, visible_len
from delivery.models import REPLY

DIGEST = CommandSpec("digest", "The alert digest for the last 24 hours, now", "/digest")
COMMANDS = [DIGEST]


def digest_of(ctx: BotContext) -> DigestService | None:
    return ctx.alerts.digest if ctx.alerts is not None else None


def _fits_caption(text: str) -> bool:
    try:
        return visible_len(text) <= MAX_CAPTION_LEN
    except ValueError:
        return False


def make_router() -> Router:
    router = Router(name="digest")

    @router.message(Command(DIGEST.name), flags=flags_for(DIGEST))
    async def digest(message: Message, ctx: BotContext) -> None:
        service = digest_of(ctx)
        if service is None:
            await send_pieces(message, ALERTING_OFF)
            return
        view = await service.build()
        if view.chart is None or ctx.outbox is None:  # no picture (or no outbox to send one): the text
            await send_pieces(message, view.text)
            return
        key = f"digest:{message.chat.id}:{message.message_id}:{int(message.date.timestamp())}"
        if _fits_caption(view.text):
            await ctx.outbox.enqueue(message.chat.id, view.text, key=key, photo=view.chart, priority=REPLY)
            return
        await send_pieces(message, view.text)
        await ctx.outbox.enqueue(message.chat.id, render_digest_caption(view.since, view.until), key=key,
                                 photo=view.chart, priority=REPLY)

    return router
