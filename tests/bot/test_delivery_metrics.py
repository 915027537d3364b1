"""The bot's health reaches monitoring: outbox backlog and age, delivery counters, Telegram outages."""
from __future__ import annotations

from types import SimpleNamespace

from app.clock import ManualClock
from bot.metrics import DeliveryCollector
from delivery import Outbox
from delivery.stats import SenderStats
from monitoring import metric_names as m


async def test_outbox_backlog_and_outage_are_measured(sqlite_db):
    clock = ManualClock(1_000.0)
    outbox = Outbox(sqlite_db, clock)
    await outbox.enqueue(-100, "<b>alert</b>", key="a1")
    clock.advance(30)
    await outbox.enqueue(-100, "second", key="a2")
    stats = SenderStats(sent=7, dead=1, rate_limited=2)
    sender = SimpleNamespace(stats=stats, outage_since=clock.time() - 120)
    collector = DeliveryCollector(outbox, sender, None, clock)

    samples = {s.name: s.value for s in await collector.collect(clock.time())}

    assert samples[m.OUTBOX_PENDING] == 2
    assert samples[m.OUTBOX_OLDEST_PENDING_SECONDS] == 30
    assert samples[m.OUTBOX_SENT_TOTAL] == 7 and samples[m.OUTBOX_DEAD_TOTAL] == 1
    assert samples[m.OUTBOX_RATE_LIMITED_TOTAL] == 2
    assert samples[m.TELEGRAM_OUTAGE_SECONDS] == 120
