"""``tokenwatch doctor``: check a deployment's configuration and print a checklist.

Each check has its own timeout and reports what is wrong and how to fix it::

    results = await run_doctor(settings)
    print(render_text(results))            # the CLI; exit code 1 if anything failed
    await doctor_main(settings)            # -> 0 or 1

Checks: settings, database reachable and migrated, Redis (listed as "not configured" when
REDIS_URL is unset),
the bot token (``getMe``), each configured chat (a test message, or ``getChat``
when ``send_test_messages=False`` as /ping does), and with MARKET=live the market
APIs (DexScreener HTTP, PumpPortal websocket). /ping renders the same list.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)

from app.db import Database
from app.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
TEST_MESSAGE = "🩺 tokenwatch doctor: this is a test message to check that alerts reach this chat. No action needed."


@dataclass(frozen=True)
class CheckResult:
    """One line of the checklist.

        CheckResult("redis", ok=False, detail="connection refused", fix="start Redis or unset REDIS_URL")
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _fail(name: str, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(name, False, detail, fix)


async def _timed(name: str, timeout_s: float, check: Callable[[], Awaitable[CheckResult | list[CheckResult]]],
                 fix: str = "") -> list[CheckResult]:
    try:
        result = await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        return [_fail(name, f"no answer within {timeout_s:g}s", fix or "check that it is running and reachable")]
    except Exception as exc:  # noqa: BLE001 - a check never crashes the doctor
        log.debug("check %s failed", name, exc_info=True)
        return [_fail(name, f"{type(exc).__name__}: {exc}"[:300], fix)]
    return result if isinstance(result, list) else [result]


# --------------------------------------------------------------------------- individual checks


def check_settings(settings: Settings) -> CheckResult:
    problems: list[str] = []
    fixes: list[str] = []
    if settings.telegram_bot_token:
        if not settings.telegram_admin_ids:
            problems.append("no TELEGRAM_ADMIN_IDS: nobody can act on alerts")
            fixes.append("set TELEGRAM_ADMIN_IDS to your numeric Telegram user id(s)")
        if settings.telegram_alert_chat_id is None:
            problems.append("no TELEGRAM_ALERT_CHAT_ID: alerts have nowhere to go")
            fixes.append("set TELEGRAM_ALERT_CHAT_ID to the alert group's id")
    if settings.telegram_webhook_url and not settings.telegram_webhook_secret:
        problems.append("TELEGRAM_WEBHOOK_URL without TELEGRAM_WEBHOOK_SECRET: anyone could post updates")
        fixes.append("set TELEGRAM_WEBHOOK_SECRET to a random string (A-Z, a-z, 0-9, _ and -)")
    if problems:
        return _fail("settings", "; ".join(problems), "; ".join(fixes))
    mode = "Telegram" if settings.telegram_bot_token else "console chat (no TELEGRAM_BOT_TOKEN)"
    db = "SQLite" if settings.is_sqlite else "PostgreSQL"
    return CheckResult("settings", True, f"valid: market={settings.market}, database={db}, chat={mode}")


async def check_database(settings: Settings, db: Database | None = None) -> CheckResult:
    from alembic.runtime.migration import MigrationContext

    from app.migrate import current_heads

    own = db is None
    database = db or Database.from_settings(settings)
    try:
        try:
            async with database.engine.connect() as conn:
                current = await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        except Exception as exc:  # noqa: BLE001
            return _fail("database", f"unreachable: {type(exc).__name__}: {exc}"[:300],
                         "check DATABASE_URL and that the database server is running")
        heads = await asyncio.to_thread(current_heads, settings.database_url)
        if current is None:
            return _fail("database", "reachable but not migrated (no schema)", "run: tokenwatch migrate")
        if current not in heads:
            return _fail("database", f"schema at {current}, code expects {', '.join(heads)}",
                         "run: tokenwatch migrate")
        return CheckResult("database", True, f"reachable, migrated ({current})")
    finally:
        if own:
            await database.dispose()


REDIS_NOT_CONFIGURED = CheckResult("redis", True, "not configured (REDIS_URL is unset): running without it")


async def check_redis(settings: Settings, client: Any = None) -> CheckResult:
    """Ping ``client``, or a connection of the doctor's own to ``REDIS_URL`` (none configured: a passing line)."""
    import redis.asyncio as aioredis

    own = client is None
    if client is not None:
        redis_client = client
    elif settings.redis_url:
        redis_client = aioredis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    else:
        return REDIS_NOT_CONFIGURED
    try:
        await redis_client.ping()
        return CheckResult("redis", True, "reachable")
    except Exception as exc:  # noqa: BLE001
        return _fail("redis", f"unreachable: {type(exc).__name__}: {exc}"[:300],
                     "start Redis, check REDIS_URL, or unset REDIS_URL to run without it")
    finally:
        if own:
            await redis_client.aclose()


def make_bot(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Bot:
    """A Bot pointed at ``TELEGRAM_API_BASE`` (``settings.telegram_bot_token`` must be set)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base), timeout=timeout_s)
    return Bot(settings.telegram_bot_token or "", session=session)


async def check_bot(bot: Bot) -> CheckResult:
    try:
        me = await bot.get_me()
    except TelegramUnauthorizedError:
        return _fail("telegram bot", "the token was refused (401 Unauthorized)",
                     "check TELEGRAM_BOT_TOKEN from @BotFather (/mybots -> API Token)")
    except TelegramNotFound:
        return _fail("telegram bot", "the token was refused (404 Not Found)",
                     "check TELEGRAM_BOT_TOKEN from @BotFather and TELEGRAM_API_BASE")
    except TelegramNetworkError as exc:
        return _fail("telegram bot", f"Bot API unreachable: {exc}"[:300],
                     "check network access to TELEGRAM_API_BASE")
    return CheckResult("telegram bot", True, f"@{me.username or me.first_name} (id {me.id})")


def _chat_fix(setting: str, exc: TelegramAPIError) -> tuple[str, str]:
    text = exc.message.lower()
    if isinstance(exc, TelegramMigrateToChat):
        return ("the group was upgraded to a supergroup",
                f"set {setting}={exc.migrate_to_chat_id}")
    if "chat not found" in text or isinstance(exc, TelegramNotFound):
        return ("chat not found",
                f"add the bot to the chat, then check {setting} (group ids are negative; "
                "supergroups start with -100)")
    if isinstance(exc, TelegramForbiddenError):
        return (f"the bot may not post there ({exc.message})",
                "add the bot back to the chat (or unblock it) and let it post messages")
    if isinstance(exc, TelegramBadRequest) and "rights" in text:
        return (exc.message, "give the bot permission to send messages in the chat")
    return (exc.message, f"check {setting} and the bot's membership in the chat")


async def check_chat(bot: Bot, name: str, setting: str, chat_id: int, *, send: bool) -> CheckResult:
    """``send``: post a test message (the CLI); else only ``getChat`` (/ping: no spam)."""
    try:
        if send:
            await bot.send_message(chat_id, TEST_MESSAGE, parse_mode=None)
            detail = f"test message sent to {chat_id}"
        else:
            chat = await bot.get_chat(chat_id)
            detail = f"reachable: {chat.title or chat.username or chat_id} ({chat.type})"
    except TelegramUnauthorizedError:
        return _fail(name, "not checked: the bot token was refused", "fix TELEGRAM_BOT_TOKEN first")
    except TelegramAPIError as exc:
        what, fix = _chat_fix(setting, exc)
        return _fail(name, f"{what} (chat {chat_id})", fix)
    return CheckResult(name, True, detail)


def configured_chats(settings: Settings) -> list[tuple[str, str, int]]:
    chats = []
    if settings.telegram_alert_chat_id is not None:
        chats.append(("alert chat", "TELEGRAM_ALERT_CHAT_ID", settings.telegram_alert_chat_id))
    if settings.telegram_escalation_chat_id is not None:
        chats.append(("escalation chat", "TELEGRAM_ESCALATION_CHAT_ID", settings.telegram_escalation_chat_id))
    return chats


async def check_dexscreener(settings: Settings, timeout_s: float) -> CheckResult:
    url = settings.dexscreener_base_url.rstrip("/") + "/latest/dex/search?q=SOL"
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
        if resp.status == 200:
            return CheckResult("DexScreener", True, f"reachable ({settings.dexscreener_base_url})")
        if resp.status == 429:
            return CheckResult("DexScreener", True, "reachable, but rate-limited right now (429)")
        return _fail("DexScreener", f"HTTP {resp.status} from {url}", "check DEXSCREENER_BASE_URL")


async def check_pumpportal(settings: Settings, timeout_s: float) -> CheckResult:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.ws_connect(settings.pumpportal_ws_url, timeout=aiohttp.ClientWSTimeout(ws_close=1.0)):
            pass
    return CheckResult("PumpPortal", True, f"websocket connects ({settings.pumpportal_ws_url})")


# --------------------------------------------------------------------------- the checklist


async def _listed(result: CheckResult) -> list[CheckResult]:
    """A fixed line of the checklist (something not configured), in the same shape as a check."""
    return [result]


async def run_doctor(settings: Settings, *, bot: Bot | None = None, db: Database | None = None,
                     redis: Any = None, send_test_messages: bool = True,
                     timeout_s: float = DEFAULT_TIMEOUT_S) -> list[CheckResult]:
    """Run every check (each under ``timeout_s``) and return the checklist in a fixed order.

    Pass the running ``bot``/``db``/``redis`` to reuse them (as /ping does); otherwise
    the doctor opens and closes its own.
    """
    results = [check_settings(settings)]
    infra = [_timed("database", timeout_s, lambda: check_database(settings, db),
                    "check DATABASE_URL and that the database server is running")]
    if settings.redis_url or redis is not None:
        infra.append(_timed("redis", timeout_s, lambda: check_redis(settings, redis),
                            "start Redis, check REDIS_URL, or unset REDIS_URL"))
    else:
        infra.append(_listed(REDIS_NOT_CONFIGURED))
    if settings.market == "live":
        infra.append(_timed("DexScreener", timeout_s, lambda: check_dexscreener(settings, timeout_s),
                            "check network access to DEXSCREENER_BASE_URL"))
        infra.append(_timed("PumpPortal", timeout_s, lambda: check_pumpportal(settings, timeout_s),
                            "check network access to PUMPPORTAL_WS_URL"))
    telegram = _telegram_checks(settings, bot, send_test_messages, timeout_s)
    groups = await asyncio.gather(*infra, telegram)
    for group in groups:
        results.extend(group)
    if settings.market != "live":
        results.append(CheckResult("market", True, "MARKET=sim: the local market; live APIs not checked"))
    return results


async def _telegram_checks(settings: Settings, bot: Bot | None, send: bool, timeout_s: float) -> list[CheckResult]:
    if not settings.telegram_bot_token:
        return [CheckResult("telegram bot", True, "not configured: the console chat is used")]
    own = bot is None
    the_bot = bot or make_bot(settings, timeout_s)
    try:
        results = await _timed("telegram bot", timeout_s, lambda: check_bot(the_bot),
                               "check network access to TELEGRAM_API_BASE")
        if not results[0].ok:
            results += [_fail(name, "not checked: the bot check failed", "fix the telegram bot check first")
                        for name, _setting, _cid in configured_chats(settings)]
            return results
        for name, setting, chat_id in configured_chats(settings):
            results += await _timed(name, timeout_s, partial(check_chat, the_bot, name, setting, chat_id, send=send))
        return results
    finally:
        if own:
            await the_bot.session.close()


async def queue_test_messages(outbox: Any, settings: Settings, *, key: str) -> int:
    """Queue the test message to every configured chat in the outbox (the /ping admin button).

    ``key`` names the press (e.g. ``ping-test:<query id>``), so a redelivered press queues
    nothing twice. Returns the number of chats.
    """
    from delivery.models import WARNING

    chats = configured_chats(settings)
    for _name, _setting, chat_id in chats:
        await outbox.enqueue(chat_id, TEST_MESSAGE, key=f"{key}:{chat_id}"[:128], priority=WARNING)
    return len(chats)


async def check_outbox(outbox: Any) -> CheckResult:
    """The running sender's state: messages waiting, or sending stopped by a refused token (401)."""
    from delivery.outage import human_duration

    pending = await outbox.pending_count()
    oldest = await outbox.oldest_pending_age()
    waiting = f"{pending} message(s) waiting" + (f", oldest {human_duration(oldest)}" if oldest else "")
    if outbox.sending_stopped:
        return _fail("outbox", f"sending stopped: Telegram refused the bot token (401); {waiting}",
                     "fix TELEGRAM_BOT_TOKEN (from @BotFather); sending resumes by itself within a minute")
    return CheckResult("outbox", True, waiting if pending else "nothing waiting")


async def send_test_messages(bot: Bot, settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[CheckResult]:
    """Post the test message to every configured chat now (without an outbox)."""
    results: list[CheckResult] = []
    for name, setting, chat_id in configured_chats(settings):
        results += await _timed(name, timeout_s, partial(check_chat, bot, name, setting, chat_id, send=True))
    return results


def render_text(results: list[CheckResult]) -> str:
    """The checklist as plain text for a terminal."""
    lines = []
    for r in results:
        lines.append(f"[{'ok' if r.ok else 'FAIL':>4}] {r.name}: {r.detail}")
        if not r.ok and r.fix:
            lines.append(f"       fix: {r.fix}")
    failed = sum(1 for r in results if not r.ok)
    lines.append("all checks passed" if not failed else f"{failed} of {len(results)} checks failed")
    return "\n".join(lines)


async def doctor_main(settings: Settings, *, timeout_s: float = DEFAULT_TIMEOUT_S, out: Any = None) -> int:
    """Print the checklist; 0 if everything passed, 1 otherwise (``tokenwatch doctor``)."""
    import sys

    results = await run_doctor(settings, timeout_s=timeout_s)
    print(render_text(results), file=out or sys.stdout)
    return 0 if all(r.ok for r in results) else 1
