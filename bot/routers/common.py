"""Helpers shared by the routers: role flags and in-place edits that never fail loudly.

    @router.message(Command("status"), flags=flags_for(SPEC))
    await edit_in_place(query, text, keyboard, resend_hint="/status")
"""
from __future__ import annotations

import logging
from typing import Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.commands import CommandSpec, Role
from delivery.html import MAX_MESSAGE_LEN, split_html, visible_len

log = logging.getLogger(__name__)


def flags_for(spec: CommandSpec) -> dict[str, Any]:
    return {"role": spec.role.label}


def admin_flags() -> dict[str, Any]:
    return {"role": Role.ADMIN.label}


def fit(text: str) -> list[str]:
    """``text`` as one or more pieces within Telegram's length limit."""
    try:
        if visible_len(text) <= MAX_MESSAGE_LEN:
            return [text]
    except ValueError:
        pass
    return split_html(text)


async def send_pieces(message: Message, text: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Answer ``message`` with ``text`` (split if long); the keyboard goes on the last piece."""
    pieces = fit(text)
    for i, piece in enumerate(pieces):
        await message.answer(piece, reply_markup=keyboard if i == len(pieces) - 1 else None)


async def edit_in_place(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None,
                        *, resend_hint: str, done_text: str | None = None) -> bool:
    """Edit the pressed message; answer the query in every case. True if the message changed.

    "message is not modified" is answered quietly ("Already up to date"); an old or
    deleted message gets a hint to send the command again.
    """
    message = query.message
    if not isinstance(message, Message):
        await query.answer(f"This message is too old to update; send {resend_hint} again.", show_alert=True)
        return False
    try:
        await message.edit_text(fit(text)[0], reply_markup=keyboard)
    except TelegramBadRequest as exc:
        reason = exc.message.lower()
        if "message is not modified" in reason:
            await query.answer("Already up to date.")
            return False
        log.info("edit failed (%s), telling the user to resend", exc.message)
        await query.answer(f"This message can't be updated any more; send {resend_hint} again.", show_alert=True)
        return False
    await query.answer(done_text)
    return True
