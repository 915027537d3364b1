"""/tune: how each rule behaved over the last 7 days and the threshold its own history suggests,
with ✔ Apply and ↩ Revert buttons (admins only, rights checked again on every press); then
"Controls": the knobs the service turns by itself (``recovery.control``), with ↩ Revert on the last
automatic actions.

    /tune                          both parts
    /tune controls                 the Controls part alone
    /tune fetch_concurrency 8      set a control (admins): validated, pinned, recorded, survives a restart
    /tune fetch_concurrency auto   hand it back to its controller
    /tune api_slow                 an alert rule's name: the rules part (thresholds change by its buttons)

Apply expires with the other admin actions (the suggestion applied is the one computed at press
time, so an old /tune must not apply a figure nobody saw); Revert names one recorded change and
never expires (automatic tuning announces its changes with it); a second Revert changes nothing.
"""
from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from alerts.api import ActionResult, Actor, TuningService
from bot.callbacks import CallbackSigner, KnobCb, Signed, TuneAction, TuneCb, rule_key
from bot.commands import CommandSpec, Role
from bot.context import BotContext
from bot.middlewares.access import NEEDS_ADMIN
from bot.routers.common import actor_name, admin_flags, answer_query, edit_in_place, flags_for, send_pieces
from bot.views.alerts import ALERTING_OFF
from bot.views.controls import controls_keyboard, render_control_result, render_controls
from bot.views.tune import render_tune, tune_keyboard
from delivery.html import code, esc
from recovery.control import Controls

log = logging.getLogger(__name__)

TUNE = CommandSpec("tune", "Rules over 7 days (suggested thresholds, Apply/Revert) and the service's controls "
                   "(running values, pins, last automatic actions, Revert); /tune <control> <value|auto> sets one (admins)",
                   "/tune fetch_concurrency 8")
COMMANDS = [TUNE]
CONTROLS = "controls"
NO_CONTROLS = "The service's controls do not run in this process."


def tuning_of(ctx: BotContext) -> TuningService | None:
    return ctx.alerts.tuning if ctx.alerts is not None else None


async def _view(service: TuningService, signer: CallbackSigner, buttons: bool) -> tuple[str, InlineKeyboardMarkup | None]:
    rows = await service.report()
    return render_tune(rows), tune_keyboard(signer, rows) if buttons else None


def controls_of(ctx: BotContext) -> Controls | None:
    return ctx.recovery.controls if ctx.recovery is not None else None


async def _controls_view(controls: Controls, signer: CallbackSigner, buttons: bool,
                         now: float) -> tuple[str, InlineKeyboardMarkup | None]:
    recent = await controls.recent(limit=6)
    return render_controls(controls.knobs(), recent, now), controls_keyboard(signer, recent) if buttons else None


def _rule_for(ctx: BotContext, key: str) -> str | None:
    if ctx.alerts is None:
        return None
    return next((name for name in ctx.alerts.rules.names if rule_key(name) == key), None)


def make_router() -> Router:
    router = Router(name="tune")

    @router.message(Command(TUNE.name), flags=flags_for(TUNE))
    async def tune(message: Message, command: CommandObject, ctx: BotContext, cb_signer: CallbackSigner,
                   role: Role) -> None:
        args = (command.args or "").split()
        buttons = role >= Role.ADMIN or message.chat.type != "private"
        service, controls = tuning_of(ctx), controls_of(ctx)
        if args == [CONTROLS]:
            if controls is None:
                await send_pieces(message, NO_CONTROLS)
            else:
                await send_pieces(message, *await _controls_view(controls, cb_signer, buttons, ctx.clock.time()))
            return
        rules = ctx.alerts.rules.names if ctx.alerts is not None else []
        if args and (controls is None or controls.registry.get(args[0]) is None) and args[0] not in rules:
            close = controls.closest(args[0]) if controls is not None else []
            close += [r for r in rules if args[0].lower() in r.lower()][:3]
            hint = f"; did you mean {', '.join(close)}?" if close else "; /tune lists the controls and rules"
            await send_pieces(message, f"⚠️ No control or alert rule named {code(args[0][:40])}{esc(hint)}")
            return
        if args and args[0] not in rules:     # /tune <control> [value|auto]
            assert controls is not None
            if len(args) != 2:
                await send_pieces(message, f"⚠️ Usage: {code(f'/tune {args[0]} <value>')} or "
                                           f"{code(f'/tune {args[0]} auto')}")
                return
            if role < Role.ADMIN:
                await send_pieces(message, NEEDS_ADMIN)
                return
            result = await controls.set(args[0], args[1], actor_name(message.from_user))
            log.info("user %s: /tune %s %s: %s", message.from_user.id if message.from_user else None,
                     args[0], args[1][:20], result.text)
            await send_pieces(message, render_control_result(result))
            return
        if service is None:
            await send_pieces(message, ALERTING_OFF)
        else:
            text, keyboard = await _view(service, cb_signer, buttons)
            await send_pieces(message, text, keyboard)
        if controls is not None and not args:
            text, keyboard = await _controls_view(controls, cb_signer, buttons, ctx.clock.time())
            await send_pieces(message, text, keyboard)

    @router.callback_query(Signed(KnobCb), flags=admin_flags())
    async def revert_knob(query: CallbackQuery, callback_data: KnobCb, ctx: BotContext,
                          cb_signer: CallbackSigner) -> None:
        controls = controls_of(ctx)
        if controls is None:
            await answer_query(query, NO_CONTROLS, show_alert=True)
            return
        result = await controls.revert(callback_data.id, actor_name(query.from_user))
        log.info("user %s pressed Revert on action #%s: %s", query.from_user.id, callback_data.id, result.text)
        if result.changed and callback_data.card and isinstance(query.message, Message):
            text, keyboard = await _controls_view(controls, cb_signer, True, ctx.clock.time())
            await edit_in_place(query, text, keyboard, resend_hint="/tune", done_text=result.text[:200])
            return
        await answer_query(query, result.text[:200], show_alert=not result.changed)

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
