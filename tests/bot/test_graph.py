"""/graph and /dashboard end to end: the real aiogram client polls the fake Bot API server,
pictures and dashboard edits go out through the real outbox and sender."""
from __future__ import annotations

import asyncio
import time

import pytest

from app.clock import SYSTEM_CLOCK
from bot.context import BotContext
from bot.routers.dashboard import NO_PIN_RIGHTS, DashboardKeeper
from bot.routers.graph import ALREADY_DRAWING, build_pictures, worker_of
from bot.runner import BotRunner
from delivery import Outbox, OutboxSender
from monitoring import metric_names as m
from monitoring.sample import Sample
from monitoring.store import MetricStore
from simulator.telegram_api import ApiError
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import ADMIN, ALERT_CHAT, STRANGER, VIEWER, buttons, press, say
from tests.bot.test_outbox import nothing_pending, until
from tests.charts.history import craft_history, craft_incidents, craft_transitions

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def live(fake, frame_settings, sqlite_db):
    """A running bot with metrics, the outbox and its sender, and the picture parts (real clock:
    the sender paces by it)."""
    now = time.time()
    ctx = BotContext(settings=frame_settings, db=sqlite_db, clock=SYSTEM_CLOCK, started_at=now)
    ctx.metrics = MetricStore(sqlite_db, SYSTEM_CLOCK)
    await craft_history(ctx.metrics, now)
    await craft_transitions(sqlite_db, now)
    runner = BotRunner(ctx, polling_timeout=1)
    await runner.start()
    ctx.outbox = Outbox(sqlite_db, SYSTEM_CLOCK)
    sender = OutboxSender(sqlite_db, ctx.outbox, runner.transport(), frame_settings, SYSTEM_CLOCK,
                          poll_interval_s=0.1)
    task = asyncio.create_task(sender.run())
    pictures = await build_pictures(ctx)
    yield ctx
    await pictures.stop()
    await sender.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await runner.stop()


def add_pin_method(fake, can_pin: set[int]) -> list[tuple[int, int]]:
    """Teach this fake ``pinChatMessage`` as documented: always allowed in private chats, in
    groups only with the pin right (here: the chats in ``can_pin``)."""
    pinned: list[tuple[int, int]] = []

    async def _m_pinchatmessage(bot, params, at):
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        chat = fake._chat(chat_id)
        if chat.type != "private" and chat_id not in can_pin:
            raise ApiError(400, "Bad Request: not enough rights to manage pinned messages in the chat")
        pinned.append((chat_id, message_id))
        return True

    fake._m_pinchatmessage = _m_pinchatmessage
    return pinned


async def next_photo(fake, chat_id: int, before: int):
    await fake.wait_for(lambda: any(msg.photo for msg in fake.sent(chat_id)[before:]), 20)
    return next(msg for msg in fake.sent(chat_id)[before:] if msg.photo)


async def test_graph_sends_a_captioned_picture_with_preset_and_range_buttons(fake, live):
    fake.user_sends(VIEWER, VIEWER, "/graph health 24h")
    photo = await next_photo(fake, VIEWER, 0)
    assert photo.photo.startswith(PNG)
    caption = photo.plain
    assert caption.startswith("Health · last 24h")
    assert "Memory (resident) (RSS): now" in caption and "trend +" in caption and "effective limit in ~" in caption
    keys = buttons(photo)
    assert {"• health", "processing", "activation", "api", "flow", "1h", "6h", "• 24h", "7d"} <= set(keys)

    # a button switches the preset (a new picture arrives; the range stays)
    before = len(fake.sent(VIEWER))
    answer = await press(fake, VIEWER, VIEWER, photo.message_id, keys["flow"])
    assert answer["text"].startswith("Drawing flow 24h")
    flow = await next_photo(fake, VIEWER, before)
    assert flow.plain.startswith("Token flow · last 24h")
    assert "monitoring→active 3" in flow.plain and "activation success rate: 60%" in flow.plain

    # and the range
    before = len(fake.sent(VIEWER))
    await press(fake, VIEWER, VIEWER, flow.message_id, buttons(flow)["1h"])
    short = await next_photo(fake, VIEWER, before)
    assert short.plain.startswith("Token flow · last 1h")


