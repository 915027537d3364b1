"""/silence and /maintenance: mute what is known and expected, always for a limited time.

    /silence                                        the silences in force, an 🔔 Unsilence button each
    /silence rule=api_slow endpoint=tokens 2h deploy
    /silence api_slow 30m                           a bare rule name means rule=<name>
    /maintenance                                    the window's state (⏹ End maintenance for admins)
    /maintenance on 30m database upgrade
    /maintenance off

Anyone who may use the bot sees the state; changing it needs an admin (checked again on every
press). Bad arguments get one line with an example and change nothing: the words are split here
(``bot.alert_args``), durations read with the alert layer's parser and limits, and matchers checked
by the alert layer (``QuietService.silence``), whose one-line answer is shown as it is.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from alerts.api import Actor, QuietService
from bot.alert_args import MAINTENANCE_EXAMPLE, SILENCE_EXAMPLE, MaintenanceArgs, Usage, parse_maintenance, parse_silence
from bot.alert_buttons import maintenance_keyboard, silences_keyboard
from bot.callbacks import CallbackSigner, QuietAction, QuietCb, Signed
from bot.commands import CommandSpec, Role
from bot.context import BotContext
from bot.middlewares.access import NEEDS_ADMIN
from bot.routers.common import actor_name, admin_flags, answer_query, edit_in_place, flags_for, send_pieces
from bot.views.alerts import ALERTING_OFF, render_action_result, render_usage
from bot.views.quiet import render_maintenance, render_silences

log = logging.getLogger(__name__)

SILENCE = CommandSpec("silence", "List silences, or mute matching alerts for a while (admins)",
                      SILENCE_EXAMPLE)
MAINTENANCE = CommandSpec("maintenance", "Maintenance window: show, or on <duration> [reason] / off (admins)",
                          MAINTENANCE_EXAMPLE)
COMMANDS = [SILENCE, MAINTENANCE]


def quiet_of(ctx: BotContext) -> QuietService | None:
    return ctx.alerts.quiet if ctx.alerts is not None else None


def _with_buttons(role: Role, chat_type: str | None) -> bool:
    """Admins get the buttons; so do group chats (a viewer's press there is refused)."""
    return role >= Role.ADMIN or chat_type not in (None, "private")


async def _silences_view(service: QuietService, signer: CallbackSigner, now: float,
                         buttons: bool) -> tuple[str, InlineKeyboardMarkup | None]:
    silences = await service.silences()
    keyboard = silences_keyboard(signer, [s.id for s in silences][:40], card=True) if buttons else None
    return render_silences(silences, now), keyboard


async def _maintenance_view(service: QuietService, signer: CallbackSigner, now: float,
                            buttons: bool) -> tuple[str, InlineKeyboardMarkup | None]:
    window = await service.maintenance()
    keyboard = maintenance_keyboard(signer, window.id) if window is not None and buttons else None
    return render_maintenance(window, now), keyboard


def make_router() -> Router:
    router = Router(name="quiet")

    @router.message(Command(SILENCE.name), flags=flags_for(SILENCE))
    async def silence(message: Message, command: CommandObject, ctx: BotContext, cb_signer: CallbackSigner,
                      role: Role) -> None:
        service = quiet_of(ctx)
        if service is None or ctx.alerts is None:
            await send_pieces(message, ALERTING_OFF)
            return
        if not (command.args or "").strip():
            text, keyboard = await _silences_view(service, cb_signer, ctx.clock.time(),
                                                  _with_buttons(role, message.chat.type))
            await send_pieces(message, text, keyboard)
            return
        if role < Role.ADMIN:
            await send_pieces(message, NEEDS_ADMIN)
            return
        parsed = parse_silence(command.args or "", max_s=ctx.settings.alert_silence_max_s)
        if isinstance(parsed, Usage):
            await send_pieces(message, render_usage(parsed))
            return
        result = await service.silence(parsed.matchers, parsed.duration_s, parsed.reason,
                                       Actor(message.from_user.id if message.from_user else None,
                                             actor_name(message.from_user)))
        log.info("silence %r for %ss by %s: %s", parsed.matchers, parsed.duration_s, actor_name(message.from_user),
                 result)
        await send_pieces(message, render_action_result(result))

    @router.message(Command(MAINTENANCE.name), flags=flags_for(MAINTENANCE))
    async def maintenance(message: Message, command: CommandObject, ctx: BotContext, cb_signer: CallbackSigner,
                          role: Role) -> None:
        service = quiet_of(ctx)
        if service is None:
            await send_pieces(message, ALERTING_OFF)
            return
        parsed = parse_maintenance(command.args, max_s=ctx.settings.alert_maintenance_max_s)
        if isinstance(parsed, MaintenanceArgs) and parsed.action == "show":
            text, keyboard = await _maintenance_view(service, cb_signer, ctx.clock.time(),
                                                     _with_buttons(role, message.chat.type))
            await send_pieces(message, text, keyboard)
            return
        if role < Role.ADMIN:
            await send_pieces(message, NEEDS_ADMIN)
            return
        if isinstance(parsed, Usage):
            await send_pieces(message, render_usage(parsed))
            return
        actor = Actor(message.from_user.id if message.from_user else None, actor_name(message.from_user))
        if parsed.action == "on":
            result = await service.maintenance_on(parsed.duration_s, parsed.reason, actor)
        else:
            result = await service.maintenance_off(actor)
        log.info("maintenance %s by %s: %s", parsed.action, actor.name, result)
        await send_pieces(message, render_action_result(result))

    @router.callback_query(Signed(QuietCb, F.action == QuietAction.UNSILENCE), flags=admin_flags())
    async def unsilence(query: CallbackQuery, callback_data: QuietCb, ctx: BotContext,
                        cb_signer: CallbackSigner) -> None:
        service = quiet_of(ctx)
        if service is None:
            await answer_query(query, ALERTING_OFF, show_alert=True)
            return
        result = await service.unsilence(callback_data.id, Actor(query.from_user.id, actor_name(query.from_user)))
        log.info("user %s unsilenced #%s: %s", query.from_user.id, callback_data.id, result)
        await _redraw_or_answer(query, result.changed and bool(callback_data.card), result.text,
                                lambda: _silences_view(service, cb_signer, ctx.clock.time(), True), "/silence",
                                changed=result.changed)

    @router.callback_query(Signed(QuietCb, F.action == QuietAction.END_MAINTENANCE), flags=admin_flags())
    async def end_maintenance(query: CallbackQuery, callback_data: QuietCb, ctx: BotContext,
                              cb_signer: CallbackSigner) -> None:
        service = quiet_of(ctx)
        if service is None:
            await answer_query(query, ALERTING_OFF, show_alert=True)
            return
        window = await service.maintenance()
        if window is None or window.id != callback_data.id:
            await answer_query(query, "That maintenance window is already over.", show_alert=True)
            return
        result = await service.maintenance_off(Actor(query.from_user.id, actor_name(query.from_user)))
        log.info("user %s ended maintenance #%s: %s", query.from_user.id, callback_data.id, result)
        await _redraw_or_answer(query, result.changed, result.text,
                                lambda: _maintenance_view(service, cb_signer, ctx.clock.time(), True),
                                "/maintenance", changed=result.changed)

    return router


async def _redraw_or_answer(query: CallbackQuery, redraw: bool, text: str,
                            view: Callable[[], Awaitable[tuple[str, InlineKeyboardMarkup | None]]],
                            resend_hint: str, *, changed: bool) -> None:
    """After a change, redraw the pressed message (answering with ``text``); otherwise just answer."""
    if redraw and isinstance(query.message, Message):
        new_text, keyboard = await view()
        await edit_in_place(query, new_text, keyboard, resend_hint=resend_hint, done_text=text[:200])
        return
    await answer_query(query, text[:200], show_alert=not changed)
