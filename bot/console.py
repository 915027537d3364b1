"""The console chat: the bot's own dispatcher and handlers, driven from a terminal.

With no ``TELEGRAM_BOT_TOKEN`` the service talks to you here instead of Telegram.
Type ``/status``; replies print as plain text, buttons print numbered (``[3] 🔄 Refresh``)
and typing the number presses it; pictures are saved under ``./data/console/`` and
their path printed. The console user is an admin. Without a TTY nothing is read and
what would have been sent is logged instead.

Handlers don't know the difference: a ``Bot`` whose session (``ConsoleSession``)
renders ``sendMessage`` / ``editMessageText`` / ``sendPhoto`` / ``answerCallbackQuery``
to the terminal instead of calling HTTP, and updates fed with ``dp.feed_update``::

    chat = ConsoleChat(ctx, out=io.StringIO(), interactive=True)
    await chat.handle_line("/status")       # prints the status and "[1] 🔄 Refresh"
    await chat.handle_line("1")             # presses Refresh
    await chat.run()                        # read stdin until stop(); EOF (Ctrl-D) stops tokenwatch

``ConsoleTransport(chat)`` gives the outbox the same ``Transport`` protocol as
``delivery.transport.BotTransport``, so alerts print here too (with pressable buttons).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from aiogram import Bot, Dispatcher
from aiogram.client.default import Default
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    DeleteMyCommands,
    DeleteWebhook,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.types import InlineKeyboardMarkup, InputFile, Update

from bot.context import BotContext
from delivery.html import to_plain

log = logging.getLogger(__name__)

CONSOLE_TOKEN = "1:console"
CONSOLE_BOT_ID = 1
CONSOLE_USER_ID = 1000
CONSOLE_CHAT_ID = 1000
MAX_REMEMBERED_BUTTONS = 500
NOT_MODIFIED = "Bad Request: message is not modified"
PLAIN_TEXT_HINT = "(not a command: commands start with /, e.g. /status; /help lists them; a number presses a button)"


def interrupt_process() -> None:
    """Stop tokenwatch the way Ctrl-C does: ``run_service`` turns SIGINT into a clean stop."""
    signal.raise_signal(signal.SIGINT)


@dataclass
class _Shown:
    chat_id: int
    text: str
    parse_mode: str | None
    markup: dict | None


class ConsolePrinter:
    """Writes what the bot says to a terminal (or the log); numbers buttons so they can be pressed."""

    def __init__(self, out: TextIO | None = None, *, interactive: bool = True,
                 photo_dir: Path = Path("data/console")) -> None:
        self.out = out or sys.stdout
        self.interactive = interactive
        self.photo_dir = photo_dir
        self.messages: dict[tuple[int, int], _Shown] = {}
        self.buttons: OrderedDict[int, tuple[int, int, str]] = OrderedDict()  # n -> chat, message, data
        self._message_ids = itertools.count(1)
        self._button_numbers = itertools.count(1)

    def next_message_id(self) -> int:
        return next(self._message_ids)

    def emit(self, text: str) -> None:
        if self.interactive:
            self.out.write(text + "\n")
            self.out.flush()
        else:
            log.info("console chat would show: %s", text)

    def _plain(self, text: str, parse_mode: str | None) -> str:
        return to_plain(text) if parse_mode and parse_mode.upper() == "HTML" else text

    def _buttons(self, chat_id: int, message_id: int, markup: dict | None) -> str:
        """Number the buttons; an edited message keeps its buttons' numbers (by position)."""
        rows = (markup or {}).get("inline_keyboard") or []
        parts: list[str] = []
        reuse = [n for n, (c, m, _data) in self.buttons.items() if (c, m) == (chat_id, message_id)]
        for row in rows:
            cells = []
            for button in row:
                data = button.get("callback_data")
                if data is not None:
                    n = reuse.pop(0) if reuse else next(self._button_numbers)
                    self.buttons[n] = (chat_id, message_id, data)
                    while len(self.buttons) > MAX_REMEMBERED_BUTTONS:
                        self.buttons.popitem(last=False)
                    cells.append(f"[{n}] {button.get('text', '')}")
                elif button.get("url"):
                    cells.append(f"({button.get('text', '')}: {button['url']})")
            if cells:
                parts.append("  ".join(cells))
        return "\n".join(parts)

    def show(self, chat_id: int, message_id: int, text: str, parse_mode: str | None, markup: dict | None,
             *, edited: bool = False) -> None:
        self.messages[(chat_id, message_id)] = _Shown(chat_id, text, parse_mode, markup)
        head = f"── #{message_id}{' (edited)' if edited else ''}"
        if chat_id != CONSOLE_CHAT_ID:
            head += f" to chat {chat_id}"
        lines = [head, self._plain(text, parse_mode)]
        buttons = self._buttons(chat_id, message_id, markup)
        if buttons:
            lines.append(buttons)
        self.emit("\n".join(lines))

    async def save_photo(self, chat_id: int, message_id: int, data: bytes, caption: str | None,
                         parse_mode: str | None, markup: dict | None, suffix: str = ".png") -> Path:
        path = self.photo_dir / f"chat{chat_id}-msg{message_id}{suffix}"

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(write)
        self.show(chat_id, message_id, f"[picture saved: {path}]\n" + (caption or ""), None if not caption
                  else parse_mode, markup)
        return path