async def test_graph_alerts_draws_the_incident_timeline_and_says_when_there_is_none(fake, live):
    msg = await say(fake, VIEWER, VIEWER, "/graph alerts 24h")
    assert msg.plain == "Alerts over 24h: no incidents in this range"
    assert not any(x.photo for x in fake.sent(VIEWER))
    await craft_incidents(live.db, time.time())
    before = len(fake.sent(VIEWER))
    fake.user_sends(VIEWER, VIEWER, "/graph alerts 6h")
    photo = await next_photo(fake, VIEWER, before)
    assert photo.photo.startswith(PNG)
    assert photo.plain.startswith("Alerts · last 6h\n3 incidents (1 critical, 2 warning), 1 still open")
    assert "market_api_down critical: fired 1×" in photo.plain
    assert "• alerts" in buttons(photo)
    # the metric pictures now mention the shaded incidents and the maintenance window
    before = len(fake.sent(VIEWER))
    await press(fake, VIEWER, VIEWER, photo.message_id, buttons(photo)["health"])
    health = await next_photo(fake, VIEWER, before)
    assert "shaded: 3 incidents (1 critical, 2 warning), 1 open; maintenance 20m 00s" in health.plain


async def test_a_metric_name_works_and_an_unknown_one_gets_the_closest(fake, live):
    fake.user_sends(VIEWER, VIEWER, "/graph tokenwatch_process_cpu_share 6h")
    photo = await next_photo(fake, VIEWER, 0)
    assert photo.plain.startswith("tokenwatch_process_cpu_share · last 6h")
    msg = await say(fake, VIEWER, VIEWER, "/graph tokenwatch_memory_rss_bytes 6h")
    assert "Unknown preset or metric: tokenwatch_memory_rss_bytes" in msg.plain
    assert "Closest: tokenwatch_" in msg.plain
    bad_range = await say(fake, VIEWER, VIEWER, "/graph health 3w")
    assert "Unknown range" in bad_range.plain and "1h, 6h, 24h, 7d" in bad_range.plain


async def test_too_little_history_is_said_not_drawn(fake, live):
    now = time.time()
    await live.metrics.write([Sample(m.REDIS_PING_SECONDS, 0.001, ts=now - 30 + i) for i in range(3)])
    msg = await say(fake, VIEWER, VIEWER, "/graph redis_ping_seconds 1h")
    assert "not enough data yet: 3 points since" in msg.plain
    assert not any(x.photo for x in fake.sent(VIEWER))


async def test_a_repeat_while_drawing_is_answered_not_queued(fake, live):
    worker = worker_of(live)
    with worker.slot(VIEWER):  # this chat's graph is being drawn
        msg = await say(fake, VIEWER, VIEWER, "/graph")
        assert msg.plain == ALREADY_DRAWING
    assert await live.outbox.pending_count() == 0  # nothing was queued for later
    assert not any(x.photo for x in fake.sent(VIEWER))
    fake.user_sends(VIEWER, VIEWER, "/graph")  # once the slot is free, it draws
    await next_photo(fake, VIEWER, 0)
    assert sum(1 for x in fake.sent(VIEWER) if x.photo) == 1


async def test_strangers_presses_are_refused(fake, live):
    fake.user_sends(VIEWER, VIEWER, "/graph")
    photo = await next_photo(fake, VIEWER, 0)
    # Telegram has the photo; its outbox row is marked sent just after: wait for that, so that
    # "nothing pending" below speaks of the presses only
    await until(lambda: nothing_pending(live.outbox), what="the photo's row marked sent")
    before = len(fake.sent(VIEWER))
    answer = await press(fake, VIEWER, STRANGER, photo.message_id, buttons(photo)["health"])
    assert answer.get("show_alert") and "Drawing" not in answer["text"]
    forged = await press(fake, VIEWER, VIEWER, photo.message_id, "gr:health:24h:AAAAAAAA")
    assert "Drawing" not in (forged.get("text") or "")
    assert await live.outbox.pending_count() == 0
    assert len(fake.sent(VIEWER)) == before


