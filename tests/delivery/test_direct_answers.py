"""Button answers and in-place edits stay direct (Telegram wants them within seconds) but a 429
or 5xx never crashes the handler: the press is answered once, with "try again" if needed."""
from __future__ import annotations

from tests.bot.frame_fixtures import buttons
from tests.delivery.conftest import ADMIN, ReplyWorld


async def press_and_answer(world: ReplyWorld, message_id: int, data: str) -> list[dict]:
    fake = world.fake
    query_id = fake.user_presses(ADMIN, ADMIN, message_id, data)
    await fake.wait_for(lambda: [a for a in fake.callback_answers if a["callback_query_id"] == query_id], 10)
    return [a for a in fake.callback_answers if a["callback_query_id"] == query_id]


async def test_refresh_during_429_and_5xx_answers_once_and_does_not_fail(reply_world: ReplyWorld):
    fake = reply_world.fake
    fake.user_sends(ADMIN, ADMIN, "/ping")
    await fake.wait_for(lambda: fake.sent(ADMIN), 15)
    ping = fake.sent(ADMIN)[0]
    rerun = buttons(ping)["🔄 Run again"]

    fake.force_429(retry_after=7, methods=["editMessageText"])
    answers = await press_and_answer(reply_world, ping.message_id, rerun)
    assert [a["text"] for a in answers] == ["Telegram is busy; try again in 7s."]

    fake.fail_next(1, status=502, description="Bad Gateway", methods=["editMessageText"])
    answers = await press_and_answer(reply_world, ping.message_id, rerun)
    assert [a["text"] for a in answers] == ["Telegram did not take the update; try again in a moment."]

    fake.force_429(retry_after=1, methods=["answerCallbackQuery"])  # short enough to wait out
    answers = await press_and_answer(reply_world, ping.message_id, rerun)
    assert len(answers) == 1 and answers[0]["text"] in ("Checked again.", "Already up to date.")
    assert reply_world.bot.runner.dp["parts"].errors == 0
