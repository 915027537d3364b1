"""The outbox with photos, edits, upgraded groups and restarts: real database (SQLite and
PostgreSQL), real aiogram Bot, and the fake Bot API server judging what arrives."""
from __future__ import annotations

import logging

from delivery import BotTransport, OutboxSender
from delivery.html import esc
from delivery.models import DEAD, SENT
from delivery.transport import TemporaryError
from simulator.telegram_html import MESSAGE_LIMIT, utf16_units, visible_text
from tests.bot.test_outbox import fast_settings, nothing_pending, outbox_world, rows, running, until


# --------------------------------------------------------------------------- photo captions


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


# --------------------------------------------------------------------------- editing a photo alert


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


# --------------------------------------------------------------------------- a group upgraded to a supergroup


async def test_alerts_to_an_upgraded_group_follow_it_to_the_supergroup(db, caplog):
    async with outbox_world(db) as (fake, outbox, sender):
        fake.add_chat(-5, "group", title="ops")
        fake.migrate_chat(-5, -1005)
        await outbox.enqueue(-5, "<b>first</b> alert", key="a1")
        await outbox.enqueue(-5, "second alert", key="a2")
        with caplog.at_level(logging.ERROR, logger="delivery.row_delivery"):
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


# --------------------------------------------------------------------------- edits of superseded edits


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


# --------------------------------------------------------------------------- a restart in the middle of a split message


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
