"""📨 Send test message in the console chat: the press is answered exactly once."""
from __future__ import annotations

import io
import time

from app.clock import ManualClock
from bot.context import BotContext
from app.settings import Settings
from bot.console import ConsoleChat


async def test_console_test_message_press_prints_one_answer(sqlite_url, sqlite_db, tmp_path):
    ctx = BotContext(settings=Settings(_env_file=None, database_url=sqlite_url), db=sqlite_db,
                     clock=ManualClock(float(int(time.time()))))
    out = io.StringIO()
    chat = ConsoleChat(ctx, out=out, interactive=True, photo_dir=tmp_path)
    try:
        await chat.handle_line("/ping")
        line = next(line for line in out.getvalue().splitlines() if "Send test message" in line)
        cell = next(c for c in line.split("  ") if "Send test message" in c)
        await chat.handle_line(cell[1:cell.index("]")])
    finally:
        await chat.close()
    answers = [line for line in out.getvalue().splitlines() if line.strip().startswith("↳")]
    assert answers == ["  ↳ Console mode: there are no Telegram chats to test."]
