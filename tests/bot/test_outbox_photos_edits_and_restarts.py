"""Regression tests for the review of bot/ and the fake Bot API server (findings 1-12).

Each test fails on the code before its fix. User-visible behaviour goes through the real
aiogram client and the fake Bot API server on loopback.
"""
from __future__ import annotations

import logging
import threading

import aiohttp
import pytest

import aiohttp.web_request as web_request
from aiogram.exceptions import TelegramBadRequest, TelegramServerError
from aiogram.types import BufferedInputFile

from app.settings import SettingsError, load_settings
from delivery.models import DEAD, SENT
from delivery import BotTransport, OutboxSender
from delivery.transport import TemporaryError
from delivery.html import esc, to_plain
from simulator.telegram_html import MESSAGE_LIMIT, utf16_units, visible_text
from bot.runner import BotRunner
from bot.views.token import render_token_debug
from monitoring.activation_debug import TokenDebug
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import NOW, STRANGER, VIEWER, say
from tests.bot.telegram_harness import telegram_harness
from tests.bot.test_outbox import fast_settings, nothing_pending, outbox_world, rows, running, until
from tokens.activation import ActivationResult, ConditionResult
from tokens.models import Token
from tokens.queries import TokenView

# --------------------------------------------------------------------------- 1: webhook secret


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


# --------------------------------------------------------------------------- 2: captions are throttled


async def test_commands_in_photo_captions_are_rate_limited(fake, frame_ctx):
    frame_ctx.settings.command_rate_limit_per_min = 2
    runner = BotRunner(frame_ctx, polling_timeout=1)
    await runner.start()
    try:
        for _ in range(2):
            before = len(fake.sent(STRANGER))
            fake.user_sends(STRANGER, STRANGER, "/status", as_caption=True)
            await fake.wait_for(lambda: len(fake.sent(STRANGER)) > before, 10)
        slow = await _say_caption(fake, STRANGER, "/status")
        assert slow.plain.startswith("Slow down")
        for _ in range(5):
            fake.user_sends(STRANGER, STRANGER, "/status", as_caption=True)
        await say(fake, VIEWER, VIEWER, "/help")  # a sync point: everything before it was handled
        assert len(fake.sent(STRANGER)) == 3  # 2 refusals + one "slow down", nothing for the rest
        assert runner.dp["parts"].throttle.dropped == 6
    finally:
        await runner.stop()


async def _say_caption(fake, user_id: int, text: str):
    before = len(fake.sent(user_id))
    fake.user_sends(user_id, user_id, text, as_caption=True)
    await fake.wait_for(lambda: len(fake.sent(user_id)) > before, 10)
    return fake.sent(user_id)[before]


# --------------------------------------------------------------------------- 3: photo caption fallback


async def test_refused_html_caption_is_resent_as_its_visible_text(db):
    caption = "".join("<b>x</b>" for _ in range(200))  # 200 visible, 1600 raw characters
    async with outbox_world(db) as (fake, outbox, sender):
        fake.fail_next(1, 400, "Bad Request: can't parse entities: custom emoji not allowed", methods=["sendPhoto"])
        await outbox.enqueue(42, caption, key="chart", photo=b"\x89PNG")
        await sender.drain_once()
        [msg] = fake.sent(42)
        assert msg.photo == b"\x89PNG" and msg.caption == "x" * 200 and msg.parse_mode is None
        assert (await rows(db))["chart"].status == SENT


async def test_plain_caption_is_measured_in_utf16_units(db):
    text = "🚀" * 600 + " <nonsense>"  # our validator refuses it: plain; 1211 UTF-16 units, 605 chars
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(42, text, key="rockets", photo=b"\x89PNG")
        while await sender.drain_once():
            pass
        state = (await rows(db))["rockets"]
        assert state.status == SENT, state.last_error
        photo, body = fake.sent(42)
        assert photo.photo == b"\x89PNG" and not photo.caption
        assert body.text == text and body.parse_mode is None


# --------------------------------------------------------------------------- 4: editing a photo alert


async def test_edit_of_a_photo_alert_changes_its_caption(db):
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(-100, "🔥 <b>rug</b> chart", key="a:fire", photo=b"\x89PNG")
        await sender.drain_once()
        await outbox.enqueue_edit(-100, target_key="a:fire", text="✅ <s>rug</s> resolved", key="a:resolve")
        await sender.drain_once()
        state = (await rows(db))["a:resolve"]
        assert state.status == SENT, state.last_error
        [msg] = fake.sent(-100)
        assert msg.photo == b"\x89PNG" and msg.plain == "✅ rug resolved" and len(msg.edits) == 1