async def test_dashboard_posts_edits_on_change_only_survives_restart_and_stops(fake, live):
    msg = await say(fake, ALERT_CHAT, ADMIN, "/dashboard")
    assert "tokenwatch dashboard" in msg.plain and "tokens monitoring" in msg.plain
    assert any(ch in msg.plain for ch in "▁▂▃▄▅▆▇█")
    assert {"📌 Pin", "⏹ Stop"} <= set(buttons(msg))
    keeper = live.dashboards
    assert keeper is not None
    assert [j.id for j in keeper.jobs()] == ["bot.dashboard"] and keeper.jobs()[0].interval_s == 30

    assert await keeper.refresh() == 0  # nothing changed: no edit
    now = time.time()
    await live.metrics.write([Sample(m.TOKENS, 4242.0, {"status": "monitoring"}, ts=now)])
    assert await keeper.refresh() == 1
    await fake.wait_for(lambda: "4,242" in fake.sent(ALERT_CHAT)[-1].plain, 10)
    assert len(fake.sent(ALERT_CHAT)) == 1 and len(msg.edits) == 1
    assert {"📌 Pin", "⏹ Stop"} <= set(buttons(msg))  # the edit keeps the buttons

    # a restart: a fresh keeper reads the table and edits the same message
    live.dashboards = None
    restarted = DashboardKeeper(live)
    await live.metrics.write([Sample(m.TOKENS, 4343.0, {"status": "monitoring"}, ts=time.time())])
    assert await restarted.refresh() == 1
    await fake.wait_for(lambda: "4,343" in fake.sent(ALERT_CHAT)[-1].plain, 10)
    assert len(fake.sent(ALERT_CHAT)) == 1 and len(msg.edits) == 2

    live.dashboards = restarted
    stopped = await say(fake, ALERT_CHAT, ADMIN, "/dashboard off")
    assert stopped.plain == "Dashboard stopped."
    await fake.wait_for(lambda: "stopped at" in msg.plain, 10)
    assert buttons(msg) == {}
    await live.metrics.write([Sample(m.TOKENS, 1.0, {"status": "monitoring"}, ts=time.time())])
    assert await restarted.refresh() == 0


async def test_dashboard_pin_button(fake, live):
    pinned = add_pin_method(fake, can_pin=set())
    mine = await say(fake, VIEWER, VIEWER, "/dashboard")
    answer = await press(fake, VIEWER, VIEWER, mine.message_id, buttons(mine)["📌 Pin"])
    assert answer["text"] == "📌 Pinned." and pinned == [(VIEWER, mine.message_id)]
    group = await say(fake, ALERT_CHAT, ADMIN, "/dashboard")
    refused = await press(fake, ALERT_CHAT, ADMIN, group.message_id, buttons(group)["📌 Pin"])
    assert refused["text"] == NO_PIN_RIGHTS and refused.get("show_alert")
    assert len(pinned) == 1


async def test_a_second_dashboard_replaces_the_first(fake, live):
    first = await say(fake, VIEWER, VIEWER, "/dashboard")
    second = await say(fake, VIEWER, VIEWER, "/dashboard")
    assert second.message_id != first.message_id
    await fake.wait_for(lambda: "replaced by a newer dashboard below" in first.plain, 10)
    assert buttons(first) == {} and {"📌 Pin", "⏹ Stop"} <= set(buttons(second))
    await live.metrics.write([Sample(m.TOKENS, 777.0, {"status": "monitoring"}, ts=time.time())])
    assert await live.dashboards.refresh() == 1
    await fake.wait_for(lambda: "777" in second.plain, 10)
    assert "777" not in first.plain
    answer = await press(fake, VIEWER, VIEWER, second.message_id, buttons(second)["⏹ Stop"])
    assert answer["text"] == "Dashboard stopped."
