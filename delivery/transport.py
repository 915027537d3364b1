"""How the outbox reaches a chat: the ``Transport`` protocol and its aiogram implementation.

A transport sends one Telegram-sized message and returns its message id, or raises one
of the typed errors below; the sender decides what each error means for the row::

    transport = BotTransport(bot)
    try:
        message_id = await transport.send_text(chat_id, "<b>hi</b>")
    except RetryAfter as exc:        # flood control: wait exc.retry_after seconds
        ...
    except TemporaryError:           # 5xx, network, Telegram unreachable: retry later
        ...
    except ParseError:               # HTML refused: resend as plain text
        ...
    except NotModified:              # an edit that changes nothing: already delivered
        ...
    except ChatMigrated as exc:      # the group became a supergroup: resend to exc.migrate_to_chat_id
        ...
    except Unauthorized:             # 401: the bot token is wrong or revoked; stop sending
        ...
    except PermanentError:           # chat not found, bot blocked: dead letter
        ...
"""
from __future__ import annotations

import json
import logging
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "TransportError", "RetryAfter", "TemporaryError", "ParseError", "NotModified", "PermanentError", "ChatMigrated",
    "Unauthorized",
    "Transport", "BotTransport",
]

log = logging.getLogger(__name__)


class TransportError(Exception):
    """Base class of what a transport may raise."""


class RetryAfter(TransportError):
    """Flood control (HTTP 429): nothing may be sent for ``retry_after`` seconds."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"retry after {retry_after}s")
        self.retry_after = float(retry_after)


class TemporaryError(TransportError):
    """Telegram unreachable or failing (5xx, network error, garbage answer): retry later."""


class ParseError(TransportError):
    """Bad Request: can't parse entities (the HTML was refused)."""


class NotModified(TransportError):
    """Bad Request: message is not modified (the edit is a no-op; treat as delivered)."""


class PermanentError(TransportError):
    """Any other refusal (chat not found, bot blocked, message too long...): retrying won't help."""


class Unauthorized(TransportError):
    """401 Unauthorized: Telegram refused the bot token; nothing can be sent until it is fixed."""


class ChatMigrated(TransportError):
    """The group was upgraded to a supergroup: the same message must go to ``migrate_to_chat_id``."""

    def __init__(self, migrate_to_chat_id: int, message: str = "") -> None:
        super().__init__(message or f"group migrated to {migrate_to_chat_id}")
        self.migrate_to_chat_id = int(migrate_to_chat_id)


@runtime_checkable
class Transport(Protocol):
    """Sends one message-sized unit. ``parse_mode=None`` sends plain text."""

    async def send_text(self, chat_id: int, text: str, *, reply_markup: dict | None = None,
                        parse_mode: str | None = "HTML") -> int:
        """Send a text message; return its message id."""

    async def edit_text(self, chat_id: int, message_id: int, text: str, *, reply_markup: dict | None = None,
                        parse_mode: str | None = "HTML") -> int:
        """Replace a message's text (and keyboard); return its message id."""

    async def edit_caption(self, chat_id: int, message_id: int, caption: str, *,
                           reply_markup: dict | None = None, parse_mode: str | None = "HTML") -> int:
        """Replace a picture's caption (and keyboard); return its message id."""

    async def send_photo(self, chat_id: int, photo: bytes, *, caption: str | None = None,
                         reply_markup: dict | None = None, parse_mode: str | None = "HTML") -> int:
        """Send a picture with an optional caption; return its message id."""

    # Optional: ``async def probe(self) -> None`` -- a cheap authenticated call (``getMe``) that
    # raises ``Unauthorized`` while the token is refused (``delivery.token_guard`` uses it).


def _markup(reply_markup: dict | str | None) -> Any:
    """An ``InlineKeyboardMarkup``; a malformed keyboard is dropped (logged) so the text still goes."""
    if reply_markup is None:
        return None
    from aiogram.types import InlineKeyboardMarkup
    from pydantic import ValidationError

    try:
        data = json.loads(reply_markup) if isinstance(reply_markup, str) else reply_markup
        return InlineKeyboardMarkup.model_validate(data)
    except (ValueError, ValidationError) as exc:
        log.warning("dropping a malformed inline keyboard: %s", str(exc).splitlines()[0])
        return None


