"""/stuck: stuck tokens with their reasons, paginated; each has a button to its /token view.

Stuck = in monitoring too long without a successful check, or (monitoring or active) with
its pool data failing to load several times in a row (``monitoring.pipeline.stuck``)."""
from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.callbacks import CallbackSigner, Signed
from bot.commands import CommandSpec
from bot.context import BotContext
from bot.routers.common import edit_in_place, flags_for, send_pieces
from bot.views.pipeline_cb import StuckCb
from bot.views.stuck import render_stuck, stuck_keyboard
from monitoring.pipeline.stuck import StuckParams, stuck_tokens

STUCK = CommandSpec("stuck", "Stuck tokens and why: monitored with no successful check, "
                    "or monitored/active with fetches failing in a row", "/stuck")
COMMANDS = [STUCK]
PAGE_SIZE = 5


async def build_stuck(ctx: BotContext, signer: CallbackSigner, page: int = 0):
    """Text and keyboard of one /stuck page (the same functions /stuck and its buttons use)."""
    now = ctx.clock.time()
    params = StuckParams.from_settings(ctx.settings)

    async def _q(session):
        return await stuck_tokens(session, now, params, page=page, page_size=PAGE_SIZE)

    result = await ctx.db.run(_q, turn=False)
    text = render_stuck(result, now, stuck_after_s=params.stuck_after_s, failure_streak=params.failure_streak)
    return text, stuck_keyboard(result, signer)


def make_router() -> Router:
    router = Router(name="stuck")

    @router.message(Command(STUCK.name), flags=flags_for(STUCK))
    async def stuck(message: Message, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        text, keyboard = await build_stuck(ctx, cb_signer)
        await send_pieces(message, text, keyboard)

    @router.callback_query(Signed(StuckCb), flags=flags_for(STUCK))
    async def page(query: CallbackQuery, callback_data: StuckCb, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        text, keyboard = await build_stuck(ctx, cb_signer, max(0, callback_data.page))
        await edit_in_place(query, text, keyboard, resend_hint="/stuck")

    return router
