"""The bot's dispatcher: routers, middlewares, the command registry, ``setMyCommands``.

    dp = build_dispatcher(ctx)                       # every router, middleware, error handler
    await set_commands(bot, dp["registry"], ctx.settings)
    await dp.start_polling(bot, handle_signals=False)

To add a command: write ``bot/routers/<family>.py`` with ``COMMANDS`` and
``make_router()``, and list the module in ``ROUTER_MODULES``. /help and the
client's command menu pick it up from the registry.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommandScopeChat, BotCommandScopeDefault, CallbackQuery, ErrorEvent, Message

from app.recent_errors import RecentErrors
from bot.callbacks import CallbackSigner
from bot.commands import CommandRegistry, Role
from bot.context import BotContext
from bot.middlewares.access import AccessMiddleware, RoleGate
from bot.middlewares.context import ContextMiddleware
from bot.middlewares.throttle import ThrottleMiddleware
from bot.routers import alerts, dashboard, digest, fallback, graph, jobs, ping, quiet, start, status, stuck, token, tune
from bot.status_sections import StatusSections, default_sections

log = logging.getLogger(__name__)

ROUTER_MODULES: list[ModuleType] = [start, status, stuck, token, jobs, ping, graph, dashboard, alerts, quiet, tune,
                                    digest]
DEFAULT_PROPERTIES = DefaultBotProperties(parse_mode="HTML", link_preview_is_disabled=True)


@dataclass
class BotParts:
    """The dispatcher's stateful parts, stored as ``dp["parts"]`` (counters for metrics and tests)."""

    registry: CommandRegistry
    signer: CallbackSigner
    access: AccessMiddleware
    role_gate: RoleGate
    throttle: ThrottleMiddleware
    fallback: fallback.FallbackStats
    status_sections: StatusSections
    errors: int = 0
    recent_errors: RecentErrors = field(default_factory=RecentErrors)  # handler failures, for /status


def build_registry(modules: list[ModuleType] | None = None) -> CommandRegistry:
    registry = CommandRegistry()
    for module in modules or ROUTER_MODULES:
        for spec in module.COMMANDS:
            registry.add(spec)
    return registry


def build_dispatcher(ctx: BotContext, *, status_sections: StatusSections | None = None,
                     signer: CallbackSigner | None = None) -> Dispatcher:
    """A ready dispatcher for ``ctx`` (an ``app.context.AppContext``)."""
    settings = ctx.settings
    registry = build_registry()
    signer = signer or CallbackSigner.from_token(settings.telegram_bot_token, ctx.clock)
    sections = status_sections or default_sections()
    parts = BotParts(
        registry=registry, signer=signer, access=AccessMiddleware(settings), role_gate=RoleGate(),
        throttle=ThrottleMiddleware(settings.command_rate_limit_per_min, ctx.clock),
        fallback=fallback.FallbackStats(), status_sections=sections,
    )
    dp = Dispatcher(name="tokenwatch")
    dp["parts"] = parts
    dp["registry"] = registry

    dp.update.outer_middleware(ContextMiddleware(ctx, signer, registry, sections))
    for observer in (dp.message, dp.callback_query):
        observer.outer_middleware(parts.throttle)
        observer.outer_middleware(parts.access)
        observer.middleware(parts.role_gate)

    for module in ROUTER_MODULES:
        dp.include_router(module.make_router())
    dp.include_router(fallback.make_router(parts.fallback))

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        parts.errors += 1
        exc = event.exception
        parts.recent_errors.record(ctx.clock.time(), "handler", f"{type(exc).__name__}: {exc}")
        log.error("handler failed on update %s", event.update.update_id, exc_info=event.exception)
        target = event.update.message or event.update.callback_query
        try:
            if isinstance(target, CallbackQuery):
                await target.answer("Something went wrong; it has been logged.", show_alert=True)
            elif isinstance(target, Message):
                await target.answer("Something went wrong; it has been logged.", parse_mode=None)
        except Exception:  # noqa: BLE001
            pass
        return True

    return dp


async def set_commands(bot: Bot, registry: CommandRegistry, settings: Any = None) -> None:
    """Publish the command menu: viewer commands for everyone, all commands in each admin's chat."""
    try:
        await bot.set_my_commands(registry.bot_commands(Role.VIEWER), scope=BotCommandScopeDefault())
    except TelegramAPIError as exc:
        log.warning("setMyCommands failed: %s", exc.message)
        return
    admin_ids = list(getattr(settings, "telegram_admin_ids", []) or [])
    admin_cmds = registry.bot_commands(Role.ADMIN)
    if len(admin_cmds) == len(registry.bot_commands(Role.VIEWER)):
        return
    for admin_id in admin_ids:
        try:
            await bot.set_my_commands(admin_cmds, scope=BotCommandScopeChat(chat_id=admin_id))
        except TelegramAPIError as exc:  # the admin may not have started the bot yet
            log.info("setMyCommands for admin %s failed: %s", admin_id, exc.message)
