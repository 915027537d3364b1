"""Webhook mode: the secret token is checked, junk is refused, good updates are handled."""
from __future__ import annotations

import aiohttp
import pytest

from app.settings import SettingsError, load_settings
from bot.runner import BotRunner
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import ADMIN, VIEWER

SECRET = "s3cret-token_1"


def _update(update_id: int, user_id: int, text: str) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": 900 + update_id, "date": 1_700_000_000, "text": text,
        "chat": {"id": user_id, "type": "private", "first_name": "u"},
        "from": {"id": user_id, "is_bot": False, "first_name": "u"},
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}}


async def test_webhook_checks_the_secret_and_handles_updates(fake, frame_ctx):
    frame_ctx.settings.telegram_webhook_url = "https://example.invalid/tg/hook"
    frame_ctx.settings.telegram_webhook_secret = SECRET
    runner = BotRunner(frame_ctx, webhook_port=0)
    assert runner.mode == "webhook"
    await runner.start()
    url = f"http://127.0.0.1:{runner.bound_port}/tg/hook"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json=_update(1, ADMIN, "/help"),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as resp:
                assert resp.status == 401
            async with http.post(url, json=_update(2, ADMIN, "/help")) as resp:
                assert resp.status == 401
            async with http.post(url, data=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET,
                                                                 "Content-Type": "application/json"}) as resp:
                assert resp.status == 400
            async with http.post(url, json={"update_id": "x", "message": None},
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 400
            assert fake.sent(ADMIN) == []
            assert runner.webhook_rejected == 4
            async with http.post(url, json=_update(3, VIEWER, "/start"),
                                 headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
                assert resp.status == 200
        msg = await fake.wait_for(lambda: fake.sent(VIEWER), 5)
        assert "Your role: viewer" in msg[0].plain
        assert fake.sent(ADMIN) == []
    finally:
        await runner.stop()


def test_webhook_url_without_secret_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_URL requires TELEGRAM_WEBHOOK_SECRET"):
        load_settings(telegram_webhook_url="https://example.org/tg")
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET"):
        load_settings(telegram_webhook_url="https://example.org/tg", telegram_webhook_secret="bad secret!")
    ok = load_settings(telegram_webhook_url="https://example.org/tg", telegram_webhook_secret="abc_DEF-123")
    assert ok.telegram_webhook_secret == "abc_DEF-123"


async def test_webhook_never_runs_without_a_secret(fake, frame_ctx):
    # settings changed after validation (as tests and reloads do): the runner still refuses
    frame_ctx.settings.telegram_webhook_url = "https://example.invalid/tg"
    frame_ctx.settings.telegram_webhook_secret = None
    runner = BotRunner(frame_ctx, webhook_port=0)
    with pytest.raises(RuntimeError, match="TELEGRAM_WEBHOOK_SECRET"):
        await runner.start()
    await runner.stop()
    assert fake.all_sent() == []
