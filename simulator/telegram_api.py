"""A fake Telegram Bot API server on loopback, for tests and benchmarks.

The REAL aiogram client talks to it over HTTP exactly as it would to
api.telegram.org; nothing leaves the machine::

    fake = FakeTelegram()                       # enforce_limits=True: 429s like Telegram
    await fake.start()
    fake.add_bot("123456:TEST", "tokenwatch_bot")
    fake.add_chat(42, type="private")
    bot = Bot("123456:TEST",
              session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)),
              default=DefaultBotProperties(parse_mode="HTML"))
    await bot.send_message(42, "<b>hi</b>")
    assert fake.sent(42)[0].text == "<b>hi</b>"
    fake.user_sends(42, 42, "/status")          # an update for the bot's poller
    await fake.stop()

Implemented methods: getMe, getUpdates (long polling, offset/limit/timeout/allowed_updates,
409 when a second poller cuts in), deleteWebhook, setMyCommands, getMyCommands,
deleteMyCommands, sendMessage, editMessageText, editMessageCaption, editMessageReplyMarkup, answerCallbackQuery,
sendPhoto, sendDocument, getChat, deleteMessage. HTML is judged by ``simulator.telegram_html``,
written from Telegram's documented rules and sharing no code with the project's renderer
(400 "can't parse entities: ..."); text is limited to 4096 UTF-16 units after parsing,
captions to 1024. Errors have Telegram's shape
``{"ok": false, "error_code": N, "description": "...", "parameters": {"retry_after": S}}``;
every error answer is kept in ``fake.refusals`` (``Refusal``: method, status, description,
chat, text, and whether a test injected it), so a test can assert Telegram accepted everything.

Limits (``enforce_limits=True``): ~30 sends/s overall (bucket of 30), 1 send/s per chat with
a burst of 3, 20 sends per rolling minute per group (negative chat id). Sends and text edits
count. Exceeding one answers 429 with ``retry_after`` and counts ``stats.provoked_429``.

Faults for tests: ``fail_next(n, status=500)``, ``force_429(retry_after, count)``,
``set_outage(True)`` (every call answers 502, or with ``mode="drop"`` the connection is cut),
``block_bot(chat_id)`` (403 Forbidden from then on), ``migrate_chat(old, new)`` (400 with
``migrate_to_chat_id``, as for a group upgraded to a supergroup). Malformed parameters answer
400; an unexpected failure answers a Telegram-shaped 500, never a bare HTML error page.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from app.clock import SYSTEM_CLOCK, Clock
from simulator.telegram_html import check_message, utf16_units, visible_text

log = logging.getLogger(__name__)

LIMITED_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument", "editmessagetext", "editmessagecaption"})
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message")


class ApiError(Exception):
    """An error answer of the fake API (raised inside handlers, rendered as Telegram JSON)."""

    def __init__(self, code: int, description: str, retry_after: int | None = None,
                 migrate_to_chat_id: int | None = None, *, injected: bool = False) -> None:
        super().__init__(description)
        self.injected = injected
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def response(self) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        if self.migrate_to_chat_id is not None:
            body["parameters"] = {"migrate_to_chat_id": self.migrate_to_chat_id}
        return web.json_response(body, status=self.code)


@dataclass
class Refusal:
    """One error answer of the fake server: what was asked and what it answered.

    ``injected`` is True for faults a test asked for (``fail_next``, ``force_429``,
    ``set_outage``); the others are the server's own judgement (bad HTML, too long, 429 by
    the flood limits, unknown chat, ...)."""

    method: str
    status: int
    description: str
    chat_id: str | None
    text: str | None
    injected: bool


@dataclass
class Edit:
    """One accepted edit of a sent message."""

    text: str | None
    reply_markup: dict | None
    received_at: float
    caption: str | None = None


@dataclass
class SentMessage:
    """What the bot put into a chat, as the fake server recorded it."""

    message_id: int
    chat_id: int
    text: str | None
    parse_mode: str | None
    reply_markup: dict | None
    received_at: float  # server clock.monotonic() when the request arrived
    photo: bytes | None = None
    document: bytes | None = None
    caption: str | None = None
    edits: list[Edit] = field(default_factory=list)
    callback_answers: list[dict] = field(default_factory=list)
    deleted: bool = False

    @property
    def plain(self) -> str:
        """The visible text (or caption), tags removed and entities decoded."""
        raw = self.text if self.text is not None else (self.caption or "")
        return visible_text(raw, self.parse_mode)


@dataclass
class ChatInfo:
    id: int
    type: str
    title: str | None
    members: set[int]
    blocked: bool = False
    migrated_to: int | None = None


@dataclass
class BotInfo:
    token: str
    id: int
    username: str
    first_name: str
    updates: list[dict] = field(default_factory=list)
    next_update_id: int = 1
    allowed_updates: list[str] = field(default_factory=list)
    commands: dict[str, list[dict]] = field(default_factory=dict)
    poller: asyncio.Future | None = None


@dataclass
class FakeStats:
    requests: int = 0
    provoked_429: int = 0
    forced_429: int = 0
    injected_failures: int = 0
    outage_refusals: int = 0
    by_method: dict[str, int] = field(default_factory=dict)


class _Bucket:
    """Token bucket on a monotonic clock."""

    def __init__(self, capacity: float, rate_per_s: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate_per_s
        self.tokens = capacity
        self.at = now

    def wait(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


class _Window:
    """At most ``count`` events per rolling ``span`` seconds."""

    def __init__(self, count: int, span: float) -> None:
        self.count = count
        self.span = span
        self.times: deque[float] = deque()

    def wait(self, now: float) -> float:
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()
        return 0.0 if len(self.times) < self.count else self.times[0] + self.span - now

    def take(self, now: float) -> None:
        self.times.append(now)


class TelegramLimits:
    """Telegram's documented flood limits, as the fake server enforces them."""

    def __init__(self, clock: Clock, *, global_per_s: float = 30.0, chat_per_s: float = 1.0,
                 chat_burst: int = 3, group_per_min: int = 20) -> None:
        self.clock = clock
        self.global_per_s = global_per_s
        self.chat_per_s = chat_per_s
        self.chat_burst = chat_burst
        self.group_per_min = group_per_min
        self._global = _Bucket(global_per_s, global_per_s, clock.monotonic())
        self._chats: dict[int, _Bucket] = {}
        self._groups: dict[int, _Window] = {}

    def check(self, chat_id: int) -> float:
        """Seconds until a message to ``chat_id`` is allowed; 0 means allowed (and counted)."""
        now = self.clock.monotonic()
        chat = self._chats.setdefault(chat_id, _Bucket(self.chat_burst, self.chat_per_s, now))
        waits = [self._global.wait(now), chat.wait(now)]
        group = None
        if chat_id < 0:
            group = self._groups.setdefault(chat_id, _Window(self.group_per_min, 60.0))
            waits.append(group.wait(now))
        wait = max(waits)
        if wait > 0:
            return wait
        self._global.take()
        chat.take()
        if group is not None:
            group.take(now)
        return 0.0


