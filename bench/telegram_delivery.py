"""Telegram delivery under flood limits: how close the outbox gets to the fastest legal schedule.

    .venv/bin/python bench/telegram_delivery.py              # full run, about 100 s
    .venv/bin/python bench/telegram_delivery.py --scale 0.1  # quick check, about 10 s

A burst of notifications is queued at once: 300 spread over three private chats (100 each)
and 40 to one group. The real outbox (SQLite file, ``OutboxSender`` with default settings:
30/s overall, 1/s per chat, 20/min per group) delivers them through the real aiogram client
to the fake Bot API server, which enforces Telegram's limits and answers 429 when exceeded.

Printed: messages delivered, 429s provoked, total time (first enqueue to the last message
received by the server), the minimum total time the documented limits allow and the ratio.
The minimum: each chat's messages at most 1/s (n messages need n-1 s after the first),
a group at most 20 in any rolling 60 s, everything at most 30/s; the slowest chat decides.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiogram import Bot  # noqa: E402
from aiogram.client.default import DefaultBotProperties  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402

from app.clock import SYSTEM_CLOCK  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.settings import Settings  # noqa: E402
from delivery.models import INFO, WARNING  # noqa: E402
from delivery import BotTransport, Outbox, OutboxSender  # noqa: E402
from delivery.html import esc  # noqa: E402
from simulator.telegram_api import FakeTelegram  # noqa: E402

TOKEN = "100200:bench"
PRIVATE_CHATS = (1001, 1002, 1003)
GROUP_CHAT = -100500


def minimum_schedule_s(counts: dict[int, int], *, chat_per_s: float, group_per_min: int,
                       global_per_s: float) -> float:
    """Fastest time (first to last message) the sustained limits allow for this burst."""
    worst = (sum(counts.values()) - 1) / global_per_s
    for chat_id, n in counts.items():
        times: list[float] = []
        for k in range(n):
            t = k / chat_per_s if not times else times[-1] + 1 / chat_per_s
            if chat_id < 0 and k >= group_per_min:
                t = max(t, times[k - group_per_min] + 60.0)
            times.append(t)
        worst = max(worst, times[-1] if times else 0.0)
    return worst


async def main(scale: float, database_url: str | None) -> int:
    per_private = max(2, round(100 * scale))
    group_n = max(2, round(40 * scale))
    counts = {chat: per_private for chat in PRIVATE_CHATS} | {GROUP_CHAT: group_n}
    settings = Settings()

    tmp = tempfile.TemporaryDirectory()
    url = database_url or f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    await upgrade(url)
    db = Database(make_engine(url))

    fake = FakeTelegram(enforce_limits=True)
    await fake.start()
    fake.add_bot(TOKEN, "bench_bot")
    for chat in PRIVATE_CHATS:
        fake.add_chat(chat, "private")
    fake.add_chat(GROUP_CHAT, "supergroup", title="ops")
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)),
              default=DefaultBotProperties(parse_mode="HTML"))

    outbox = Outbox(db, SYSTEM_CLOCK)
    sender = OutboxSender(db, outbox, BotTransport(bot), settings, SYSTEM_CLOCK)
    task = asyncio.create_task(sender.run())

    total = sum(counts.values())
    enqueued_at: dict[str, float] = {}
    start = SYSTEM_CLOCK.monotonic()
    for i in range(max(counts.values())):
        for chat, n in counts.items():
            if i < n:
                key = f"bench:{chat}:{i}"
                text = f"<b>{esc('TOKEN<' + str(i) + '>')}</b> crossed its threshold · score <code>{i}</code>"
                enqueued_at[key] = SYSTEM_CLOCK.monotonic()
                await outbox.enqueue(chat, text, key=key, priority=WARNING if i % 10 == 0 else INFO)
    enqueue_s = SYSTEM_CLOCK.monotonic() - start

    deadline = start + 300
    while len(fake.all_sent()) < total and SYSTEM_CLOCK.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await sender.stop()
    await task

    sent = fake.all_sent()
    delivered = len(sent)
    first = min(m.received_at for m in sent)
    last = max(m.received_at for m in sent)
    total_s = last - start
    spread_s = last - first
    minimum = minimum_schedule_s(counts, chat_per_s=settings.outbox_chat_per_s,
                                 group_per_min=int(settings.outbox_group_per_min),
                                 global_per_s=settings.outbox_global_per_s)
    def in_order(chat: int, n: int) -> bool:
        seen = [int(m.plain.split()[0][6:-1]) for m in fake.sent(chat)]
        warn = [i for i in seen if i % 10 == 0]
        info = [i for i in seen if i % 10 != 0]
        return sorted(seen) == list(range(n)) and warn == sorted(warn) and info == sorted(info)

    per_chat_ok = all(in_order(chat, n) for chat, n in counts.items())
    gaps = []
    for chat in PRIVATE_CHATS:
        times = [m.received_at for m in fake.sent(chat)]
        gaps += [b - a for a, b in zip(times, times[1:])]

    print(f"burst: {total} notifications ({per_private} x {len(PRIVATE_CHATS)} private chats + {group_n} to one group),"
          f" queued in {enqueue_s:.2f}s")
    print(f"delivered:        {delivered}/{total} (duplicates: {delivered - len({m.text + str(m.chat_id) for m in sent})})")
    print(f"429s provoked:    {fake.stats.provoked_429}")
    print(f"order per chat:   {'each once, FIFO within a priority: ok' if per_chat_ok else 'WRONG'}")
    print(f"total time:       {total_s:.2f}s (first enqueue -> last message received; first->last message {spread_s:.2f}s)")
    print(f"minimum allowed:  {minimum:.2f}s (1/s per chat, 20/min per group, 30/s overall)")
    print(f"ratio:            {total_s / minimum:.3f}" if minimum > 0 else "ratio: n/a")
    if gaps:
        print(f"per-chat gap:     median {statistics.median(gaps):.3f}s, min {min(gaps):.3f}s, max {max(gaps):.3f}s")
    print(f"sender stats:     {sender.stats}")

    await bot.session.close()
    await fake.stop()
    await db.dispose()
    tmp.cleanup()
    ok = delivered == total and fake.stats.provoked_429 == 0 and per_chat_ok
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full burst (0.1 = quick)")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(args.scale, args.database_url)))
