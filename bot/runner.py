"""Runs the bot: long polling, a webhook, or (with no bot token) the console chat.

    runner = BotRunner(ctx)
    await runner.prepare()       # the bot, the command menu, the webhook server (webhook mode)
    supervisor.add_all(runner.loops())   # "bot.polling" or "bot.console" (none for a webhook)
    runner.transport()           # the outbox Transport for this mode (Telegram or console)
    await runner.stop()

    await runner.start()         # standalone (tests): prepare() + its loops on a supervisor of its own

Polling talks to ``TELEGRAM_API_BASE`` (``TelegramAPIServer.from_base``) and runs as a
supervised loop (``app.supervisor``): if it ends for any reason it is restarted with
``restart_backoff``, except when the Bot API refuses the token (401): that raises
``FatalLoopError``, the loop is marked failed and ``fatal_error`` says why (no retry storm).
Webhook mode (``TELEGRAM_WEBHOOK_URL`` set) serves ``POST <url path>`` on
``HTTP_HOST:TELEGRAM_WEBHOOK_PORT``; it needs ``TELEGRAM_WEBHOOK_SECRET`` (``start`` refuses
without one), a missing or wrong ``X-Telegram-Bot-Api-Secret-Token`` gets 401, malformed bodies 400.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any, Literal
from urllib.parse import urlparse

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from app.backoff import Backoff
from app.supervisor import FatalLoopError, LoopSpec, Supervisor
from bot.app import DEFAULT_PROPERTIES, build_dispatcher, set_commands
from bot.context import BotContext

log = logging.getLogger(__name__)

Mode = Literal["polling", "webhook", "console"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
POLLING_BACKOFF = Backoff(base_s=1.0, max_s=60.0)
POLLING_LOOP = "bot.polling"
CONSOLE_LOOP = "bot.console"
REFUSED_TOKEN = "the Bot API refused TELEGRAM_BOT_TOKEN (401); run: tokenwatch doctor"


class BotRunner:
    """Owns the Bot, the dispatcher and the background task of the chosen mode (see module doc)."""

    def __init__(self, ctx: BotContext, *, dispatcher: Dispatcher | None = None, polling_timeout: int = 10,
                 restart_backoff: Backoff = POLLING_BACKOFF, console_out: Any = None,
                 console_interactive: bool | None = None, webhook_port: int | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.dp = dispatcher or build_dispatcher(ctx)
        self.polling_timeout = polling_timeout
        self.restart_backoff = restart_backoff
        self.webhook_port = webhook_port if webhook_port is not None else self.settings.telegram_webhook_port
        self.bot: Bot | None = None
        self.console: Any = None
        self.supervisor: Supervisor | None = None  # only when start() runs the loops itself
        self.webhook_rejected = 0  # webhook requests refused (wrong secret, malformed body)
        self.fatal_error: str | None = None
        self._console_out = console_out
        self._console_interactive = console_interactive
        self._stopping = False
        self._web_runner: web.AppRunner | None = None
        self._pending: set[asyncio.Task] = set()
        self.bound_port: int | None = None

    @property
    def mode(self) -> Mode:
        if not self.settings.telegram_bot_token:
            return "console"
        return "webhook" if self.settings.telegram_webhook_url else "polling"

    def make_bot(self) -> Bot:
        session = AiohttpSession(api=TelegramAPIServer.from_base(self.settings.telegram_api_base))
        return Bot(self.settings.telegram_bot_token or "", session=session, default=DEFAULT_PROPERTIES)

    def transport(self) -> Any:
        """The outbox transport for this mode: ``BotTransport`` or ``ConsoleTransport``."""
        if self.mode == "console":
            from bot.console import ConsoleTransport

            if self.console is None:
                raise RuntimeError("start() the runner first")
            return ConsoleTransport(self.console)
        from delivery.transport import BotTransport

        if self.bot is None:
            self.bot = self.make_bot()
        return BotTransport(self.bot)

    async def start(self) -> None:
        """Standalone: ``prepare()`` and run this runner's loops on a supervisor of its own.
        In the service, ``build_bot`` calls ``prepare()`` and the service's supervisor runs ``loops()``."""
        await self.prepare()
        self.supervisor = Supervisor(self.ctx.clock)
        self.supervisor.add_all(self.loops())
        await self.supervisor.start()

    async def prepare(self) -> None:
        """Build what the mode needs (console chat, Bot, command menu; the webhook server starts here)."""
        self._stopping = False
        mode = self.mode
        if mode == "console":
            from bot.console import ConsoleChat

            self.console = ConsoleChat(self.ctx, self.dp, out=self._console_out,
                                       interactive=self._console_interactive)
            self.bot = self.console.bot
            log.info("no TELEGRAM_BOT_TOKEN: the console chat is on")
            return
        if mode == "webhook" and not self.settings.telegram_webhook_secret:
            # Without a secret anyone who learns the URL could post updates "from" an admin.
            raise RuntimeError("TELEGRAM_WEBHOOK_URL requires TELEGRAM_WEBHOOK_SECRET; webhook not started")
        if self.bot is None:
            self.bot = self.make_bot()
        try:
            await asyncio.wait_for(set_commands(self.bot, self.dp["registry"], self.settings), 10)
        except Exception as exc:  # noqa: BLE001 - the menu is cosmetic; never block start on it
            log.warning("could not publish the command menu: %s", exc)
        if mode == "webhook":
            await self._start_webhook()

    def loops(self) -> list[LoopSpec]:
        """This mode's supervised loop: Telegram polling or the console chat (a webhook has none)."""
        mode = self.mode
        if mode == "console":
            assert self.console is not None, "prepare() first"
            # Ctrl-D ends the console chat on purpose: it is not restarted.
            return [LoopSpec(CONSOLE_LOOP, self.console.run, stop=self._stop_console, restart_on_return=False)]
        if mode == "polling":
            return [LoopSpec(POLLING_LOOP, self.poll, stop=self._stop_polling, backoff=self.restart_backoff)]
        return []

    # -- polling -----------------------------------------------------------------------
    async def poll(self) -> None:
        """One polling session (the body of the ``bot.polling`` loop); a refused token is fatal."""
        assert self.bot is not None, "prepare() first"
        self._stopping = False  # polling may stop and start again (a process that stops and starts leading)
        try:
            await self.bot.delete_webhook(drop_pending_updates=False)
            if self._stopping:
                return
            await self.dp.start_polling(self.bot, handle_signals=False, close_bot_session=False,
                                        polling_timeout=self.polling_timeout)
        except TelegramUnauthorizedError as exc:
            self.fatal_error = REFUSED_TOKEN
            raise FatalLoopError(REFUSED_TOKEN) from exc

    async def _stop_polling(self) -> None:
        self._stopping = True
        try:
            await asyncio.wait_for(self.dp.stop_polling(), 5)
        except (RuntimeError, TimeoutError):
            pass  # not polling yet (still in delete_webhook): it returns on its own or is cancelled

    async def _stop_console(self) -> None:
        if self.console is not None:
            self.console.stop()

    # -- webhook -----------------------------------------------------------------------
    async def _start_webhook(self) -> None:
        assert self.bot is not None
        url = self.settings.telegram_webhook_url or ""
        path = urlparse(url).path or "/telegram"
        app = web.Application()
        app.router.add_post(path, self.handle_webhook)
        self._web_runner = web.AppRunner(app, access_log=None)
        await self._web_runner.setup()
        site = web.TCPSite(self._web_runner, self.settings.http_host, self.webhook_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)  # noqa: SLF001 - the only way to learn an ephemeral port
        if sockets:
            self.bound_port = sockets[0].getsockname()[1]
        try:
            await self.bot.set_webhook(url, secret_token=self.settings.telegram_webhook_secret,
                                       allowed_updates=self.dp.resolve_used_update_types())
        except TelegramAPIError as exc:
            log.error("setWebhook failed: %s (updates will not arrive until fixed)", exc.message)
        log.info("webhook listening on %s:%s%s", self.settings.http_host, self.bound_port, path)

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """aiohttp handler: check the secret, parse the update, handle it in the background."""
        secret = self.settings.telegram_webhook_secret
        if not secret or not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), secret.encode()):
            self.webhook_rejected += 1
            log.warning("webhook request with a wrong secret token from %s", request.remote)
            return web.Response(status=401, text="Unauthorized")
        try:
            update = Update.model_validate(await request.json(), context={"bot": self.bot})
        except (ValueError, ValidationError) as exc:
            self.webhook_rejected += 1
            log.warning("malformed webhook body: %s", str(exc)[:200])
            return web.Response(status=400, text="Bad Request")
        task = asyncio.create_task(self.dp.feed_update(self.bot, update))  # type: ignore[arg-type]
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return web.json_response({})

    # -- stop --------------------------------------------------------------------------
    async def stop(self) -> None:
        """Stop the loops this runner started itself (``start()``), the webhook server and the bot."""
        self._stopping = True
        if self.supervisor is not None:
            await self.supervisor.stop()
            self.supervisor = None
        if self.console is not None:
            self.console.stop()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._web_runner is not None:
            await self._web_runner.cleanup()
            self._web_runner = None
        if self.bot is not None:
            await self.bot.session.close()
