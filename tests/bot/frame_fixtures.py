"""Fixtures for the bot frame's tests: the fake Bot API server, a BotContext on a real
SQLite database with a real (started) scheduler, and a polling BotRunner.

Import the fixtures into a test module with ``from tests.bot.frame_fixtures import *``.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest

from app.clock import ManualClock
from app.scheduler import JobSpec, Scheduler
from app.settings import Settings
from bot.context import BotContext
from bot.runner import BotRunner
from monitoring.setup import build_monitoring
from simulator.telegram_api import FakeTelegram, SentMessage

TOKEN = "123456:TEST-frame"
ADMIN = 111
VIEWER = 222
STRANGER = 333
GROUP_MEMBER = 444
ALERT_CHAT = -100500
NOW = float(int(time.time()))  # the scheduler's next-run times are wall-clock

__all__ = ["fake", "frame_settings", "frame_ctx", "running_bot", "say", "press", "TOKEN", "ADMIN", "VIEWER",
           "STRANGER", "GROUP_MEMBER", "ALERT_CHAT", "NOW", "JobProbe", "FrameContext"]


@dataclass
class FrameContext(BotContext):
    """The bot's context with the test's probe job (``/jobs`` runs it) at hand."""

    probe: Any = None
    sender: Any = None  # the outbox sender, where a test runs one


class JobProbe:
    """A scheduled job that records its runs."""

    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self) -> None:
        self.runs += 1


@pytest.fixture
async def fake():
    server = FakeTelegram(enforce_limits=False)
    await server.start()
    server.add_bot(TOKEN, "tokenwatch_test_bot")
    for uid in (ADMIN, VIEWER, STRANGER, GROUP_MEMBER):
        server.add_chat(uid, "private")
    server.add_chat(ALERT_CHAT, "supergroup", title="alerts", members=[ADMIN, VIEWER, GROUP_MEMBER])
    yield server
    await server.stop()


@pytest.fixture
def frame_settings(fake, sqlite_url) -> Settings:
    return Settings(
        _env_file=None, database_url=sqlite_url, telegram_bot_token=TOKEN, telegram_api_base=fake.base_url,
        telegram_admin_ids=[ADMIN], telegram_viewer_ids=[VIEWER], telegram_alert_chat_id=ALERT_CHAT,
        command_rate_limit_per_min=1000, api_timeout_s=2.0,
    )


@pytest.fixture
async def frame_ctx(frame_settings, sqlite_db):
    clock = ManualClock(NOW)
    scheduler = Scheduler(frame_settings, clock)
    probe = JobProbe()
    scheduler.add(JobSpec(id="pipeline.probe", func=probe, interval_s=3600, start_delay_s=3600))
    scheduler.start()
    ctx = FrameContext(settings=frame_settings, db=sqlite_db, clock=clock, scheduler=scheduler, started_at=NOW,
                       doctor_timeout_s=2.0, probe=probe)
    # monitoring as the service builds it (no HTTP, no collection job: /status collects when asked)
    monitoring = await build_monitoring(ctx, serve_http=False)
    yield ctx
    await monitoring.stop()
    await scheduler.shutdown()


@pytest.fixture
async def running_bot(frame_ctx):
    runner = BotRunner(frame_ctx, polling_timeout=1)
    await runner.start()
    yield runner
    await runner.stop()


async def say(fake: FakeTelegram, chat_id: int, user_id: int, text: str, *, timeout: float = 10.0) -> SentMessage:
    """A user sends ``text``; return the bot's next new message in that chat."""
    before = len(fake.sent(chat_id))
    fake.user_sends(chat_id, user_id, text)
    await fake.wait_for(lambda: len(fake.sent(chat_id)) > before, timeout)
    return fake.sent(chat_id)[before]


async def press(fake: FakeTelegram, chat_id: int, user_id: int, message_id: int, data: str,
                *, timeout: float = 10.0) -> dict:
    """A user presses a button; return the callback answer the bot gave."""
    query_id = fake.user_presses(chat_id, user_id, message_id, data)
    return await fake.wait_for(
        lambda: next((a for a in fake.callback_answers if a["callback_query_id"] == query_id), None), timeout)


def buttons(msg: SentMessage) -> dict[str, str]:
    """Button text -> callback data of a message's inline keyboard."""
    rows = (msg.reply_markup or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in rows for b in row}


async def settle() -> None:
    await asyncio.sleep(0)
