"""/tune: how each rule behaved over the last 7 days and the threshold its own history suggests,
with ✔ Apply and ↩ Revert buttons (admins only, rights checked again on every press).

Apply expires with the other admin actions (the suggestion applied is the one computed at press
time, so an old /tune must not apply a figure nobody saw); Revert names one recorded change and
never expires (automatic tuning announces its changes with it); a second Revert changes nothing.
"""
from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from alerts.api import ActionResult, Actor, TuningService
from bot.callbacks import CallbackSigner, Signed, TuneAction, TuneCb, rule_key
from bot.commands import CommandSpec, Role
from bot.context import BotContext
from bot.routers.common import actor_name, admin_flags, answer_query, edit_in_place, flags_for, send_pieces
from bot.views.alerts import ALERTING_OFF
from bot.views.tune import render_tune, tune_keyboard

log = logging.getLogger(__name__)

TUNE = CommandSpec("tune", "Rules over 7 days: fired, firing time, acked, suggested threshold; Apply/Revert (admins)",
                   "/tune")
COMMANDS = [TUNE]


def tuning_of(ctx: BotContext) -> TuningService | None:
    return ctx.alerts.tuning if ctx.alerts is not None else None


async def _view(service: TuningService, signer: CallbackSigner, buttons: bool) -> tuple[str, InlineKeyboardMarkup | None]:
    rows = await service.report()
    return render_tune(rows), tune_keyboard(signer, rows) if buttons else None


def _rule_for(ctx: BotContext, key: str) -> str | None:
    if ctx.alerts is None:
        return None
    return next((name for name in ctx.alerts.rules.names if rule_key(name) == key), None)


def make_router() -> Router:
    router = Router(name="tune")

    @router.message(Command(TUNE.name), flags=flags_for(TUNE))
    async def tune(message: Message, ctx: BotContext, cb_signer: CallbackSigner, role: Role) -> None:
        service = tuning_of(ctx)
        if service is None:
            await send_pieces(message, ALERTING_OFF)
            return
        text, keyboard = await _view(service, cb_signer, role >= Role.ADMIN or message.chat.type != "private")
        await send_pieces(message, text, keyboard)

    @router.callback_query(Signed(TuneCb), flags=admin_flags())
    async def press(query: CallbackQuery, callback_data: TuneCb, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        service = tuning_of(ctx)
        if service is None:
            await answer_query(query, ALERTING_OFF, show_alert=True)
            return
        actor = Actor(query.from_user.id, actor_name(query.from_user))
        result: ActionResult
        if callback_data.action is TuneAction.APPLY:
            if cb_signer.is_expired(callback_data.ts):
                await answer_query(query, "This button has expired; send /tune again.", show_alert=True)
                return
            rule = _rule_for(ctx, callback_data.rule)
            if rule is None:
                await answer_query(query, "That rule is no longer loaded; send /tune again.", show_alert=True)
                return
            result = await service.apply(rule, actor)
        else:
            result = await service.revert(callback_data.change, actor)
        log.info("user %s pressed %s on /tune: %s", query.from_user.id, callback_data.action.name, result)
        if result.changed and callback_data.card and isinstance(query.message, Message):
            text, keyboard = await _view(service, cb_signer, True)
            await edit_in_place(query, text, keyboard, resend_hint="/tune", done_text=result.text[:200])
            return
        await answer_query(query, result.text[:200], show_alert=not result.changed)

    return router