class FakeTelegram:
    """The fake Bot API server plus the test-driver API (see the module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, enforce_limits: bool = True,
                 clock: Clock | None = None, *, chat_burst: int = 3) -> None:
        self.host = host
        self.port = port
        self.enforce_limits = enforce_limits
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.limits = TelegramLimits(self.clock, chat_burst=chat_burst)
        self.stats = FakeStats()
        self.callback_answers: list[dict] = []
        self.incoming: list[dict] = []  # messages users sent (as Telegram Message dicts)
        self.refusals: list[Refusal] = []  # every error answer, oldest first
        self._bots: dict[str, BotInfo] = {}
        self._chats: dict[int, ChatInfo] = {}
        self._messages: dict[int, dict[int, SentMessage]] = {}
        self._next_message_id: dict[int, int] = {}
        self._callbacks: dict[str, tuple[BotInfo, int, int, bool]] = {}
        self._callback_ids = itertools.count(1)
        self._fail_next: list[tuple[int, str, frozenset[str] | None]] = []
        self._force_429: list[tuple[int, frozenset[str] | None]] = []
        self._outage: str | None = None
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://host:port``; give it to ``TelegramAPIServer.from_base``."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # noqa: SLF001 - the only way to learn an ephemeral port
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.debug("fake Telegram listening on %s", self.base_url)

    async def stop(self) -> None:
        for bot in self._bots.values():
            if bot.poller is not None and not bot.poller.done():
                bot.poller.set_result("stopped")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeTelegram":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test driver: setup

    def add_bot(self, token: str, username: str = "test_bot", first_name: str = "Test Bot") -> None:
        """Register a bot token; requests with any other token answer 401 Unauthorized."""
        head = token.split(":", 1)[0]
        self._bots[token] = BotInfo(token=token, id=int(head) if head.isdigit() else 1,
                                    username=username, first_name=first_name)

    def add_chat(self, chat_id: int, type: str = "private", title: str | None = None,  # noqa: A002
                 members: Iterable[int] = ()) -> None:
        """Make a chat known (sending to an unknown chat answers 400 "chat not found")."""
        if type not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"unknown chat type {type!r}")
        ids = set(members)
        if type == "private":
            ids.add(chat_id)
        self._chats[chat_id] = ChatInfo(chat_id, type, title, ids)

    def block_bot(self, chat_id: int, blocked: bool = True) -> None:
        """From now on the chat answers 403 Forbidden (the user blocked / kicked the bot)."""
        self._chat(chat_id).blocked = blocked

    def migrate_chat(self, chat_id: int, new_chat_id: int) -> None:
        """The group ``chat_id`` is upgraded to the supergroup ``new_chat_id`` (same members): from
        now on writing to the old id answers 400 with ``parameters.migrate_to_chat_id``."""
        old = self._chat(chat_id)
        if new_chat_id not in self._chats:
            self.add_chat(new_chat_id, "supergroup", title=old.title, members=old.members)
        old.migrated_to = new_chat_id

    # ------------------------------------------------------------------ test driver: users act

    def user_sends(self, chat_id: int, user_id: int, text: str, *, token: str | None = None,
                   as_caption: bool = False):
        """Queue a message from ``user_id`` in ``chat_id`` for the bot's getUpdates; returns the Update.

        ``/command`` text gets a ``bot_command`` entity as Telegram would add. With
        ``as_caption=True`` the user sends a photo captioned ``text`` instead.
        """
        from aiogram.types import Update

        bot = self._pick_bot(token)
        chat = self._ensure_chat(chat_id)
        chat.members.add(user_id)
        message: dict[str, Any] = {
            "message_id": self._new_message_id(chat_id),
            "date": int(self.clock.time()),
            "chat": self._chat_json(chat),
            "from": self._user_json(user_id),
        }
        if as_caption:
            message["photo"] = [{"file_id": f"userphoto{message['message_id']}", "file_unique_id": "up",
                                 "width": 64, "height": 64}]
        message["caption" if as_caption else "text"] = text
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            entities = [{"type": "bot_command", "offset": 0, "length": utf16_units(command)}]
            message["caption_entities" if as_caption else "entities"] = entities
        self.incoming.append(message)
        update = self._queue_update(bot, "message", message)
        return Update.model_validate(update)

    def user_presses(self, chat_id: int, user_id: int, message_id: int, data: str, *,
                     token: str | None = None) -> str:
        """Queue a callback_query for an inline button on a bot message; returns the query id."""
        bot = self._pick_bot(token)
        msg = self._find_message(chat_id, message_id)
        if msg is None:
            raise KeyError(f"no bot message {message_id} in chat {chat_id}")
        query_id = f"cbq{next(self._callback_ids)}"
        self._callbacks[query_id] = (bot, chat_id, message_id, False)
        query = {
            "id": query_id,
            "from": self._user_json(user_id),
            "message": self._message_json(bot, msg),
            "chat_instance": f"ci{chat_id}",
            "data": data,
        }
        self._queue_update(bot, "callback_query", query)
        return query_id

    # ------------------------------------------------------------------ test driver: inspect

    def sent(self, chat_id: int, *, include_deleted: bool = True) -> list[SentMessage]:
        """Messages the bot sent to ``chat_id``, oldest first."""
        msgs = sorted(self._messages.get(chat_id, {}).values(), key=lambda m: m.message_id)
        return [m for m in msgs if include_deleted or not m.deleted]

    def all_sent(self) -> list[SentMessage]:
        """Every message the bot sent, in server receive order."""
        msgs = [m for chat in self._messages.values() for m in chat.values()]
        return sorted(msgs, key=lambda m: (m.received_at, m.message_id))

    def commands(self, token: str | None = None, scope: str = "default") -> list[dict]:
        return list(self._pick_bot(token).commands.get(scope, []))

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every server event); return its value.

        Raises ``TimeoutError`` when it is still falsy after ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))
            except asyncio.TimeoutError:
                pass

    # ------------------------------------------------------------------ test driver: faults

    def fail_next(self, n: int, status: int = 500, description: str | None = None,
                  methods: Iterable[str] | None = None) -> None:
        """The next ``n`` calls (any method but getUpdates, or only ``methods``) answer ``status``."""
        text = description or ("Internal Server Error" if status >= 500 else "Bad Request: injected failure")
        only = frozenset(m.lower() for m in methods) if methods else None
        self._fail_next.extend([(status, text, only)] * n)

    def force_429(self, retry_after: int = 1, count: int = 1, methods: Iterable[str] | None = None) -> None:
        """The next ``count`` calls (not getUpdates) answer 429 with ``retry_after``."""
        only = frozenset(m.lower() for m in methods) if methods else None
        self._force_429.extend([(max(1, int(retry_after)), only)] * count)

    def set_outage(self, on: bool, mode: str = "502") -> None:
        """Telegram unreachable: every call answers 502 Bad Gateway, or (``mode="drop"``) the
        connection is cut without an answer. ``set_outage(False)`` ends it."""
        if mode not in ("502", "drop"):
            raise ValueError("mode is '502' or 'drop'")
        self._outage = mode if on else None

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"].lower()
        token = request.match_info["token"]
        self.stats.requests += 1
        self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
        received_at = self.clock.monotonic()
        params: dict[str, Any] = {}
        try:
            if self._outage is not None:
                self.stats.outage_refusals += 1
                if self._outage == "drop" and request.transport is not None:
                    request.transport.abort()
                    return web.Response(status=502)
                raise ApiError(502, "Bad Gateway", injected=True)
            bot = self._bots.get(token)
            if bot is None:
                raise ApiError(401, "Unauthorized")
            params = await self._read_params(request)
            self._injected_fault(method)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(bot, params, received_at)
            return web.json_response({"ok": True, "result": result})
        except ApiError as exc:
            text = params.get("text", params.get("caption"))
            chat_id = params.get("chat_id")
            self.refusals.append(Refusal(
                method=method, status=exc.code, description=exc.description,
                chat_id=None if chat_id is None else str(chat_id),
                text=text if isinstance(text, str) else None, injected=exc.injected))
            return exc.response()
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer like Telegram does
            log.exception("fake Telegram: %s failed", method)
            return ApiError(500, f"Internal Server Error: {type(exc).__name__}").response()
        finally:
            self._changed.set()

    def _injected_fault(self, method: str) -> None:
        if method == "getupdates":
            return
        for i, (status, text, only) in enumerate(self._fail_next):
            if only is None or method in only:
                del self._fail_next[i]
                self.stats.injected_failures += 1
                raise ApiError(status, text, injected=True)
        for i, (retry_after, only) in enumerate(self._force_429):
            if only is None or method in only:
                del self._force_429[i]
                self.stats.forced_429 += 1
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after, injected=True)

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "Bad Request: can't parse JSON body") from None
            if isinstance(body, dict):
                params.update(body)
            return params
        if request.can_read_body:
            try:
                form = await request.post()
            except UnicodeDecodeError:
                raise ApiError(400, "Bad Request: strings must be encoded in UTF-8") from None
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = await asyncio.to_thread(value.file.read)  # never block the loop
                else:
                    params[key] = value
        return params

    # ------------------------------------------------------------------ param helpers

    @staticmethod
    def _int(params: dict[str, Any], name: str, default: int | None = None, required: bool = False) -> int | None:
        raw = params.get(name)
        if raw is None or raw == "":
            if required:
                raise ApiError(400, f"Bad Request: {name} is empty")
            return default
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    @classmethod
    def _required_int(cls, params: dict[str, Any], name: str) -> int:
        value = cls._int(params, name, required=True)
        assert value is not None  # _int raised "<name> is empty" otherwise
        return value

    @staticmethod
    def _json(params: dict[str, Any], name: str) -> Any:
        raw = params.get(name)
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            return raw
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None

    @staticmethod
    def _str(params: dict[str, Any], name: str) -> str | None:
        raw = params.get(name)
        if raw is None:
            return None
        if isinstance(raw, bytes):
            return raw.decode("utf-8", "replace")
        return str(raw)

    def _chat(self, chat_id: int) -> ChatInfo:
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _ensure_chat(self, chat_id: int) -> ChatInfo:
        if chat_id not in self._chats:
            if chat_id <= 0:
                raise KeyError(f"unknown group chat {chat_id}: add_chat() it first")
            self.add_chat(chat_id, "private")
        return self._chats[chat_id]

    def _writable_chat(self, params: dict[str, Any]) -> ChatInfo:
        chat_id = self._required_int(params, "chat_id")
        chat = self._chat(chat_id)
        if chat.migrated_to is not None:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           migrate_to_chat_id=chat.migrated_to)
        if chat.blocked:
            if chat.type == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, "Forbidden: bot was kicked from the group chat")
        return chat

    @staticmethod
    def _check_text(text: str | None, parse_mode: str | None, *, caption: bool = False) -> None:
        """Refuse what Telegram refuses (``simulator.telegram_html``, written from Telegram's documented
        rules, never the project's own renderer): bad HTML, over-long or empty text."""
        refusal = check_message(text, parse_mode, caption=caption)
        if refusal is not None:
            raise ApiError(refusal.status, refusal.description)

    def _check_markup(self, markup: Any) -> None:
        if markup is None:
            return
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ApiError(400, "Bad Request: can't parse inline keyboard button: field \"inline_keyboard\" "
                                "must be an Array of Arrays")
        for row in rows:
            for button in row:
                if not isinstance(button, dict):
                    raise ApiError(400, "Bad Request: can't parse inline keyboard button: "
                                        "InlineKeyboardButton must be an Object")
                data = button.get("callback_data")
                if data is not None and not (1 <= len(str(data).encode("utf-8")) <= 64):
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")

    def _rate_limit(self, method: str, chat_id: int) -> None:
        if not self.enforce_limits or method not in LIMITED_METHODS:
            return
        wait = self.limits.check(chat_id)
        if wait > 0:
            self.stats.provoked_429 += 1
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    # ------------------------------------------------------------------ JSON shapes

    def _user_json(self, user_id: int) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "username": f"user{user_id}"}

    def _bot_json(self, bot: BotInfo) -> dict[str, Any]:
        return {"id": bot.id, "is_bot": True, "first_name": bot.first_name, "username": bot.username}

    @staticmethod
    def _chat_json(chat: ChatInfo) -> dict[str, Any]:
        data: dict[str, Any] = {"id": chat.id, "type": chat.type}
        if chat.type == "private":
            data["first_name"] = chat.title or f"User{chat.id}"
        else:
            data["title"] = chat.title or f"Group {chat.id}"
        return data

    def _message_json(self, bot: BotInfo, msg: SentMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": msg.message_id,
            "date": int(self.clock.time()),
            "chat": self._chat_json(self._chats[msg.chat_id]),
            "from": self._bot_json(bot),
        }
        if msg.edits:
            data["edit_date"] = int(self.clock.time())
        shown = lambda raw: visible_text(raw, msg.parse_mode)  # noqa: E731
        if msg.photo is not None:
            data["photo"] = [{"file_id": f"photo{msg.chat_id}_{msg.message_id}",
                              "file_unique_id": f"p{msg.message_id}", "width": 640, "height": 480,
                              "file_size": len(msg.photo)}]
        if msg.document is not None:
            data["document"] = {"file_id": f"doc{msg.chat_id}_{msg.message_id}",
                                "file_unique_id": f"d{msg.message_id}", "file_size": len(msg.document)}
        if msg.text is not None:
            data["text"] = shown(msg.text)
        if msg.caption:
            data["caption"] = shown(msg.caption)
        if msg.reply_markup:
            data["reply_markup"] = msg.reply_markup
        return data

    # ------------------------------------------------------------------ state helpers

    def _new_message_id(self, chat_id: int) -> int:
        value = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = value + 1
        return value

    def _find_message(self, chat_id: int, message_id: int) -> SentMessage | None:
        return self._messages.get(chat_id, {}).get(message_id)

    def _pick_bot(self, token: str | None) -> BotInfo:
        if token is not None:
            return self._bots[token]
        if not self._bots:
            raise RuntimeError("no bot registered: call add_bot(token, username) first")
        return next(iter(self._bots.values()))

    def _queue_update(self, bot: BotInfo, kind: str, payload: dict) -> dict:
        update = {"update_id": bot.next_update_id, kind: payload}
        bot.next_update_id += 1
        bot.updates.append(update)
        if bot.poller is not None and not bot.poller.done():
            bot.poller.set_result("update")
        self._changed.set()
        return update

    def _record(self, chat: ChatInfo, received_at: float, **fields: Any) -> SentMessage:
        msg = SentMessage(message_id=self._new_message_id(chat.id), chat_id=chat.id,
                          received_at=received_at, **fields)
        self._messages.setdefault(chat.id, {})[msg.message_id] = msg
        return msg

    def _editable(self, params: dict[str, Any]) -> SentMessage:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages are not supported by the fake server")
        chat = self._writable_chat(params)
        message_id = self._required_int(params, "message_id")
        msg = self._find_message(chat.id, message_id)
        if msg is None or msg.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        return msg

    # ------------------------------------------------------------------ methods

    async def _m_getme(self, bot: BotInfo, params: dict, at: float) -> dict:
        return {**self._bot_json(bot), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    async def _m_logout(self, bot: BotInfo, params: dict, at: float) -> bool:
        return True

    async def _m_close(self, bot: BotInfo, params: dict, at: float) -> bool:
        return True

    async def _m_deletewebhook(self, bot: BotInfo, params: dict, at: float) -> bool:
        if params.get("drop_pending_updates") in ("true", "True", True, "1"):
            bot.updates.clear()
        return True

    async def _m_getwebhookinfo(self, bot: BotInfo, params: dict, at: float) -> dict:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(bot.updates)}

    async def _m_getupdates(self, bot: BotInfo, params: dict, at: float) -> list[dict]:
        offset = self._int(params, "offset", 0) or 0
        limit = min(max(self._int(params, "limit", 100) or 100, 1), 100)
        timeout = max(0, self._int(params, "timeout", 0) or 0)
        allowed = self._json(params, "allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(a) for a in allowed]
        if offset:
            bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
        if bot.poller is not None and not bot.poller.done():
            bot.poller.set_result("conflict")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ready = [u for u in bot.updates if self._update_allowed(bot, u)]
            if ready or loop.time() >= deadline:
                return ready[:limit]
            waiter: asyncio.Future = loop.create_future()
            bot.poller = waiter
            try:
                reason = await asyncio.wait_for(asyncio.shield(waiter), deadline - loop.time())
            except asyncio.TimeoutError:
                reason = "timeout"
            finally:
                if bot.poller is waiter:
                    bot.poller = None
            if reason == "conflict":
                raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure that "
                                    "only one bot instance is running")
            if reason == "stopped":
                return []

    @staticmethod
    def _update_allowed(bot: BotInfo, update: dict) -> bool:
        if not bot.allowed_updates:
            return "chat_member" not in update and "message_reaction" not in update
        return any(kind in update for kind in bot.allowed_updates)

    async def _m_setmycommands(self, bot: BotInfo, params: dict, at: float) -> bool:
        commands = self._json(params, "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100 BotCommand")
        for cmd in commands:
            name = str(cmd.get("command", "")) if isinstance(cmd, dict) else ""
            if not (1 <= len(name) <= 32) or not all(c.islower() or c.isdigit() or c == "_" for c in name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not (1 <= len(str(cmd.get("description", ""))) <= 256):
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        bot.commands[self._scope_key(params)] = commands
        return True

    async def _m_getmycommands(self, bot: BotInfo, params: dict, at: float) -> list[dict]:
        return bot.commands.get(self._scope_key(params), [])

    async def _m_deletemycommands(self, bot: BotInfo, params: dict, at: float) -> bool:
        bot.commands.pop(self._scope_key(params), None)
        return True

    def _scope_key(self, params: dict) -> str:
        scope = self._json(params, "scope")
        if scope is not None and not isinstance(scope, dict):
            raise ApiError(400, "Bad Request: can't parse BotCommandScope: an Object expected")
        if not scope or scope.get("type") == "default":
            base = "default"
        else:
            base = json.dumps(scope, sort_keys=True)
        lang = params.get("language_code")
        return f"{base}|{lang}" if lang else base

    async def _m_sendmessage(self, bot: BotInfo, params: dict, at: float) -> dict:
        chat = self._writable_chat(params)
        text = self._str(params, "text")
        parse_mode = self._str(params, "parse_mode") or None
        markup = self._json(params, "reply_markup")
        self._check_text(text, parse_mode)
        self._check_markup(markup)
        self._rate_limit("sendmessage", chat.id)
        msg = self._record(chat, at, text=text, parse_mode=parse_mode, reply_markup=markup)
        return self._message_json(bot, msg)

    async def _media(self, bot: BotInfo, params: dict, at: float, kind: str) -> dict:
        chat = self._writable_chat(params)
        raw = params.get(kind)
        if isinstance(raw, str) and raw.startswith("attach://"):
            raw = params.get(raw[len("attach://"):])
            if raw is None:
                raise ApiError(400, f"Bad Request: {kind} attachment not found in the request")
        if raw is None or raw == "":
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        content = raw if isinstance(raw, bytes) else str(raw).encode()
        caption = self._str(params, "caption")
        parse_mode = self._str(params, "parse_mode") or None
        markup = self._json(params, "reply_markup")
        self._check_text(caption, parse_mode, caption=True)
        self._check_markup(markup)
        self._rate_limit(f"send{kind}", chat.id)
        media = {"photo": content} if kind == "photo" else {"document": content}
        msg = self._record(chat, at, text=None, caption=caption, parse_mode=parse_mode,
                           reply_markup=markup, **media)
        return self._message_json(bot, msg)

    async def _m_sendphoto(self, bot: BotInfo, params: dict, at: float) -> dict:
        return await self._media(bot, params, at, "photo")

    async def _m_senddocument(self, bot: BotInfo, params: dict, at: float) -> dict:
        return await self._media(bot, params, at, "document")

    async def _m_editmessagetext(self, bot: BotInfo, params: dict, at: float) -> dict:
        msg = self._editable(params)
        if msg.text is None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text = self._str(params, "text")
        parse_mode = self._str(params, "parse_mode") or None
        markup = self._json(params, "reply_markup")
        self._check_text(text, parse_mode)
        self._check_markup(markup)
        if text == msg.text and parse_mode == msg.parse_mode and markup == msg.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        self._rate_limit("editmessagetext", msg.chat_id)
        msg.text, msg.parse_mode, msg.reply_markup = text, parse_mode, markup
        msg.edits.append(Edit(text=text, reply_markup=markup, received_at=at))
        return self._message_json(bot, msg)

    async def _m_editmessagecaption(self, bot: BotInfo, params: dict, at: float) -> dict:
        msg = self._editable(params)
        if msg.photo is None and msg.document is None:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption = self._str(params, "caption")
        parse_mode = self._str(params, "parse_mode") or None
        markup = self._json(params, "reply_markup")
        self._check_text(caption, parse_mode, caption=True)
        self._check_markup(markup)
        if (caption or None) == (msg.caption or None) and parse_mode == msg.parse_mode \
                and markup == msg.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        self._rate_limit("editmessagecaption", msg.chat_id)
        msg.caption, msg.parse_mode, msg.reply_markup = caption, parse_mode, markup
        msg.edits.append(Edit(text=None, reply_markup=markup, received_at=at, caption=caption))
        return self._message_json(bot, msg)

    async def _m_editmessagereplymarkup(self, bot: BotInfo, params: dict, at: float) -> dict:
        msg = self._editable(params)
        markup = self._json(params, "reply_markup")
        self._check_markup(markup)
        if markup == msg.reply_markup or (not markup and not msg.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        msg.reply_markup = markup
        msg.edits.append(Edit(text=None, reply_markup=markup, received_at=at))
        return self._message_json(bot, msg)

    async def _m_answercallbackquery(self, bot: BotInfo, params: dict, at: float) -> bool:
        query_id = self._str(params, "callback_query_id") or ""
        entry = self._callbacks.get(query_id)
        if entry is None or entry[3]:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        _bot, chat_id, message_id, _ = entry
        self._callbacks[query_id] = (_bot, chat_id, message_id, True)
        answer = {
            "callback_query_id": query_id,
            "chat_id": chat_id,
            "message_id": message_id,
            "text": self._str(params, "text"),
            "show_alert": params.get("show_alert") in ("true", "True", True, "1"),
            "received_at": at,
        }
        self.callback_answers.append(answer)
        msg = self._find_message(chat_id, message_id)
        if msg is not None:
            msg.callback_answers.append(answer)
        return True

    async def _m_getchat(self, bot: BotInfo, params: dict, at: float) -> dict:
        chat = self._chat(self._required_int(params, "chat_id"))
        return {**self._chat_json(chat), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                                        "premium_subscription": False, "gifts_from_channels": False}}

    async def _m_getchatmember(self, bot: BotInfo, params: dict, at: float) -> dict:
        chat = self._chat(self._required_int(params, "chat_id"))
        user_id = self._required_int(params, "user_id")
        status = "member" if user_id in chat.members else "left"
        return {"status": status, "user": self._user_json(user_id)}

    async def _m_deletemessage(self, bot: BotInfo, params: dict, at: float) -> bool:
        chat = self._writable_chat(params)
        msg = self._find_message(chat.id, self._required_int(params, "message_id"))
        if msg is None or msg.deleted:
            raise ApiError(400, "Bad Request: message to delete not found")
        msg.deleted = True
        return True
