"""/token <mint>: the activation check re-run step by step on fresh pool data, plus history.

Also answers the "🔎" buttons of /stuck (``TokenCb``) with the same view as a new message.
"""
from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.callbacks import Signed
from bot.commands import CommandSpec
from bot.context import BotContext
from bot.routers.common import flags_for, send_pieces
from bot.views.pipeline_cb import TokenCb
from bot.views.token import render_invalid_mint, render_token_debug, render_untracked
from monitoring.activation_debug import InvalidMint, TokenDebug, debug_token, mint_for_id, validate_mint
from tokens.activation import ActivationRules
from tokens.queries import get_token, last_checks, last_transitions

TOKEN = CommandSpec("token", "Why a token is or isn't active: fresh step-by-step check",
                    "/token So11111111111111111111111111111111111111112")
COMMANDS = [TOKEN]


async def build_token(ctx: BotContext, raw_mint: str | None) -> str:
    """The /token text for ``raw_mint`` (validation, untracked and fetch failures included)."""
    try:
        mint = validate_mint(raw_mint)
    except InvalidMint as exc:
        return render_invalid_mint(exc)
    now = ctx.clock.time()
    client = ctx.dexscreener()
    if client is not None:
        debug = await debug_token(ctx.db, client, ActivationRules.from_settings(ctx.settings), mint, now)
        return render_token_debug(debug, now)

    async def _history(session):
        token = await get_token(session, mint)
        if token is None:
            return None
        return TokenDebug(mint, True, token, checks=await last_checks(session, mint, 5),
                          transitions=await last_transitions(session, mint, 5))

    debug = await ctx.db.run(_history, turn=False)
    if debug is None:
        return render_untracked(mint)
    return render_token_debug(debug, now, fetch_unavailable=True)


def make_router() -> Router:
    router = Router(name="token")

    @router.message(Command(TOKEN.name), flags=flags_for(TOKEN))
    async def token(message: Message, command: CommandObject, ctx: BotContext) -> None:
        await send_pieces(message, await build_token(ctx, command.args))

    @router.callback_query(Signed(TokenCb), flags=flags_for(TOKEN))
    async def open_token(query: CallbackQuery, callback_data: TokenCb, ctx: BotContext) -> None:
        mint = await mint_for_id(ctx.db, callback_data.token_id)
        if mint is None:
            await query.answer("That token is no longer tracked.", show_alert=True)
            return
        await query.answer()
        if isinstance(query.message, Message):
            await send_pieces(query.message, await build_token(ctx, mint))

    return router
