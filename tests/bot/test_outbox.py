"""The outbox end to end: real DB (SQLite and PostgreSQL), real aiogram Bot, fake Bot API server."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from sqlmodel import select

from app.clock import SYSTEM_CLOCK
from app.settings import Settings
from delivery.models import CRITICAL, DEAD, PENDING, SENT, SUPERSEDED, WARNING, OutboxMessage
from delivery import BotTransport, Outbox, OutboxError, OutboxSender
from delivery.html import esc
from simulator.telegram_html import MESSAGE_LIMIT, utf16_units, visible_text
from tests.bot.telegram_harness import telegram_harness

FAST = dict(outbox_global_per_s=1000.0, outbox_chat_per_s=1000.0, outbox_group_per_min=1000.0)


def fast_settings(**overrides) -> Settings:
    return Settings(**{**FAST, **overrides})


@asynccontextmanager
async def outbox_world(db, *, enforce_limits=False, settings=None, **sender_kwargs):
    """Fake Telegram + real Bot + Outbox + OutboxSender (not running yet)."""
    async with telegram_harness(enforce_limits=enforce_limits) as (fake, bot):
        for chat in (42, 43):
            fake.add_chat(chat)
        fake.add_chat(-100, "supergroup", title="ops")
        outbox = Outbox(db, SYSTEM_CLOCK)
        kwargs = dict(retry_base_s=0.02, retry_max_s=0.1, poll_interval_s=0.05)
        kwargs.update(sender_kwargs)
        sender = OutboxSender(db, outbox, BotTransport(bot), settings or fast_settings(), SYSTEM_CLOCK, **kwargs)
        yield fake, outbox, sender


@asynccontextmanager
async def running(sender: OutboxSender):
    task = asyncio.create_task(sender.run())
    try:
        yield task
    finally:
        await sender.stop()
        await asyncio.wait_for(task, 5)


async def until(cond: Callable, timeout: float = 10.0, what: str = "condition"):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.02)


async def rows(db) -> dict[str, OutboxMessage]:
    async def fetch(session):
        return {r.idempotency_key: r for r in (await session.exec(select(OutboxMessage))).all()}

    return await db.run(fetch)


async def nothing_pending(outbox: Outbox) -> bool:
    return await outbox.pending_count() == 0


# --------------------------------------------------------------------------- store


async def test_enqueue_is_idempotent_and_reports_backlog(db, clock):
    outbox = Outbox(db, clock)
    assert await outbox.enqueue(42, "<b>first</b>", key="k1") is True
    assert await outbox.enqueue(42, "<b>changed</b>", key="k1") is False
    assert await outbox.oldest_pending_age() == 0.0
    clock.advance(30)
    await outbox.enqueue(43, "second", key="k2", priority=CRITICAL, reply_markup={"inline_keyboard": []})
    assert await outbox.pending_count() == 2
    assert await outbox.oldest_pending_age() == 30.0
    assert (await outbox.get("k1")).text == "<b>first</b>"
    assert outbox.duplicates == 1

    for bad in (dict(chat_id=42, text="  ", key="k3"), dict(chat_id=42, text="x", key=""),
                dict(chat_id=42, text="x", key="k" * 129), dict(chat_id=42, text="x", key="k4", priority=9)):
        with pytest.raises(OutboxError):
            await outbox.enqueue(bad.pop("chat_id"), bad.pop("text"), **bad)
    with pytest.raises(OutboxError, match="not in the outbox"):
        await outbox.enqueue_edit(42, target_key="missing", text="x", key="e1")
    assert outbox.rejected == 5
    assert await outbox.pending_count() == 2


async def test_pending_edits_merge_into_the_latest(db):
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(42, "price 1", key="card", priority=WARNING)
        for n in (2, 3, 4):
            assert await outbox.enqueue_edit(42, target_key="card", text=f"price {n}", key=f"card:{n}")
        state = await rows(db)
        assert [state[f"card:{n}"].status for n in (2, 3, 4)] == [SUPERSEDED, SUPERSEDED, PENDING]
        assert state["card:4"].priority == WARNING  # inherits the target's priority
        async with running(sender):
            await until(lambda: nothing_pending(outbox), what="drained")
        [card] = fake.sent(42)
        assert card.text == "price 4"
        assert [e.text for e in card.edits] == ["price 4"]
        state = await rows(db)
        assert state["card:4"].status == SENT and state["card"].telegram_message_id == card.message_id


# --------------------------------------------------------------------------- delivery


async def test_critical_first_then_in_order_per_chat(db):
    async with outbox_world(db) as (fake, outbox, sender):
        for i in range(3):
            await outbox.enqueue(42, f"info {i}", key=f"i42:{i}")
            await outbox.enqueue(-100, f"info {i}", key=f"i100:{i}")
        await outbox.enqueue(42, "warn", key="w42", priority=WARNING)
        await outbox.enqueue(42, "<b>CRIT</b>", key="c42", priority=CRITICAL)
        while await sender.drain_once():
            pass
        assert [m.plain for m in fake.sent(42)] == ["CRIT", "warn", "info 0", "info 1", "info 2"]
        assert [m.plain for m in fake.sent(-100)] == ["info 0", "info 1", "info 2"]
        assert await outbox.pending_count() == 0
        assert sender.stats.sent == 8


async def test_429_is_honoured_and_message_delivered_once(db):
    async with outbox_world(db) as (fake, outbox, sender):
        fake.force_429(retry_after=1, count=1)
        await outbox.enqueue(42, "after flood control", key="f1")
        async with running(sender):
            await until(lambda: nothing_pending(outbox), what="drained")
        assert [m.text for m in fake.sent(42)] == ["after flood control"]
        # exactly one refused call and one successful one: no hammering during retry_after
        assert fake.stats.by_method["sendmessage"] == 2
        assert sender.stats.rate_limited == 1


async def test_server_errors_are_retried_until_delivered(db):
    async with outbox_world(db) as (fake, outbox, sender):
        fake.fail_next(3, status=500)
        await outbox.enqueue(42, "survives 5xx", key="s1", priority=CRITICAL)
        async with running(sender):
            await until(lambda: nothing_pending(outbox), what="drained")
        assert [m.text for m in fake.sent(42)] == ["survives 5xx"]
        row = (await rows(db))["s1"]
        assert row.status == SENT and row.attempts == 4 and row.telegram_message_id == fake.sent(42)[0].message_id
        assert sender.stats.temporary_errors == 3


async def test_unparseable_html_is_resent_as_plain_text(db):
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(42, "<b>broken & unescaped", key="bad-html")  # our validator catches it
        await sender.drain_once()
        fake.fail_next(1, status=400, description="Bad Request: can't parse entities: Unsupported start tag",
                       methods=["sendMessage"])
        await outbox.enqueue(43, "<b>Telegram refuses this one</b>", key="refused")  # Telegram does
        while await sender.drain_once():
            pass
        assert [(m.text, m.parse_mode) for m in fake.sent(42)] == [("broken & unescaped", None)]
        assert [(m.text, m.parse_mode) for m in fake.sent(43)] == [("Telegram refuses this one", None)]
        state = await rows(db)
        assert state["bad-html"].plain_fallback and state["refused"].plain_fallback
        assert state["refused"].status == SENT


async def test_long_text_is_split_into_valid_messages(db):
    names = ["<script>", "🚀 MOON", "\u202eRTL", "A&B", "x" * 200]
    lines = [f"{i}. <b>{esc(names[i % len(names)])}</b> <code>{i * 1.5}</code>" for i in range(400)]
    text = "<i>" + "\n".join(lines) + "</i>"
    expected = [f"{i}. {names[i % len(names)]} {i * 1.5}" for i in range(400)]
    # judged by what the fake server (an independent oracle) received, not by our own splitter
    assert utf16_units("\n".join(expected)) > 2 * MESSAGE_LIMIT
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(42, text, key="report")
        async with running(sender):
            await until(lambda: nothing_pending(outbox), what="drained")
        parts = fake.sent(42)
        assert fake.refusals == []  # Telegram accepted every piece as it came
        assert len(parts) >= 3 and all(p.parse_mode == "HTML" for p in parts)
        assert all(utf16_units(visible_text(p.text)) <= MESSAGE_LIMIT for p in parts)
        # whole lines, in order, each exactly once: every cut fell on a line break
        assert [line for p in parts for line in visible_text(p.text).split("\n")] == expected
        assert (await rows(db))["report"].telegram_message_id == parts[0].message_id


async def test_edit_of_unchanged_text_counts_as_delivered_and_refusals_are_dead(db):
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(42, "same", key="orig")
        await outbox.enqueue(777, "nobody here", key="lost")
        fake.block_bot(43)
        await outbox.enqueue(43, "blocked", key="blocked")
        while await sender.drain_once():
            pass
        message_id = fake.sent(42)[0].message_id
        await outbox.enqueue_edit(42, message_id=message_id, text="same", key="noop-edit")
        await sender.drain_once()
        state = await rows(db)
        assert state["noop-edit"].status == SENT
        assert state["lost"].status == DEAD and "chat not found" in state["lost"].last_error
        assert state["blocked"].status == DEAD and "Forbidden" in state["blocked"].last_error
        assert sender.stats.not_modified == 1 and sender.stats.dead == 2


async def test_photo_with_caption(db):
    async with outbox_world(db) as (fake, outbox, sender):
        await outbox.enqueue(-100, "<b>liquidity</b> 24h", key="chart", photo=b"\x89PNG...")
        await sender.drain_once()
        [msg] = fake.sent(-100)
        assert msg.photo == b"\x89PNG..." and msg.plain == "liquidity 24h"


async def test_pacing_keeps_under_telegram_limits(sqlite_db):
    settings = Settings()  # the real limits: 1/s per chat, 20/min per group, 30/s overall
    async with outbox_world(sqlite_db, enforce_limits=True, settings=settings) as (fake, outbox, sender):
        for i in range(5):
            await outbox.enqueue(42, f"a{i}", key=f"a{i}")
            await outbox.enqueue(43, f"b{i}", key=f"b{i}")
        async with running(sender):
            await until(lambda: nothing_pending(outbox), timeout=20, what="drained")
        assert [m.text for m in fake.sent(42)] == [f"a{i}" for i in range(5)]
        assert [m.text for m in fake.sent(43)] == [f"b{i}" for i in range(5)]
        assert fake.stats.provoked_429 == 0


# --------------------------------------------------------------------------- outage


@asynccontextmanager
async def webhook_receiver():
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("outage_s", [1.5])
async def test_outage_with_restart_loses_nothing_duplicates_nothing(db, outage_s):
    async with webhook_receiver() as (hook_url, posted):
        settings = fast_settings(telegram_outage_fallback_after_s=0.3, fallback_webhook_url=hook_url)
        knobs = dict(outage_notice_after_s=0.3, fallback_retry_s=0.05)
        async with outbox_world(db, settings=settings, **knobs) as (fake, outbox, sender):
            fake.set_outage(True, mode="drop")
            loop = asyncio.get_running_loop()
            outage_ends = loop.time() + outage_s
            for i in range(4):
                await outbox.enqueue(42, f"crit {i}", key=f"c42:{i}", priority=CRITICAL)
                await outbox.enqueue(-100, f"info {i}", key=f"i100:{i}")
            async with running(sender):
                await until(lambda: len(posted) >= 4, what="first fallback posts")

            # restart: a new Outbox and OutboxSender on the same database, mid-outage
            fake.set_outage(True, mode="502")
            outbox2 = Outbox(db, SYSTEM_CLOCK)
            sender2 = OutboxSender(db, outbox2, sender.transport, settings, SYSTEM_CLOCK,
                                   retry_base_s=0.02, retry_max_s=0.1, poll_interval_s=0.05, **knobs)
            async with running(sender2):
                await outbox2.enqueue(-100, "<b>late crit</b>", key="c100:late", priority=CRITICAL)
                await until(lambda: len(posted) >= 5, what="fallback for the row queued after restart")
                await asyncio.sleep(max(0.0, outage_ends - loop.time()))
                fake.set_outage(False)
                await until(lambda: nothing_pending(outbox2), what="backlog drained")

        texts_42 = [m.plain for m in fake.sent(42)]
        texts_100 = [m.plain for m in fake.sent(-100)]
        # every message exactly once, critical first, in order; the notice (a warning) follows the
        # critical alerts of its chat
        assert texts_42[-1].startswith("⚠️ Telegram was unreachable")
        assert [t for t in texts_42 if not t.startswith("⚠️")] == [f"crit {i}" for i in range(4)]
        assert [t for t in texts_100 if not t.startswith("⚠️")] == ["late crit"] + [f"info {i}" for i in range(4)]
        # one delayed-messages notice per affected chat, with the count
        notices_42 = [t for t in texts_42 if t.startswith("⚠️")]
        notices_100 = [t for t in texts_100 if t.startswith("⚠️")]
        assert len(notices_42) == 1 and "4 messages to this chat were delayed" in notices_42[0]
        assert len(notices_100) == 1 and "5 messages to this chat were delayed" in notices_100[0]
        # the fallback webhook got each critical row exactly once, info rows never
        assert sorted(p["key"] for p in posted) == ["c100:late", "c42:0", "c42:1", "c42:2", "c42:3"]
        assert {p["text"] for p in posted} >= {"late crit", "crit 0"}
        state = await rows(db)
        assert all(r.status == SENT for r in state.values())
        assert all(state[k].fallback_sent for k in ("c42:0", "c100:late"))
        assert not state["i100:0"].fallback_sent


async def test_hostile_names_are_delivered_as_html_without_fallback(db):
    names = ["<script>alert(1)</script>", "A&B &amp; <b>", "\u202eRTL\u200f", "🚀" * 50, "x" * 200, 'q"uote']
    async with outbox_world(db) as (fake, outbox, sender):
        for i, name in enumerate(names):
            await outbox.enqueue(42, f"<b>{esc(name)}</b> score <code>{i}</code>", key=f"n{i}")
        while await sender.drain_once():
            pass
        sent = fake.sent(42)
        assert [m.plain for m in sent] == [f"{name} score {i}" for i, name in enumerate(names)]
        assert all(m.parse_mode == "HTML" for m in sent)
        assert sender.stats.plain_fallbacks == 0


async def test_junk_keyboard_and_crashing_rows_do_not_block_a_chat(db):
    class Flaky(BotTransport):
        async def send_text(self, chat_id, text, **kwargs):
            if "boom" in text:
                raise RuntimeError("bug in a transport")
            return await super().send_text(chat_id, text, **kwargs)

    async with outbox_world(db) as (fake, outbox, sender):
        sender.transport = Flaky(sender.transport.bot)
        await outbox.enqueue(42, "boom", key="crash")
        await outbox.enqueue(42, "with a junk keyboard", key="junk-kb", reply_markup={"inline_keyboard": "nope"})
        async with running(sender):
            await until(lambda: nothing_pending(outbox), what="drained")
        assert [(m.text, m.reply_markup) for m in fake.sent(42)] == [("with a junk keyboard", None)]
        state = await rows(db)
        assert state["crash"].status == DEAD and "bug in a transport" in state["crash"].last_error