def _markup_dict(markup: Any) -> dict | None:
    if markup is None or isinstance(markup, Default):
        return None
    if isinstance(markup, dict):
        return markup
    if hasattr(markup, "model_dump"):
        return markup.model_dump(exclude_none=True)
    return None


class ConsoleSession(BaseSession):
    """A ``BaseSession`` that renders bot calls to a ``ConsolePrinter`` instead of HTTP.

        bot = Bot(CONSOLE_TOKEN, session=ConsoleSession(printer), default=DEFAULT_PROPERTIES)
    """

    def __init__(self, printer: ConsolePrinter, chat_type: str = "private") -> None:
        super().__init__()
        self.printer = printer
        self.chat_type = chat_type
        self.calls: dict[str, int] = {}

    async def close(self) -> None:
        return None

    async def stream_content(self, url: str, headers: dict[str, Any] | None = None, timeout: int = 30,
                             chunk_size: int = 65536, raise_for_status: bool = True) -> AsyncGenerator[bytes, None]:
        raise TelegramBadRequest(method=GetMe(), message="the console chat cannot download files")
        yield b""  # pragma: no cover

    def _resolve(self, bot: Bot, value: Any) -> Any:
        return bot.default[value.name] if isinstance(value, Default) else value

    def _chat_json(self, chat_id: int) -> dict[str, Any]:
        kind = self.chat_type if chat_id == CONSOLE_CHAT_ID else ("private" if chat_id > 0 else "supergroup")
        data: dict[str, Any] = {"id": chat_id, "type": kind}
        if kind == "private":
            data["first_name"] = "console"
        else:
            data["title"] = f"chat {chat_id}"
        return data

    def message_json(self, chat_id: int, message_id: int, text: str | None = None,
                     markup: dict | None = None, caption: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": message_id, "date": int(datetime.now(timezone.utc).timestamp()),
            "chat": self._chat_json(chat_id),
            "from": {"id": CONSOLE_BOT_ID, "is_bot": True, "first_name": "tokenwatch"},
        }
        if text is not None:
            data["text"] = text
        if caption is not None:
            data["caption"] = caption
        if markup:
            data["reply_markup"] = markup
        return data

    async def _read_file(self, bot: Bot, file: Any) -> bytes:
        if isinstance(file, InputFile):
            return b"".join([chunk async for chunk in file.read(bot)])
        raise TelegramBadRequest(method=GetMe(), message="the console chat needs an uploaded file")

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None) -> Any:
        name = type(method).__name__
        self.calls[name] = self.calls.get(name, 0) + 1
        result = await self._render(bot, method)
        return self.check_response(bot, method, 200, self.json_dumps({"ok": True, "result": result}))

    async def _render(self, bot: Bot, method: TelegramMethod[Any]) -> Any:  # noqa: C901 - a method switch
        p = self.printer
        if isinstance(method, GetMe):
            return {"id": CONSOLE_BOT_ID, "is_bot": True, "first_name": "tokenwatch", "username": "tokenwatch_console"}
        if isinstance(method, SendMessage):
            chat_id, mid = int(method.chat_id), p.next_message_id()
            markup = _markup_dict(method.reply_markup)
            p.show(chat_id, mid, method.text, self._resolve(bot, method.parse_mode), markup)
            return self.message_json(chat_id, mid, method.text, markup)
        if isinstance(method, (EditMessageText, EditMessageReplyMarkup)):
            chat_id, mid = int(method.chat_id or 0), int(method.message_id or 0)
            old = p.messages.get((chat_id, mid))
            if old is None:
                raise TelegramBadRequest(method=method, message="Bad Request: message to edit not found")
            markup = _markup_dict(method.reply_markup)
            if isinstance(method, EditMessageText):
                text, mode = method.text, self._resolve(bot, method.parse_mode)
            else:
                text, mode = old.text, old.parse_mode
            if text == old.text and markup == old.markup:
                raise TelegramBadRequest(method=method, message=NOT_MODIFIED)
            p.show(chat_id, mid, text or "", mode, markup, edited=True)
            return self.message_json(chat_id, mid, text, markup)
        if isinstance(method, (SendPhoto, SendDocument)):
            chat_id, mid = int(method.chat_id), p.next_message_id()
            file = method.photo if isinstance(method, SendPhoto) else method.document
            data = await self._read_file(bot, file)
            markup = _markup_dict(method.reply_markup)
            suffix = ".png" if isinstance(method, SendPhoto) else ".bin"
            await p.save_photo(chat_id, mid, data, method.caption, self._resolve(bot, method.parse_mode), markup,
                               suffix)
            msg = self.message_json(chat_id, mid, None, markup, caption=method.caption)
            if isinstance(method, SendPhoto):
                msg["photo"] = [{"file_id": f"console{mid}", "file_unique_id": f"c{mid}", "width": 1, "height": 1}]
            else:
                msg["document"] = {"file_id": f"console{mid}", "file_unique_id": f"c{mid}"}
            return msg
        if isinstance(method, AnswerCallbackQuery):
            if method.text:
                p.emit(f"  ↳ {method.text}")
            return True
        if isinstance(method, DeleteMessage):
            p.messages.pop((int(method.chat_id), method.message_id), None)
            return True
        if isinstance(method, (SetMyCommands, DeleteMyCommands, DeleteWebhook)):
            return True
        log.info("console chat: %s is not supported", type(method).__name__)
        raise TelegramBadRequest(method=method, message=f"Bad Request: {type(method).__name__} is not "
                                                       "available in the console chat")