class BotTransport:
    """``Transport`` over a real ``aiogram.Bot`` (api.telegram.org or the fake server).

        transport = BotTransport(Bot(token, session=..., default=DefaultBotProperties(parse_mode="HTML")))
        message_id = await transport.send_text(-100123, "<b>alert</b>")
    """

    def __init__(self, bot: Any, *, request_timeout_s: float | None = None) -> None:
        self.bot = bot
        self.request_timeout_s = request_timeout_s

    async def send_text(self, chat_id: int, text: str, *, reply_markup: dict | None = None,
                        parse_mode: str | None = "HTML") -> int:
        msg = await self._call(self.bot.send_message(
            chat_id=chat_id, text=text, parse_mode=parse_mode, reply_markup=_markup(reply_markup),
            request_timeout=self._timeout()))
        return int(msg.message_id)

    async def edit_text(self, chat_id: int, message_id: int, text: str, *, reply_markup: dict | None = None,
                        parse_mode: str | None = "HTML") -> int:
        result = await self._call(self.bot.edit_message_text(
            text=text, chat_id=chat_id, message_id=message_id, parse_mode=parse_mode,
            reply_markup=_markup(reply_markup), request_timeout=self._timeout()))
        return int(getattr(result, "message_id", message_id))

    async def edit_caption(self, chat_id: int, message_id: int, caption: str, *,
                           reply_markup: dict | None = None, parse_mode: str | None = "HTML") -> int:
        result = await self._call(self.bot.edit_message_caption(
            chat_id=chat_id, message_id=message_id, caption=caption, parse_mode=parse_mode,
            reply_markup=_markup(reply_markup), request_timeout=self._timeout()))
        return int(getattr(result, "message_id", message_id))

    async def send_photo(self, chat_id: int, photo: bytes, *, caption: str | None = None,
                         reply_markup: dict | None = None, parse_mode: str | None = "HTML") -> int:
        from aiogram.types import BufferedInputFile

        msg = await self._call(self.bot.send_photo(
            chat_id=chat_id, photo=BufferedInputFile(photo, filename="chart.png"), caption=caption,
            parse_mode=parse_mode, reply_markup=_markup(reply_markup), request_timeout=self._timeout()))
        return int(msg.message_id)

    async def probe(self) -> None:
        """``getMe``: raises ``Unauthorized`` while Telegram refuses the token."""
        await self._call(self.bot.get_me(request_timeout=self._timeout()))

    def _timeout(self) -> int | None:
        return None if self.request_timeout_s is None else max(1, int(self.request_timeout_s))

    @staticmethod
    async def _call(coro: Any) -> Any:
        from aiogram.exceptions import (
            ClientDecodeError,
            TelegramAPIError,
            TelegramBadRequest,
            TelegramEntityTooLarge,
            TelegramForbiddenError,
            TelegramMigrateToChat,
            TelegramNetworkError,
            TelegramNotFound,
            TelegramRetryAfter,
            TelegramServerError,
            TelegramUnauthorizedError,
        )

        try:
            return await coro
        except TelegramRetryAfter as exc:
            raise RetryAfter(exc.retry_after, exc.message) from exc
        except TelegramMigrateToChat as exc:
            raise ChatMigrated(exc.migrate_to_chat_id, exc.message) from exc
        except TelegramBadRequest as exc:
            text = exc.message.lower()
            if "message is not modified" in text:
                raise NotModified(exc.message) from exc
            if "can't parse entities" in text or "can't find end of the entity" in text:
                raise ParseError(exc.message) from exc
            raise PermanentError(exc.message) from exc
        except TelegramUnauthorizedError as exc:
            raise Unauthorized(exc.message) from exc
        except (TelegramForbiddenError, TelegramNotFound, TelegramEntityTooLarge) as exc:
            raise PermanentError(exc.message) from exc
        except (TelegramServerError, TelegramNetworkError) as exc:
            raise TemporaryError(exc.message) from exc
        except TelegramAPIError as exc:  # an unclassified answer (409, 418...): retry rather than lose
            raise TemporaryError(exc.message) from exc
        except ClientDecodeError as exc:  # a proxy's HTML error page, a truncated body
            raise TemporaryError(f"undecodable answer: {exc.message}") from exc
        except TimeoutError as exc:
            raise TemporaryError("request timed out") from exc
