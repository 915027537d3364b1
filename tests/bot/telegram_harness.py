"""Test helpers: the fake Bot API server with a REAL aiogram ``Bot`` pointed at it.

    async with telegram_harness(enforce_limits=False) as (fake, bot):
        fake.add_chat(42)
        await bot.send_message(42, "hi")
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from simulator.telegram_api import FakeTelegram

TOKEN = "123456:TEST-token"


def make_bot(fake: FakeTelegram, token: str = TOKEN, timeout: float = 5.0) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url), timeout=timeout)
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode="HTML"))


@asynccontextmanager
async def telegram_harness(**fake_kwargs) -> AsyncIterator[tuple[FakeTelegram, Bot]]:
    fake = FakeTelegram(**fake_kwargs)
    await fake.start()
    fake.add_bot(TOKEN, "tokenwatch_test_bot")
    bot = make_bot(fake)
    try:
        yield fake, bot
    finally:
        await bot.session.close()
        await fake.stop()
