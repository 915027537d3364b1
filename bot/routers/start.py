"""/start (welcome and the user's role) and /help (generated from the registry)."""
from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.commands import CommandRegistry, CommandSpec, Role
from bot.routers.common import flags_for, send_pieces
from bot.views.help import render_help, render_start

START = CommandSpec("start", "Welcome, and your role", "/start")
HELP = CommandSpec("help", "Every command you can use, with an example", "/help")
COMMANDS = [START, HELP]


def make_router() -> Router:
    router = Router(name="start")

    @router.message(CommandStart(), flags=flags_for(START))
    async def start(message: Message, role: Role, registry: CommandRegistry) -> None:
        first = message.from_user.first_name if message.from_user else None
        await send_pieces(message, render_start(first, role, registry))

    @router.message(Command(HELP.name), flags=flags_for(HELP))
    async def help_(message: Message, role: Role, registry: CommandRegistry) -> None:
        await send_pieces(message, render_help(registry, role))

    return router
