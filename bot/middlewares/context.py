"""Injects the running application's parts into every handler's data.

Handlers then declare what they need by parameter name::

    async def status(message: Message, ctx: BotContext, sessions: SessionFactory, now: float): ...

Injected keys: ``ctx`` (``bot.context.BotContext``), ``sessions`` (``ctx.db.session``, an async
context-manager factory), ``clock``, ``now`` (epoch seconds at arrival),
``cb_signer``, ``registry`` (CommandRegistry), ``status_sections``.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from bot.callbacks import CallbackSigner
from bot.context import BotContext
from bot.commands import CommandRegistry

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ContextMiddleware(BaseMiddleware):
    """Outer middleware on ``dp.update``.

        dp.update.outer_middleware(ContextMiddleware(ctx, signer, registry, sections))
    """

    def __init__(self, ctx: BotContext, signer: CallbackSigner, registry: CommandRegistry,
                 status_sections: Any) -> None:
        self.ctx = ctx
        self.signer = signer
        self.registry = registry
        self.status_sections = status_sections

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        data["ctx"] = self.ctx
        data["sessions"] = self.ctx.db.session
        data["clock"] = self.ctx.clock
        data["now"] = self.ctx.clock.time()
        data["cb_signer"] = self.signer
        data["registry"] = self.registry
        data["status_sections"] = self.status_sections
        return await handler(event, data)
