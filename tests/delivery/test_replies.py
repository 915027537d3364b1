"""Command replies go through the outbox: durable, paced with the alerts, retried on 429 and 5xx.

The real aiogram client polls the fake Bot API server, which enforces Telegram's flood limits
(1 message/s per chat after a burst of 3) and answers 429 when they are exceeded.
"""
from __future__ import annotations

from tests.bot.frame_fixtures import buttons
from tests.bot.test_outbox import nothing_pending, until
from tests.delivery.conftest import ADMIN, ALERT_CHAT, VIEWER, ReplyWorld


def replies(world: ReplyWorld, chat_id: int) -> list[str]:
    return [m.plain for m in world.fake.sent(chat_id)]


async def test_four_replies_to_one_chat_are_paced_without_a_429(reply_world: ReplyWorld):
    fake = reply_world.fake
    for text in ("/start", "/help", "/start", "/help"):
        fake.user_sends(VIEWER, VIEWER, text)
    await fake.wait_for(lambda: len(fake.sent(VIEWER)) >= 4, 20)
    sent = replies(reply_world, VIEWER)
    assert len(sent) == 4
    assert sum("Your role: viewer" in t for t in sent) == 2 and sum("Commands" in t for t in sent) == 2
    assert fake.stats.provoked_429 == 0  # the bot spaced its own messages
    await until(lambda: nothing_pending(reply_world.bot.outbox), what="all marked sent")


async def test_replies_survive_a_429_storm_each_delivered_once(reply_world: ReplyWorld):
    fake = reply_world.fake
    fake.force_429(retry_after=1, count=4, methods=["sendMessage"])
    fake.user_sends(ADMIN, ADMIN, "/start")
    fake.user_sends(VIEWER, VIEWER, "/help")
    fake.user_sends(VIEWER, VIEWER, "/start")
    await fake.wait_for(lambda: len(fake.sent(ADMIN)) >= 1 and len(fake.sent(VIEWER)) >= 2, 30)
    assert fake.stats.forced_429 == 4  # every refusal was spent on our replies...
    assert len(replies(reply_world, ADMIN)) == 1 and "Your role: admin" in replies(reply_world, ADMIN)[0]
    viewer = replies(reply_world, VIEWER)
    assert len(viewer) == 2 and any("Commands" in t for t in viewer) and any("Your role" in t for t in viewer)
    assert reply_world.bot.sender.stats.rate_limited == 4  # ...and each one was honoured, none lost
    await until(lambda: nothing_pending(reply_world.bot.outbox), what="all marked sent")


async def test_replies_survive_a_5xx_phase_each_delivered_once(reply_world: ReplyWorld):
    fake = reply_world.fake
    fake.fail_next(3, status=502, description="Bad Gateway", methods=["sendMessage"])
    fake.user_sends(ADMIN, ADMIN, "/help")
    fake.user_sends(VIEWER, VIEWER, "/start")
    await fake.wait_for(lambda: fake.sent(ADMIN) and fake.sent(VIEWER), 30)
    assert fake.stats.injected_failures == 3
    assert [("Commands" in t) for t in replies(reply_world, ADMIN)] == [True]
    assert [("Your role: viewer" in t) for t in replies(reply_world, VIEWER)] == [True]
    assert reply_world.bot.sender.stats.temporary_errors == 3


async def test_a_redelivered_update_is_answered_once(reply_world: ReplyWorld):
    from aiogram.types import Update

    fake, running = reply_world.fake, reply_world.bot
    update = fake.user_sends(VIEWER, VIEWER, "/start")
    await fake.wait_for(lambda: fake.sent(VIEWER), 10)
    bot = running.runner.bot
    assert bot is not None
    again = Update.model_validate(update.model_dump(), context={"bot": bot})
    await running.runner.dp.feed_update(bot, again)  # e.g. a webhook retry of the same update
    await running.sender.drain_once()
    assert len(fake.sent(VIEWER)) == 1
    assert running.outbox.duplicates == 1


async def test_ping_test_message_during_a_fault_is_answered_once_and_arrives_after(reply_world: ReplyWorld):
    fake = reply_world.fake
    fake.user_sends(ADMIN, ADMIN, "/ping")
    await fake.wait_for(lambda: fake.sent(ADMIN), 15)
    ping = fake.sent(ADMIN)[0]
    assert "outbox" in ping.plain  # the checklist shows the sender's state too
    fake.fail_next(2, status=500, methods=["sendMessage"])  # Telegram fails to deliver messages
    query_id = fake.user_presses(ADMIN, ADMIN, ping.message_id, buttons(ping)["📨 Send test message"])
    await fake.wait_for(lambda: [a for a in fake.callback_answers if a["callback_query_id"] == query_id], 10)
    await fake.wait_for(lambda: fake.sent(ALERT_CHAT), 20)
    answers = [a for a in fake.callback_answers if a["callback_query_id"] == query_id]
    assert [a["text"] for a in answers] == ["Queued a test message to 1 chat(s); it arrives as soon as "
                                            "Telegram takes it."]
    assert fake.stats.injected_failures == 2
    assert [("this is a test message" in m.plain) for m in fake.sent(ALERT_CHAT)] == [True]
    assert reply_world.bot.runner.dp["parts"].errors == 0  # no "Something went wrong"
