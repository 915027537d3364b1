"""The buttons on alert messages: the bot's :class:`alerts.api.ButtonFactory`, and the keyboards
the alert commands (/alerts, /silence, /maintenance, /tune) put on their own replies.

Every button carries signed callback data (``bot.callbacks``), so a forged press is refused.
Incident, Unsilence, End-maintenance and Revert buttons do not expire: an incident lasts hours or
days and its alert message must keep working all that time; what a press may still do is decided
by the incident's (silence's, change's) own state, and the service answers ``changed=False`` to a
stale or repeated press. Only Apply on /tune expires (see ``bot.callbacks.TuneCb``).

    buttons = AlertButtons(signer)                 # bot/setup.py: ctx.alerts.buttons = buttons
    buttons.incident(12, remediations=rule.remediation, resolved=False)   # reply_markup dict
    incident_keyboard(signer, 12, remediations, resolved=False, card=True)  # for an /alerts card
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from alerts.api import ButtonFactory
from alerts.rules import Remediation
from bot.callbacks import (
    AlertAction,
    AlertCb,
    CallbackSigner,
    QuietAction,
    QuietCb,
    TuneAction,
    TuneCb,
    rule_key,
)

ACK = "✅ Acknowledge"
SILENCE_1H = "🔕 Silence 1h"
ESCALATE = "⏫ Escalate"
DETAILS = "🔎 Details"
UNSILENCE = "🔔 Unsilence"
END_MAINTENANCE = "⏹ End maintenance"
APPLY = "✔ Apply"
REVERT = "↩ Revert"
MAX_LABEL = 40  # characters of a button's text taken from data (a rule's label, a rule name)


def _button(text: str, signer: CallbackSigner, data: Any) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=signer.pack(data))


def incident_keyboard(signer: CallbackSigner, incident_id: int, remediations: Sequence[Remediation] = (),
                      *, resolved: bool = False, card: bool = False) -> InlineKeyboardMarkup:
    """Acknowledge, Silence 1h, Escalate, Details and one button per remediation (by index);
    a resolved incident keeps only Details."""
    c = 1 if card else 0

    def cb(action: AlertAction, index: int = 0) -> AlertCb:
        return AlertCb(action=action, incident=incident_id, index=index, card=c)

    details = _button(DETAILS, signer, cb(AlertAction.DETAILS))
    if resolved:
        return InlineKeyboardMarkup(inline_keyboard=[[details]])
    rows = [
        [_button(ACK, signer, cb(AlertAction.ACK)), _button(SILENCE_1H, signer, cb(AlertAction.SILENCE))],
        [_button(ESCALATE, signer, cb(AlertAction.ESCALATE)), details],
    ]
    fixes = [_button(f"🛠 {r.label}"[:MAX_LABEL], signer, cb(AlertAction.REMEDIATE, i))
             for i, r in enumerate(remediations)]
    rows += [fixes[i:i + 2] for i in range(0, len(fixes), 2)]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def silences_keyboard(signer: CallbackSigner, silence_ids: Sequence[int], *,
                      card: bool = False) -> InlineKeyboardMarkup | None:
    rows = [[_button(f"{UNSILENCE} #{sid}", signer,
                     QuietCb(action=QuietAction.UNSILENCE, id=sid, card=1 if card else 0))]
            for sid in silence_ids]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def maintenance_keyboard(signer: CallbackSigner, maintenance_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        _button(END_MAINTENANCE, signer, QuietCb(action=QuietAction.END_MAINTENANCE, id=maintenance_id, card=1))]])


def revert_button(signer: CallbackSigner, change_id: int, label: str = REVERT, *,
                  card: bool = False) -> InlineKeyboardButton:
    return _button(label, signer, TuneCb(action=TuneAction.REVERT, change=change_id, card=1 if card else 0))


def apply_button(signer: CallbackSigner, rule: str) -> InlineKeyboardButton:
    """Apply ``rule``'s suggested threshold (on /tune only; expires like other admin actions)."""
    return _button(f"{APPLY} {rule}"[:MAX_LABEL], signer,
                   TuneCb(action=TuneAction.APPLY, rule=rule_key(rule), ts=signer.now_ts(), card=1))


def as_markup(keyboard: InlineKeyboardMarkup | None) -> dict[str, Any] | None:
    """A keyboard as the JSON-able ``reply_markup`` dict the outbox stores."""
    return keyboard.model_dump(mode="json", exclude_none=True) if keyboard is not None else None


class AlertButtons:
    """The bot's :class:`alerts.api.ButtonFactory`: signed inline keyboards for the engine's messages."""

    def __init__(self, signer: CallbackSigner) -> None:
        self.signer = signer

    def incident(self, incident_id: int, *, remediations: Sequence[Remediation], resolved: bool) -> dict[str, Any] | None:
        return as_markup(incident_keyboard(self.signer, incident_id, remediations, resolved=resolved))

    def silence(self, silence_id: int) -> dict[str, Any] | None:
        return as_markup(silences_keyboard(self.signer, [silence_id]))

    def tuning(self, change_id: int) -> dict[str, Any] | None:
        return as_markup(InlineKeyboardMarkup(inline_keyboard=[[revert_button(self.signer, change_id)]]))


def install_alert_buttons(ctx: Any, signer: CallbackSigner) -> ButtonFactory | None:
    """Give the alert engine this bot's buttons (``ctx.alerts.buttons``) when alerting runs here."""
    alerts = getattr(ctx, "alerts", None)
    if alerts is None:
        return None
    factory = AlertButtons(signer)
    alerts.buttons = factory
    return factory
