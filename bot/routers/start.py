"""/start (welcome, the user's role and ids) and /help (generated from the registry)."""
from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.commands import CommandRegistry, CommandSpec, Role
from bot.context import BotContext
from bot.routers.common import flags_for, send_pieces
from bot.views.help import render_help, render_start
from tokens.queries import tokens_by_status

START = CommandSpec("start", "Welcome, your role and your Telegram ids", "/start")
HELP = CommandSpec("help", "Every command you can use, with an example", "/help")
COMMANDS = [START, HELP]
NO_MINT_YET = "<mint>"  # nothing tracked yet


async def tracked_mint(ctx: BotContext) -> str | None:
    """A mint the database tracks (active first, then monitoring, then archived), for examples."""
    async def pick(session: Any) -> str | None:
        for status in ("active", "monitoring", "archived"):
            tokens = await tokens_by_status(session, status, limit=1)
            if tokens:
                return tokens[0].mint
        return None

    return await ctx.db.run(pick)


async def help_examples(ctx: BotContext) -> dict[str, str]:
    """Examples that use real data: ``/token`` with a tracked mint."""
    mint = await tracked_mint(ctx)
    return {"token": f"/token {mint or NO_MINT_YET}"}


def make_router() -> Router:
    router = Router(name="start")

    @router.message(CommandStart(), flags=flags_for(START))
    async def start(message: Message, role: Role, registry: CommandRegistry) -> None:
        user = message.from_user
        await send_pieces(message, render_start(user.first_name if user else None, role, registry,
                                                user_id=user.id if user else None, chat_id=message.chat.id,
                                                chat_type=message.chat.type))

    @router.message(Command(HELP.name), flags=flags_for(HELP))
    async def help_(message: Message, role: Role, registry: CommandRegistry, ctx: BotContext) -> None:
        await send_pieces(message, render_help(registry, role, await help_examples(ctx)))

    return router
