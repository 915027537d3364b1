"""Revert buttons for recorded knob changes: on the self-healing announcements (the bot is the
announcer's :class:`recovery.announce.RevertButtons`) and on /tune's Controls.

    install_control_buttons(ctx, signer)               # bot/setup.py: the announcer's messages get buttons
    revert_keyboard(signer, [(12, "#12 batch_size")], card=True)

Signed (``bot.callbacks.KnobCb``), never expiring: the ledger refuses a second or a stale revert.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.alert_buttons import REVERT, as_markup
from bot.callbacks import CallbackSigner, KnobAction, KnobCb

MAX_LABEL = 40


def revert_keyboard(signer: CallbackSigner, choices: Sequence[tuple[int, str]], *,
                    card: bool = False) -> InlineKeyboardMarkup | None:
    """One ↩ Revert button per (action id, label), two to a row."""
    buttons = [InlineKeyboardButton(text=f"{REVERT} {label}"[:MAX_LABEL],
                                    callback_data=signer.pack(KnobCb(action=KnobAction.REVERT, id=action_id,
                                                                     card=1 if card else 0)))
               for action_id, label in choices]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


class ControlButtons:
    """The announcer's :class:`recovery.announce.RevertButtons`: signed Revert buttons."""

    def __init__(self, signer: CallbackSigner) -> None:
        self.signer = signer

    def revert_actions(self, actions: Sequence[tuple[int, str]]) -> dict[str, Any] | None:
        return as_markup(revert_keyboard(self.signer, actions))


def install_control_buttons(ctx: Any, signer: CallbackSigner) -> ControlButtons | None:
    """Give the recovery announcer this bot's buttons when recovery runs here."""
    recovery = getattr(ctx, "recovery", None)
    if recovery is None or recovery.announcer is None:
        return None
    factory = ControlButtons(signer)
    recovery.announcer.buttons = factory
    return factory
