"""/alerts, /ack and the buttons on every alert message (✅ Acknowledge, 🔕 Silence 1h, ⏫ Escalate,
🔎 Details, the rule's remediations).

The handlers parse, call ``ctx.alerts.incidents`` (``alerts.api.IncidentService``) and answer with
the service's one-line result: a double tap or a stale button gets ``changed=False`` and its text,
and nothing happens twice. Acting needs an admin (``RoleGate`` checks every press against the
presser, so a forwarded message gives no rights); 🔎 Details is open to viewers and comes as a new
message, never as an edit of the alert. The engine redraws its own alert messages after a change;
the bot redraws the /alerts cards it sent (``AlertCb.card``).

    /alerts        open incidents: a header, then one card per incident with its buttons
    /ack 12        the same as pressing ✅ Acknowledge on incident 12
"""
from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from alerts.api import ActionResult, Actor, IncidentService, IncidentView
from alerts.rules import SEVERITY_RANK
from bot.alert_args import ACK_EXAMPLE, Usage, parse_incident_id
from bot.alert_buttons import incident_keyboard
from bot.callbacks import AlertAction, AlertCb, CallbackSigner, Signed
from bot.commands import CommandSpec, Role
from bot.context import BotContext
from bot.routers.common import actor_name, admin_flags, answer_query, edit_in_place, flags_for, send_pieces
from bot.views.alerts import (
    ALERTING_OFF,
    render_action_result,
    render_incident_card,
    render_incident_details,
    render_open_alerts,
    render_usage,
)

log = logging.getLogger(__name__)

ALERTS = CommandSpec("alerts", "Open alerts, each with its Acknowledge / Silence / Escalate / Details buttons",
                     "/alerts")
ACK = CommandSpec("ack", "Acknowledge an incident (same as its ✅ button)", ACK_EXAMPLE, role=Role.ADMIN)
COMMANDS = [ALERTS, ACK]

MAX_CARDS = 10          # /alerts sends at most this many incident cards (the most severe first)
SILENCE_BUTTON_S = 3600.0
ACTIONS = {AlertAction.ACK, AlertAction.SILENCE, AlertAction.ESCALATE, AlertAction.REMEDIATE}


def incidents_of(ctx: BotContext) -> IncidentService | None:
    return ctx.alerts.incidents if ctx.alerts is not None else None


def most_severe_first(views: list[IncidentView]) -> list[IncidentView]:
    return sorted(views, key=lambda v: (v.status == "resolved", -SEVERITY_RANK.get(v.severity, -1),
                                        v.status != "open", v.opened_at, v.id))


def card_keyboard(signer: CallbackSigner, view: IncidentView):  # -> InlineKeyboardMarkup
    return incident_keyboard(signer, view.id, view.remediations, resolved=view.status == "resolved", card=True)


async def _act(service: IncidentService, data: AlertCb, actor: Actor) -> ActionResult:
    if data.action is AlertAction.ACK:
        return await service.acknowledge(data.incident, actor)
    if data.action is AlertAction.SILENCE:
        return await service.silence_incident(data.incident, SILENCE_BUTTON_S, actor)
    if data.action is AlertAction.ESCALATE:
        return await service.escalate(data.incident, actor)
    return await service.remediate(data.incident, data.index, actor)


def make_router() -> Router:
    router = Router(name="alerts")

    @router.message(Command(ALERTS.name), flags=flags_for(ALERTS))
    async def alerts(message: Message, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        service = incidents_of(ctx)
        if service is None:
            await send_pieces(message, ALERTING_OFF)
            return
        views = most_severe_first(await service.open_incidents())
        counts: dict[str, int] = {}
        for v in views:
            counts[v.severity] = counts.get(v.severity, 0) + 1
        shown = views[:MAX_CARDS]
        now = ctx.clock.time()
        replies = [(render_open_alerts(views, counts, shown=len(shown)), None)]
        replies += [(render_incident_card(view, now), card_keyboard(cb_signer, view)) for view in shown]
        failed: list[Exception] = []
        for text, keyboard in replies:  # one card Telegram refuses must not hide the other incidents
            try:
                await send_pieces(message, text, keyboard)
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the others went out
                log.warning("an /alerts reply was refused: %s", exc)
                failed.append(exc)
        if failed:
            raise failed[0]

    @router.message(Command(ACK.name), flags=flags_for(ACK))
    async def ack(message: Message, command: CommandObject, ctx: BotContext) -> None:
        service = incidents_of(ctx)
        if service is None:
            await send_pieces(message, ALERTING_OFF)
            return
        parsed = parse_incident_id(command.args)
        if isinstance(parsed, Usage):
            await send_pieces(message, render_usage(parsed))
            return
        result = await service.acknowledge(parsed, Actor(message.from_user.id if message.from_user else None,
                                                         actor_name(message.from_user)))
        if not result.ok:
            await send_pieces(message, render_usage(Usage(result.text.rstrip("."), ACK_EXAMPLE)))
            return
        await send_pieces(message, render_action_result(result))

    @router.callback_query(Signed(AlertCb, F.action.in_(ACTIONS)), flags=admin_flags())
    async def act(query: CallbackQuery, callback_data: AlertCb, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        service = incidents_of(ctx)
        if service is None:
            await answer_query(query, ALERTING_OFF, show_alert=True)
            return
        actor = Actor(query.from_user.id, actor_name(query.from_user))
        result = await _act(service, callback_data, actor)
        log.info("user %s pressed %s on incident %s: %s", query.from_user.id, callback_data.action.name,
                 callback_data.incident, result)
        if result.changed and callback_data.card and isinstance(query.message, Message):
            view = await service.get(callback_data.incident)
            if view is not None:
                await edit_in_place(query, render_incident_card(view, ctx.clock.time()),
                                    card_keyboard(cb_signer, view), resend_hint="/alerts",
                                    done_text=result.text[:200])
                return
        await answer_query(query, result.text[:200], show_alert=not result.changed)

    @router.callback_query(Signed(AlertCb, F.action == AlertAction.DETAILS), flags=flags_for(ALERTS))
    async def details(query: CallbackQuery, callback_data: AlertCb, ctx: BotContext) -> None:
        service = incidents_of(ctx)
        if service is None:
            await answer_query(query, ALERTING_OFF, show_alert=True)
            return
        if not isinstance(query.message, Message):
            await answer_query(query, "This message is too old; send /alerts again.", show_alert=True)
            return
        view = await service.get(callback_data.incident)
        if view is None:
            await answer_query(query, f"No incident #{callback_data.incident}.", show_alert=True)
            return
        timeline = await service.timeline(view.id)
        await answer_query(query)
        await send_pieces(query.message, render_incident_details(view, timeline, ctx.clock.time()))

    return router