class ConsoleChat:
    """The dispatcher driven by lines of text; see the module docstring."""

    def __init__(self, ctx: BotContext, dispatcher: Dispatcher | None = None, *, out: TextIO | None = None,
                 interactive: bool | None = None, photo_dir: Path | None = None,
                 on_eof: Callable[[], None] | None = None) -> None:
        from bot.app import DEFAULT_PROPERTIES, build_dispatcher

        if interactive is None:
            interactive = sys.stdin.isatty() and sys.stdout.isatty()
        self.ctx = ctx
        self.interactive = interactive
        self.on_eof = on_eof
        self.printer = ConsolePrinter(out, interactive=interactive, photo_dir=photo_dir or Path("data/console"))
        self.session = ConsoleSession(self.printer)
        self.bot = Bot(CONSOLE_TOKEN, session=self.session, default=DEFAULT_PROPERTIES)
        self.dp = dispatcher or build_dispatcher(ctx)
        self._update_ids = itertools.count(1)
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._reader: threading.Thread | None = None

    # -- feeding -------------------------------------------------------------------
    async def handle_line(self, line: str) -> None:
        """One line typed at the prompt: a button number presses it, anything else is a message."""
        text = line.strip()
        if not text:
            return
        if text.isdigit() and int(text) in self.printer.buttons:
            await self.press(int(text))
            return
        if text.isdigit():
            self.printer.emit(f"(no button [{text}]; type a command such as /help)")
            return
        if not text.startswith("/"):
            self.printer.emit(PLAIN_TEXT_HINT)
            return
        await self.send_text(text)

    async def send_text(self, text: str) -> None:
        message: dict[str, Any] = {
            "message_id": self.printer.next_message_id(),
            "date": int(datetime.now(timezone.utc).timestamp()),
            "chat": self.session._chat_json(CONSOLE_CHAT_ID),  # noqa: SLF001
            "from": {"id": CONSOLE_USER_ID, "is_bot": False, "first_name": "console"},
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        await self._feed({"update_id": next(self._update_ids), "message": message})

    async def press(self, number: int) -> None:
        """Press the button printed as ``[number]``."""
        chat_id, message_id, data = self.printer.buttons[number]
        await self.press_data(data, chat_id=chat_id, message_id=message_id)

    async def press_data(self, data: str, *, chat_id: int = CONSOLE_CHAT_ID, message_id: int = 0) -> None:
        """Send a button press carrying ``data`` (any string) for the message ``message_id``."""
        shown = self.printer.messages.get((chat_id, message_id))
        msg = self.session.message_json(chat_id, message_id, shown.text if shown else "",
                                         shown.markup if shown else None)
        query = {"id": f"console{next(self._update_ids)}", "chat_instance": "console", "data": data,
                 "from": {"id": CONSOLE_USER_ID, "is_bot": False, "first_name": "console"}, "message": msg}
        await self._feed({"update_id": next(self._update_ids), "callback_query": query})

    async def _feed(self, raw: dict[str, Any]) -> None:
        update = Update.model_validate(raw, context={"bot": self.bot})
        try:
            await self.dp.feed_update(self.bot, update, trusted_role="admin")
        except Exception:  # noqa: BLE001 - the prompt survives any handler failure
            log.exception("console chat: handling %r failed", raw)
            self.printer.emit("(that failed; see the log)")

    # -- the prompt ------------------------------------------------------------------
    def _read_stdin(self, loop: asyncio.AbstractEventLoop, stream: TextIO) -> None:
        for line in stream:
            loop.call_soon_threadsafe(self._queue.put_nowait, line)
        loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def run(self, stream: TextIO | None = None) -> None:
        """Read lines (from stdin in a daemon thread) until EOF or ``stop()``.

        Without a TTY (``interactive=False``) nothing is read; it idles until stopped.
        """
        if not self.interactive and stream is None:
            log.info("console chat: no terminal, replies go to the log")
            await self._stopping.wait()
            return
        loop = asyncio.get_running_loop()
        self._reader = threading.Thread(target=self._read_stdin, args=(loop, stream or sys.stdin),
                                        name="console-stdin", daemon=True)
        self._reader.start()
        self.printer.emit("tokenwatch console: type /help; a number presses a button; Ctrl-D or Ctrl-C stops "
                          "tokenwatch.")
        while not self._stopping.is_set():
            getter = asyncio.ensure_future(self._queue.get())
            stopper = asyncio.ensure_future(self._stopping.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for fut in (getter, stopper):
                if fut not in done:
                    fut.cancel()
            if getter not in done:
                break
            line = getter.result()
            if line is None:
                self._input_closed(from_stdin=stream is None)
                break
            await self.handle_line(line)

    def _input_closed(self, *, from_stdin: bool) -> None:
        """EOF (Ctrl-D): stop tokenwatch as Ctrl-C does, and say so.

        ``on_eof`` replaces the stop (tests); a stream other than stdin only ends the chat.
        """
        stop = self.on_eof or (interrupt_process if from_stdin else None)
        if stop is None:
            self.printer.emit("input closed: the console chat stops reading; tokenwatch goes on")
            return
        self.printer.emit("stdin closed: stopping")
        log.info("console chat: stdin closed (Ctrl-D), stopping")
        stop()

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        self.stop()
        await self.bot.session.close()


class ConsoleTransport:
    """The outbox ``Transport`` that prints to the console chat (buttons pressable there).

        outbox_sender = OutboxSender(..., transport=ConsoleTransport(chat))
    """

    def __init__(self, chat: ConsoleChat) -> None:
        self.chat = chat
        self.printer = chat.printer

    async def send_text(self, chat_id: int, text: str, *, reply_markup: dict | None = None,
                        parse_mode: str | None = "HTML") -> int:
        mid = self.printer.next_message_id()
        self.printer.show(chat_id, mid, text, parse_mode, _markup_json(reply_markup))
        return mid

    async def edit_text(self, chat_id: int, message_id: int, text: str, *, reply_markup: dict | None = None,
                        parse_mode: str | None = "HTML") -> int:
        from delivery.transport import NotModified

        markup = _markup_json(reply_markup)
        old = self.printer.messages.get((chat_id, message_id))
        if old is not None and old.text == text and old.markup == markup:
            raise NotModified(NOT_MODIFIED)
        self.printer.show(chat_id, message_id, text, parse_mode, markup, edited=True)
        return message_id

    async def edit_caption(self, chat_id: int, message_id: int, caption: str, *,
                           reply_markup: dict | None = None, parse_mode: str | None = "HTML") -> int:
        return await self.edit_text(chat_id, message_id, caption, reply_markup=reply_markup, parse_mode=parse_mode)

    async def send_photo(self, chat_id: int, photo: bytes, *, caption: str | None = None,
                         reply_markup: dict | None = None, parse_mode: str | None = "HTML") -> int:
        mid = self.printer.next_message_id()
        await self.printer.save_photo(chat_id, mid, photo, caption, parse_mode, _markup_json(reply_markup))
        return mid


def _markup_json(markup: dict | str | None) -> dict | None:
    if markup is None:
        return None
    if isinstance(markup, str):
        import json

        return json.loads(markup)
    if isinstance(markup, InlineKeyboardMarkup):
        return markup.model_dump(exclude_none=True)
    return markup
