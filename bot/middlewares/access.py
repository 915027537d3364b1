"""Who is asking: admin, viewer or stranger; and refusing what a role may not do.

Roles come from settings: ``TELEGRAM_ADMIN_IDS`` are admins; ``TELEGRAM_VIEWER_IDS``
and anyone writing in (or pressing a button in) ``TELEGRAM_ALERT_CHAT_ID`` are
viewers; everyone else is a stranger and gets a short "Not authorised." for
commands and button presses (plain chatter is ignored); nothing changes. Every
button press is checked again against the presser, so a forwarded or old
message gives no extra rights.

    dp.message.outer_middleware(AccessMiddleware(settings))
    dp.callback_query.outer_middleware(AccessMiddleware(settings))  # same instance is fine
    dp.message.middleware(RoleGate())           # enforces flags={"role": "admin"}
    dp.callback_query.middleware(RoleGate())

Handlers receive ``role`` (a ``bot.commands.Role``).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.types import CallbackQuery, Message, TelegramObject

from app.settings import Settings
from bot.commands import Role

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

NOT_AUTHORISED = "Not authorised."
NEEDS_ADMIN = "Only admins can do that."


def role_for(settings: Settings, user_id: int | None, chat_id: int | None) -> Role:
    """The role of ``user_id`` acting in ``chat_id``."""
    if user_id is None:
        return Role.STRANGER
    if user_id in settings.telegram_admin_ids:
        return Role.ADMIN
    if user_id in settings.telegram_viewer_ids:
        return Role.VIEWER
    if chat_id is not None and settings.telegram_alert_chat_id is not None \
            and chat_id == settings.telegram_alert_chat_id:
        return Role.VIEWER
    return Role.STRANGER


def is_command(message: Message) -> bool:
    text = message.text or message.caption or ""
    return text.startswith("/")


class AccessMiddleware(BaseMiddleware):
    """Outer middleware on messages and callback queries: sets ``role``, refuses strangers.

    ``refused`` counts refusals (for metrics). The console chat passes
    ``trusted_role`` in the update's data to act as its local admin.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.refused = 0

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = getattr(event, "from_user", None)
        user_id = user.id if user is not None else None
        if isinstance(event, CallbackQuery):
            chat_id = event.message.chat.id if event.message is not None else None
        elif isinstance(event, Message):
            chat_id = event.chat.id
        else:
            chat_id = None
        trusted = data.get("trusted_role")
        role = Role.parse(trusted) if trusted is not None else role_for(self.settings, user_id, chat_id)
        data["role"] = role
        if role >= Role.VIEWER:
            return await handler(event, data)

        if isinstance(event, CallbackQuery):
            self.refused += 1
            log.warning("refused button press from user %s in chat %s", user_id, chat_id)
            await _answer_quietly(event, NOT_AUTHORISED)
        elif isinstance(event, Message) and is_command(event) and await _addressed_to_us(event, data):
            self.refused += 1
            log.warning("refused command from user %s in chat %s", user_id, chat_id)
            await _reply_quietly(event, NOT_AUTHORISED)
        elif isinstance(event, Message) and is_command(event):
            log.debug("ignored a stranger's command not addressed to us (user %s, chat %s)", user_id, chat_id)
        return None


class RoleGate(BaseMiddleware):
    """Inner middleware: a handler flagged ``{"role": "admin"}`` runs only for admins.

        @router.callback_query(Signed(JobsCb), flags={"role": "admin"})
    """

    def __init__(self) -> None:
        self.refused = 0

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        required = Role.parse(get_flag(data, "role", default="viewer"))
        role: Role = data.get("role", Role.STRANGER)
        if role >= required:
            return await handler(event, data)
        self.refused += 1
        user = getattr(event, "from_user", None)
        log.warning("user %s (%s) tried an action needing %s", getattr(user, "id", None), role.label,
                    required.label)
        text = NEEDS_ADMIN if required is Role.ADMIN else NOT_AUTHORISED
        if isinstance(event, CallbackQuery):
            await _answer_quietly(event, text)
        elif isinstance(event, Message):
            await _reply_quietly(event, text)
        return None


async def _addressed_to_us(message: Message, data: dict[str, Any]) -> bool:
    """Whether a command is meant for this bot (the same rule as ``routers/fallback.py``).

    In a private chat every command is. In a group only ``/cmd@our_username`` is: a bare
    ``/cmd`` may be meant for any bot in the group, so refusing it would spam strangers.
    """
    if message.chat.type == "private":
        return True
    head = (message.text or message.caption or "").split(maxsplit=1)[0]
    _, at, mention = head.partition("@")
    if not at:
        return False
    bot = data.get("bot")
    try:
        me = await bot.me() if bot is not None else None
    except Exception:  # noqa: BLE001 - cannot tell: stay silent rather than risk spam
        return False
    return me is not None and (me.username or "").lower() == mention.lower()


async def _answer_quietly(query: CallbackQuery, text: str) -> None:
    try:
        await query.answer(text, show_alert=True)
    except Exception as exc:  # noqa: BLE001 - a refusal that cannot be delivered is only logged
        log.info("could not answer callback: %s", exc)


async def _reply_quietly(message: Message, text: str) -> None:
    try:
        await message.answer(text, parse_mode=None)
    except Exception as exc:  # noqa: BLE001
        log.info("could not send refusal: %s", exc)
