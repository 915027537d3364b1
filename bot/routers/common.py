"""Helpers shared by the routers: role flags, replies through the outbox, in-place edits and
callback answers that never fail loudly.

    @router.message(Command("status"), flags=flags_for(SPEC))
    await send_pieces(message, text, keyboard)          # a reply: queued in the outbox
    await edit_in_place(query, text, keyboard, resend_hint="/status")
    await answer_query(query, "Done.")                  # a 429 or 5xx is retried briefly, never raised

Command replies go through the outbox when the bot runs with one (``ReplyRoute`` installed
by ``bot.setup``): durable, paced with the alerts (one ``Pacer``), retried on 429/5xx, and
keyed by the Telegram update so a redelivered update is answered once. A reply still unsent
after a long outage goes out once Telegram is back, headed "Late reply" (see
``delivery.row_delivery``). Without an outbox (a dispatcher used on its own, the console
chat) replies are sent directly.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject, Update

from bot.commands import CommandSpec, Role
from delivery.html import MAX_MESSAGE_LEN, split_html, visible_len
from delivery.store import MAX_KEY_LEN, Outbox

log = logging.getLogger(__name__)

# A callback query must be answered within seconds: one short retry at most.
ANSWER_RETRY_MAX_S = 2.0


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


# --------------------------------------------------------------------------- replies


@dataclass
class ReplyRoute:
    """Where replies to the update being handled go: the outbox, keyed by the update."""

    outbox: Outbox
    update_key: str
    replies: int = 0

    def next_key(self) -> str:
        self.replies += 1
        key = f"reply:{self.update_key}:{self.replies}"
        if len(key) > MAX_KEY_LEN:
            key = "reply:" + hashlib.sha256(key.encode()).hexdigest()
        return key


_ROUTE: ContextVar[ReplyRoute | None] = ContextVar("reply_route", default=None)


def update_key(update: Update) -> str:
    """A key unique to one Telegram update, stable when the same update is delivered again.

    The update id alone can repeat (Telegram restarts the sequence after a quiet week; the
    console chat counts from 1 on each start), so the event's own ids and date go with it.
    """
    message = update.message
    if message is not None:
        return f"{update.update_id}:m{message.chat.id}:{message.message_id}:{int(message.date.timestamp())}"
    query = update.callback_query
    if query is not None:
        origin = query.message
        date = int(origin.date.timestamp()) if isinstance(origin, Message) else 0
        return f"{update.update_id}:q{query.id}:{date}"
    return f"{update.update_id}:{update.event_type}"


class ReplyOutboxMiddleware(BaseMiddleware):
    """Outer middleware on ``dp.update``: replies sent while handling the update go to ``outbox``.

        dp.update.outer_middleware(ReplyOutboxMiddleware(outbox))
    """

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        token = _ROUTE.set(ReplyRoute(self.outbox, update_key(event)))
        try:
            return await handler(event, data)
        finally:
            _ROUTE.reset(token)


async def send_pieces(message: Message, text: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """Answer ``message`` with ``text`` (split if long; the keyboard goes on the last piece).

    Queued in the outbox when the bot runs with one (see the module docstring).
    """
    route = _ROUTE.get()
    if route is not None:
        await route.outbox.enqueue_reply(message.chat.id, text, key=route.next_key(), reply_markup=keyboard)
        return
    pieces = fit(text)
    for i, piece in enumerate(pieces):
        await message.answer(piece, reply_markup=keyboard if i == len(pieces) - 1 else None)


# --------------------------------------------------------------------------- direct answers


async def answer_query(query: CallbackQuery, text: str | None = None, *, show_alert: bool = False) -> bool:
    """Answer a button press; a 429 or 5xx is retried once if that fits in seconds. Never raises.

    Returns True if Telegram took the answer.
    """
    for attempt in (0, 1):
        try:
            await query.answer(text, show_alert=show_alert)
            return True
        except TelegramRetryAfter as exc:
            if attempt or exc.retry_after > ANSWER_RETRY_MAX_S:
                log.warning("callback answer dropped: Telegram asked to wait %ss", exc.retry_after)
                return False
            await asyncio.sleep(exc.retry_after)
        except (TelegramServerError, TelegramNetworkError) as exc:
            if attempt:
                log.warning("callback answer dropped: %s", exc.message)
                return False
            await asyncio.sleep(0.5)
        except TelegramAPIError as exc:  # e.g. the query is too old: nothing to retry
            log.info("callback answer refused: %s", exc.message)
            return False
    return False


async def edit_in_place(query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None,
                        *, resend_hint: str, done_text: str | None = None) -> bool:
    """Edit the pressed message; answer the query exactly once in every case. True if the message changed.

    "message is not modified" is answered quietly ("Already up to date"); an old or
    deleted message gets a hint to send the command again; a 429 or 5xx from Telegram
    gets "try again" (edits stay direct: the answer must come within seconds).
    """
    message = query.message
    if not isinstance(message, Message):
        await answer_query(query, f"This message is too old to update; send {resend_hint} again.", show_alert=True)
        return False
    try:
        await message.edit_text(fit(text)[0], reply_markup=keyboard)
    except TelegramRetryAfter as exc:
        log.info("edit throttled by Telegram (retry after %ss)", exc.retry_after)
        await answer_query(query, f"Telegram is busy; try again in {exc.retry_after}s.")
        return False
    except (TelegramServerError, TelegramNetworkError) as exc:
        log.info("edit failed: Telegram unavailable (%s)", exc.message)
        await answer_query(query, "Telegram did not take the update; try again in a moment.")
        return False
    except TelegramBadRequest as exc:
        reason = exc.message.lower()
        if "message is not modified" in reason:
            await answer_query(query, "Already up to date.")
            return False
        log.info("edit failed (%s), telling the user to resend", exc.message)
        await answer_query(query, f"This message can't be updated any more; send {resend_hint} again.",
                           show_alert=True)
        return False
    await answer_query(query, done_text)
    return True


# --------------------------------------------------------------------------- who acts


def actor_name(user: Any) -> str:
    """How a Telegram user is named in the alert layer's records: ``@username`` or the full name."""
    if user is None:
        return "unknown"
    username = getattr(user, "username", None)
    if username:
        return f"@{username}"[:64]
    return (getattr(user, "full_name", "") or str(getattr(user, "id", "unknown")))[:64]
