"""``tokenwatch doctor`` against the fake Bot API server, real databases and local HTTP/websocket servers."""
from __future__ import annotations

import asyncio
import io

from aiohttp import web

from app.settings import Settings
from bot.doctor import check_redis, doctor_main, render_text, run_doctor
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import ADMIN, ALERT_CHAT, TOKEN


def _settings(fake, sqlite_url, **over) -> Settings:
    values = dict(_env_file=None, database_url=sqlite_url, telegram_bot_token=TOKEN, telegram_api_base=fake.base_url,
                  telegram_admin_ids=[ADMIN], telegram_alert_chat_id=ALERT_CHAT)
    values.update(over)
    return Settings(**values)


def _by_name(results):
    return {r.name: r for r in results}


async def test_healthy_deployment_passes_and_sends_a_test_message(fake, sqlite_url):
    out = io.StringIO()
    code = await doctor_main(_settings(fake, sqlite_url), timeout_s=2, out=out)
    assert code == 0, out.getvalue()
    assert "all checks passed" in out.getvalue()
    assert "this is a test message" in fake.sent(ALERT_CHAT)[0].plain


async def test_wrong_token_is_reported_with_the_fix(fake, sqlite_url):
    out = io.StringIO()
    code = await doctor_main(_settings(fake, sqlite_url, telegram_bot_token="999:WRONG"), timeout_s=2, out=out)
    text = out.getvalue()
    assert code == 1
    assert "[FAIL] telegram bot: the token was refused (401 Unauthorized)" in text
    assert "fix: check TELEGRAM_BOT_TOKEN from @BotFather" in text
    assert "[FAIL] alert chat: not checked" in text
    assert fake.sent(ALERT_CHAT) == []


async def test_unreachable_chat_is_reported_with_the_fix(fake, sqlite_url):
    results = await run_doctor(_settings(fake, sqlite_url, telegram_alert_chat_id=-100999,
                                         telegram_escalation_chat_id=ALERT_CHAT), timeout_s=2)
    chats = _by_name(results)
    assert not chats["alert chat"].ok
    assert "chat not found" in chats["alert chat"].detail
    assert "add the bot to the chat" in chats["alert chat"].fix and "TELEGRAM_ALERT_CHAT_ID" in chats["alert chat"].fix
    assert chats["escalation chat"].ok


async def test_kicked_bot_is_reported(fake, sqlite_url):
    fake.block_bot(ALERT_CHAT)
    result = _by_name(await run_doctor(_settings(fake, sqlite_url), timeout_s=2))["alert chat"]
    assert not result.ok and "add the bot back" in result.fix


async def test_unmigrated_database_and_dead_redis_are_reported(fake, tmp_path):
    settings = _settings(fake, f"sqlite+aiosqlite:///{tmp_path}/empty.db", redis_url="redis://127.0.0.1:1/0")
    results = _by_name(await run_doctor(settings, timeout_s=2))
    assert not results["database"].ok and results["database"].fix == "run: tokenwatch migrate"
    assert not results["redis"].ok and "REDIS_URL" in results["redis"].fix


async def test_redis_check_without_redis_url_says_not_configured(sqlite_url):
    settings = Settings(_env_file=None, database_url=sqlite_url, redis_url=None)
    result = await check_redis(settings)
    assert result.ok and "not configured" in result.detail


async def test_settings_without_admins_fail_clearly(fake, sqlite_url):
    result = _by_name(await run_doctor(_settings(fake, sqlite_url, telegram_admin_ids=[]), timeout_s=2))["settings"]
    assert not result.ok and "TELEGRAM_ADMIN_IDS" in result.fix


async def test_console_mode_needs_no_telegram(sqlite_url):
    settings = Settings(_env_file=None, database_url=sqlite_url)
    results = await run_doctor(settings, timeout_s=2)
    assert all(r.ok for r in results), render_text(results)
    assert "console chat" in _by_name(results)["telegram bot"].detail


async def _market_server(hang: asyncio.Event | None = None):
    async def search(request):
        if hang is not None:
            await hang.wait()
        return web.json_response({"schemaVersion": "1.0.0", "pairs": []})

    async def ws(request):
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        await sock.close()
        return sock

    app = web.Application()
    app.router.add_get("/latest/dex/search", search)
    app.router.add_get("/api/data", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, port


async def test_live_market_apis_are_checked(fake, sqlite_url):
    runner, port = await _market_server()
    try:
        settings = _settings(fake, sqlite_url, market="live", dexscreener_base_url=f"http://127.0.0.1:{port}",
                             pumpportal_ws_url=f"ws://127.0.0.1:{port}/api/data")
        results = _by_name(await run_doctor(settings, timeout_s=2))
        assert results["DexScreener"].ok and results["PumpPortal"].ok
    finally:
        await runner.cleanup()


async def test_a_hanging_api_times_out_per_check(fake, sqlite_url):
    hang = asyncio.Event()
    runner, port = await _market_server(hang)
    try:
        settings = _settings(fake, sqlite_url, market="live", dexscreener_base_url=f"http://127.0.0.1:{port}",
                             pumpportal_ws_url="ws://127.0.0.1:1/api/data")
        results = _by_name(await run_doctor(settings, timeout_s=0.3))
        assert not results["DexScreener"].ok and "0.3s" in results["DexScreener"].detail
        assert not results["PumpPortal"].ok
        assert results["database"].ok and results["telegram bot"].ok
    finally:
        hang.set()
        await runner.cleanup()


async def test_database_check_on_sqlite_and_postgresql(db_url):
    from bot.doctor import check_database

    result = await check_database(Settings(_env_file=None, database_url=db_url))
    assert result.ok and "migrated" in result.detail