# --------------------------------------------------------------------------- 5: upgraded group


async def test_alerts_to_an_upgraded_group_follow_it_to_the_supergroup(db, caplog):
    async with outbox_world(db) as (fake, outbox, sender):
        fake.add_chat(-5, "group", title="ops")
        fake.migrate_chat(-5, -1005)
        await outbox.enqueue(-5, "<b>first</b> alert", key="a1")
        await outbox.enqueue(-5, "second alert", key="a2")
        with caplog.at_level(logging.ERROR, logger="delivery.sender"):
            async with running(sender):
                await until(lambda: nothing_pending(outbox), what="drained")
        assert [m.plain for m in fake.sent(-1005)] == ["first alert", "second alert"]
        state = await rows(db)
        assert {state[k].status for k in ("a1", "a2")} == {SENT} and state["a1"].chat_id == -1005
        assert any("-1005" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
        # a later alert still addressed to the old id goes to the supergroup too
        await outbox.enqueue(-5, "third alert", key="a3")
        async with running(sender):
            await until(lambda: nothing_pending(outbox), what="drained again")
        assert fake.sent(-1005)[-1].plain == "third alert"


# --------------------------------------------------------------------------- 6: fake lines in names


async def test_token_names_cannot_fake_extra_lines(fake, running_bot, frame_ctx):
    async with frame_ctx.db.session() as session:
        session.add(Token(mint="So11111111111111111111111111111111111111112",
                          name="Evil\n✅ ALL CLEAR\r\u2028\u2029\x0bend", status="monitoring",
                          status_since=NOW - 1000, discovered_at=NOW - 1000, next_check_at=NOW + 60))
        await session.commit()
    msg = await say(fake, VIEWER, VIEWER, "/stuck")
    assert "Evil ✅ ALL CLEAR" in msg.plain
    assert not any(line.startswith("✅ ALL CLEAR") for line in msg.plain.splitlines())
    assert not any(ch in msg.plain for ch in "\r\u2028\u2029\x0b")


# --------------------------------------------------------------------------- 7: escaped once


def test_token_values_are_escaped_exactly_once():
    kw = dict(id=1, mint="So11111111111111111111111111111111111111112", name="A&B", symbol="<S>", source="x",
              status="monitoring", status_since=0.0, discovered_at=0.0, next_check_at=None, last_check_at=None,
              last_success_at=None, consecutive_failures=0)
    for name in TokenView.__dataclass_fields__:
        kw.setdefault(name, 0)
    token = TokenView(**kw)
    result = ActivationResult(False, [ConditionResult("pump_pool", "A&B <dex>", "x&y", False, "c", None)],
                              ["pump_pool"])
    text = to_plain(render_token_debug(TokenDebug(token.mint, True, token, [], result=result), 100.0))
    assert "pump_pool: A&B <dex> (need ≥ x&y)" in text
    assert "&amp;" not in text and "&lt;" not in text


# --------------------------------------------------------------------------- 8: stuck edit


async def test_edit_of_a_superseded_edit_does_not_block_the_chat(db):
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(42, "price 1", key="card")
        await sender.drain_once()
        await outbox.enqueue_edit(42, target_key="card", text="price 2", key="e1")
        await outbox.enqueue_edit(42, target_key="e1", text="price 2 (note)", key="on-e1")
        await outbox.enqueue_edit(42, target_key="card", text="price 3", key="e2")  # supersedes e1
        async with running(sender):
            await until(lambda: nothing_pending(outbox), timeout=5, what="chat unblocked")
        state = await rows(db)
        assert state["on-e1"].status == DEAD and "superseded" in state["on-e1"].last_error
        assert state["e2"].status == SENT
        assert fake.sent(42)[0].plain == "price 3"


# --------------------------------------------------------------------------- 10: restart mid-split


class _FailsSecondSend:
    """A transport that delivers the first message, then Telegram 'goes away'."""

    def __init__(self, inner: BotTransport) -> None:
        self.inner = inner
        self.calls = 0

    async def send_text(self, *args, **kwargs) -> int:
        self.calls += 1
        if self.calls >= 2:
            raise TemporaryError("connection reset")
        return await self.inner.send_text(*args, **kwargs)

    async def edit_text(self, *args, **kwargs) -> int:
        return await self.inner.edit_text(*args, **kwargs)

    async def edit_caption(self, *args, **kwargs) -> int:
        return await self.inner.edit_caption(*args, **kwargs)

    async def send_photo(self, *args, **kwargs) -> int:
        return await self.inner.send_photo(*args, **kwargs)


async def test_a_restart_does_not_resend_parts_of_a_split_message(db):
    lines = [f"{i}. <b>{esc('line')}</b> " + "y" * 40 for i in range(300)]
    text = "\n".join(lines)
    expected = visible_text(text).split("\n")
    assert utf16_units(visible_text(text)) > 3 * MESSAGE_LIMIT  # at least 4 messages
    async with outbox_world(db) as (fake, outbox, sender):
        flaky = OutboxSender(db, outbox, _FailsSecondSend(sender.transport), fast_settings(),
                             retry_base_s=0.02, retry_max_s=0.05, poll_interval_s=0.05)
        await outbox.enqueue(42, text, key="report")
        await flaky.drain_once()
        assert len(fake.sent(42)) == 1
        await flaky.stop()  # the process dies; a new one takes over the same database
        async with running(sender):
            await until(lambda: nothing_pending(outbox), what="drained after restart")
        parts = fake.sent(42)
        # judged by what the fake server received: every line once, in order, no piece sent twice
        assert fake.refusals == []
        assert [line for p in parts for line in p.plain.split("\n")] == expected
        assert all(utf16_units(p.plain) <= MESSAGE_LIMIT for p in parts) and len(parts) >= 4
        assert (await rows(db))["report"].telegram_message_id == parts[0].message_id


# --------------------------------------------------------------------------- 9: strangers in groups


async def test_strangers_bare_commands_in_groups_get_no_refusal(fake, running_bot):
    fake.add_chat(-100778, "supergroup", title="busy group", members=[STRANGER])
    fake.user_sends(-100778, STRANGER, "/status")  # maybe meant for another bot: ignore quietly
    fake.user_sends(-100778, STRANGER, "/help arg")
    refusal = await say(fake, -100778, STRANGER, "/status@tokenwatch_test_bot")
    assert refusal.plain == "Not authorised."
    assert len(fake.sent(-100778)) == 1


# --------------------------------------------------------------------------- 11, 12: the fake server


async def test_fake_telegram_answers_malformed_input_like_telegram():
    async with telegram_harness(enforce_limits=False) as (fake, bot):
        fake.add_chat(42)
        url = f"{fake.base_url}/bot{bot.token}"
        async with aiohttp.ClientSession() as http:
            for method, data in [
                ("sendMessage", {"chat_id": "42", "text": "hi", "reply_markup": '{"inline_keyboard":"ab"}'}),
                ("sendMessage", {"chat_id": "42", "text": "hi",
                                 "reply_markup": '{"inline_keyboard":[[{"text":"x","callback_data":"d"}], 5]}'}),
                ("sendMessage", {"chat_id": "42", "text": "hi", "reply_markup": '{"inline_keyboard":[[7]]}'}),
                ("setMyCommands", {"commands": "[]", "scope": "[1]"}),
            ]:
                async with http.post(f"{url}/{method}", data=data) as resp:
                    body = await resp.json()
                    assert resp.status == 400 and body["ok"] is False and body["error_code"] == 400, body
        assert fake.sent(42) == []

        async def broken(*_args):
            raise RuntimeError("bug in the fake")

        fake._m_getme = broken  # noqa: SLF001 - simulate a bug in a handler
        with pytest.raises(TelegramServerError):  # a Telegram-shaped 500, not an undecodable page
            await bot.get_me()
        with pytest.raises(TelegramBadRequest):
            await bot.send_message(42, "hi", reply_markup={"inline_keyboard": "ab"})  # type: ignore[arg-type]


async def test_fake_telegram_reads_uploads_off_the_event_loop(monkeypatch):
    readers: list[int] = []

    class Recording(web_request.SpooledTemporaryFile):
        def read(self, *args):
            readers.append(threading.get_ident())
            return super().read(*args)

    monkeypatch.setattr(web_request, "SpooledTemporaryFile", Recording)
    async with telegram_harness(enforce_limits=False) as (fake, bot):
        fake.add_chat(42)
        await bot.send_photo(42, BufferedInputFile(b"\x89PNG" * 1000, filename="c.png"), caption="chart")
        [msg] = fake.sent(42)
        assert msg.photo == b"\x89PNG" * 1000
    assert readers and threading.get_ident() not in readers
