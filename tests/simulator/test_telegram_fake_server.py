"""The fake Bot API server, driven by the REAL aiogram client over HTTP: methods, errors, limits,
faults, and answers to malformed input shaped like Telegram's."""
from __future__ import annotations

import asyncio
import threading

import aiohttp
import aiohttp.web_request as web_request
import pytest
from aiogram import Dispatcher, F
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command
from aiogram.types import BotCommand, BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from tests.bot.telegram_harness import make_bot, telegram_harness

KEYBOARD = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Ack", callback_data="ack:7")]])


async def test_unknown_token_is_unauthorized():
    async with telegram_harness() as (fake, bot):
        assert (await bot.get_me()).username == "tokenwatch_test_bot"
        stranger = make_bot(fake, token="999:nope")
        try:
            with pytest.raises(TelegramUnauthorizedError):
                await stranger.get_me()
        finally:
            await stranger.session.close()


async def test_send_edit_keyboard_and_errors_like_telegram():
    async with telegram_harness(enforce_limits=False) as (fake, bot):
        fake.add_chat(42)
        msg = await bot.send_message(42, "<b>PEPE &amp; co</b>", reply_markup=KEYBOARD)
        assert msg.text == "PEPE & co"
        sent = fake.sent(42)[0]
        assert sent.text == "<b>PEPE &amp; co</b>" and sent.parse_mode == "HTML"
        assert sent.reply_markup["inline_keyboard"][0][0]["callback_data"] == "ack:7"

        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_message(42, "<b>rug & pull</b>")
        with pytest.raises(TelegramBadRequest, match="message is too long"):
            await bot.send_message(42, "&amp;" * 4097)
        await bot.send_message(42, "&amp;" * 4096)  # 4096 after parsing is fine
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.send_message(777, "hello")

        await bot.edit_message_text("<i>resolved</i>", chat_id=42, message_id=msg.message_id)
        with pytest.raises(TelegramBadRequest, match="message is not modified"):
            await bot.edit_message_text("<i>resolved</i>", chat_id=42, message_id=msg.message_id)
        assert [e.text for e in fake.sent(42)[0].edits] == ["<i>resolved</i>"]
        assert fake.sent(42)[0].reply_markup is None

        await bot.edit_message_reply_markup(chat_id=42, message_id=msg.message_id, reply_markup=KEYBOARD)
        assert fake.sent(42)[0].reply_markup is not None
        assert await bot.delete_message(42, msg.message_id)
        with pytest.raises(TelegramBadRequest, match="message to delete not found"):
            await bot.delete_message(42, msg.message_id)

        fake.block_bot(42)
        with pytest.raises(TelegramForbiddenError):
            await bot.send_message(42, "still there?")


async def test_photo_document_commands_and_chat():
    async with telegram_harness(enforce_limits=False) as (fake, bot):
        fake.add_chat(-1001, "supergroup", title="Ops <room>")
        photo = await bot.send_photo(-1001, BufferedInputFile(b"\x89PNG fake", "chart.png"), caption="<b>chart</b>")
        assert photo.caption == "chart"
        await bot.send_document(-1001, BufferedInputFile(b"a,b\n1,2\n", "export.csv"))
        sent = fake.sent(-1001)
        assert sent[0].photo == b"\x89PNG fake" and sent[0].plain == "chart"
        assert sent[1].document == b"a,b\n1,2\n"
        with pytest.raises(TelegramBadRequest, match="caption is too long"):
            await bot.send_photo(-1001, BufferedInputFile(b"x", "x.png"), caption="y" * 1025)

        await bot.set_my_commands([BotCommand(command="status", description="Pipeline status")])
        assert [c.command for c in await bot.get_my_commands()] == ["status"]
        chat = await bot.get_chat(-1001)
        assert chat.title == "Ops <room>" and chat.type == "supergroup"


async def test_dispatcher_polls_commands_and_button_presses():
    async with telegram_harness(enforce_limits=False) as (fake, bot):
        fake.add_chat(-1002, "group", members=[5])
        dp = Dispatcher()

        @dp.message(Command("ping"))
        async def ping(message: Message) -> None:
            await message.answer("<b>pong</b>", reply_markup=KEYBOARD)

        @dp.callback_query(F.data.startswith("ack:"))
        async def ack(query: CallbackQuery) -> None:
            await query.answer("acknowledged")

        polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
        try:
            fake.user_sends(-1002, 5, "/ping")
            replies = await fake.wait_for(lambda: fake.sent(-1002), timeout=5)
            assert replies[0].plain == "pong"
            query_id = fake.user_presses(-1002, 5, replies[0].message_id, "ack:7")
            await fake.wait_for(lambda: fake.callback_answers, timeout=5)
            assert fake.callback_answers[0]["callback_query_id"] == query_id
            assert fake.callback_answers[0]["text"] == "acknowledged"
            assert replies[0].callback_answers[0]["text"] == "acknowledged"
        finally:
            await dp.stop_polling()
            await polling


async def test_long_polling_waits_then_delivers_and_second_poller_conflicts():
    async with telegram_harness() as (fake, bot):
        waiting = asyncio.create_task(bot.get_updates(timeout=5))
        await asyncio.sleep(0.05)
        fake.user_sends(8, 8, "hello")
        updates = await asyncio.wait_for(waiting, 3)
        assert [u.message.text for u in updates] == ["hello"]
        assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == []

        first = asyncio.create_task(bot.get_updates(timeout=5))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(bot.get_updates(timeout=1))
        with pytest.raises(TelegramConflictError):
            await first
        assert await second == []


async def test_flood_limits_answer_429_with_retry_after():
    async with telegram_harness(enforce_limits=True) as (fake, bot):
        fake.add_chat(42)
        for i in range(3):  # the burst Telegram tolerates
            await bot.send_message(42, f"m{i}")
        with pytest.raises(TelegramRetryAfter) as info:
            await bot.send_message(42, "one too many")
        assert info.value.retry_after >= 1
        assert fake.stats.provoked_429 == 1
        assert len(fake.sent(42)) == 3


async def test_group_limit_is_20_per_minute():
    async with telegram_harness(enforce_limits=True, chat_burst=100) as (fake, bot):
        fake.add_chat(-5, "group")
        for i in range(20):
            await bot.send_message(-5, f"m{i}")
        with pytest.raises(TelegramRetryAfter) as info:
            await bot.send_message(-5, "21st")
        assert 55 <= info.value.retry_after <= 60


async def test_injected_faults_and_outage():
    async with telegram_harness(enforce_limits=False) as (fake, bot):
        fake.add_chat(42)
        fake.fail_next(1, status=500)
        with pytest.raises(TelegramServerError):
            await bot.send_message(42, "x")
        fake.force_429(retry_after=7)
        with pytest.raises(TelegramRetryAfter) as info:
            await bot.send_message(42, "x")
        assert info.value.retry_after == 7
        fake.set_outage(True)
        with pytest.raises(TelegramServerError, match="Bad Gateway"):
            await bot.send_message(42, "x")
        fake.set_outage(True, mode="drop")
        with pytest.raises(TelegramNetworkError):
            await bot.send_message(42, "x")
        fake.set_outage(False)
        await bot.send_message(42, "back")
        assert [m.text for m in fake.sent(42)] == ["back"]
        assert fake.stats.injected_failures == 1 and fake.stats.forced_429 == 1


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
