"""Access control, forged/stale buttons and the per-user rate limit, end to end over the fake server."""
from __future__ import annotations

import pytest

from bot.callbacks import CallbackSigner, JobsAction, JobsCb, PingAction, PingCb, StatusAction, StatusCb
from bot.runner import BotRunner
from bot.routers.fallback import UNKNOWN_BUTTON
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import ADMIN, ALERT_CHAT, GROUP_MEMBER, STRANGER, VIEWER, buttons, press, say


async def test_stranger_is_refused_and_nothing_changes(fake, running_bot, frame_ctx):
    for command in ("/status", "/jobs", "/ping", "/start"):
        msg = await say(fake, STRANGER, STRANGER, command)
        assert msg.plain == "Not authorised."
    assert len(fake.sent(STRANGER)) == 4
    assert fake.sent(ALERT_CHAT) == []
    assert running_bot.dp["parts"].access.refused == 4


async def test_stranger_chatter_is_ignored(fake, running_bot):
    fake.user_sends(STRANGER, STRANGER, "hello bot")
    msg = await say(fake, STRANGER, STRANGER, "/help")  # the next reply is to /help, not to the chatter
    assert msg.plain == "Not authorised."
    assert len(fake.sent(STRANGER)) == 1


async def test_stranger_pressing_a_forwarded_admin_button_is_refused(fake, running_bot, frame_ctx):
    jobs = await say(fake, ADMIN, ADMIN, "/jobs")
    run = buttons(jobs)["▶ pipeline.probe"]
    # a stranger presses the admin's button (a forwarded copy keeps the buttons' data)
    answer = await press(fake, ADMIN, STRANGER, jobs.message_id, run)
    assert answer["text"] == "Not authorised." and answer["show_alert"]
    assert frame_ctx.probe.runs == 0


async def test_viewer_cannot_press_admin_buttons(fake, running_bot, frame_ctx):
    jobs = await say(fake, ALERT_CHAT, ADMIN, "/jobs@tokenwatch_test_bot")
    answer = await press(fake, ALERT_CHAT, VIEWER, jobs.message_id, buttons(jobs)["▶ pipeline.probe"])
    assert answer["text"] == "Only admins can do that."
    member = await press(fake, ALERT_CHAT, GROUP_MEMBER, jobs.message_id, buttons(jobs)["▶ pipeline.probe"])
    assert member["text"] == "Only admins can do that."
    ping = await say(fake, ALERT_CHAT, GROUP_MEMBER, "/ping@tokenwatch_test_bot")
    test = await press(fake, ALERT_CHAT, GROUP_MEMBER, ping.message_id, buttons(ping)["📨 Send test message"])
    assert test["text"] == "Only admins can do that."
    assert frame_ctx.probe.runs == 0
    assert not any("test message" in m.plain for m in fake.sent(ALERT_CHAT))
    # the viewer may still refresh
    ok = await press(fake, ALERT_CHAT, VIEWER, jobs.message_id, buttons(jobs)["🔄 Refresh"])
    assert ok["text"] in ("Refreshed.", "Already up to date.")


@pytest.mark.parametrize("data", [
    "st:r",                         # right prefix, no signature
    "st:r:AAAAAAAA",                # forged signature
    "zz:r:AAAAAAAA",                # unknown prefix
    "jb:run:pipeline.probe:0",      # unsigned admin action
    "",                             # empty
    "<b>&amp;</b>\u202e🚀",        # junk
])
async def test_forged_callback_data_changes_nothing(fake, running_bot, frame_ctx, data):
    msg = await say(fake, ADMIN, ADMIN, "/status")
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, data)
    assert (answer["text"], answer["show_alert"]) == (UNKNOWN_BUTTON, True)
    assert msg.edits == [] and len(fake.sent(ADMIN)) == 1
    assert frame_ctx.probe.runs == 0


async def test_tampered_prefix_of_a_real_button_is_refused(fake, running_bot, frame_ctx):
    msg = await say(fake, ADMIN, ADMIN, "/jobs")
    real = buttons(msg)["▶ pipeline.probe"]
    tampered = "st" + real[2:]           # keep the signature, change the family
    other_job = real.replace("pipeline.probe", "pipeline.other")
    for data in (tampered, other_job):
        answer = await press(fake, ADMIN, ADMIN, msg.message_id, data)
        assert (answer["text"], answer["show_alert"]) == (UNKNOWN_BUTTON, True)
    assert frame_ctx.probe.runs == 0


async def test_expired_admin_button_does_nothing(fake, running_bot, frame_ctx):
    msg = await say(fake, ADMIN, ADMIN, "/jobs")
    frame_ctx.clock.advance(2 * 3600)
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["▶ pipeline.probe"])
    assert (answer["text"], answer["show_alert"]) == ("This button has expired; send /jobs again.", True)
    assert frame_ctx.probe.runs == 0


async def test_refresh_on_a_deleted_message_asks_to_resend(fake, running_bot):
    msg = await say(fake, VIEWER, VIEWER, "/status")
    await running_bot.bot.delete_message(VIEWER, msg.message_id)
    answer = await press(fake, VIEWER, VIEWER, msg.message_id, buttons(msg)["🔄 Refresh"])
    assert answer["text"] == "This message can't be updated any more; send /status again."
    assert msg.edits == []


async def test_rate_limit_says_slow_down_once_per_window(fake, frame_ctx):
    frame_ctx.settings.command_rate_limit_per_min = 3
    runner = BotRunner(frame_ctx, polling_timeout=1)
    await runner.start()
    try:
        for _ in range(3):
            await say(fake, VIEWER, VIEWER, "/help")
        slow = await say(fake, VIEWER, VIEWER, "/help")
        assert slow.plain.startswith("Slow down")
        fake.user_sends(VIEWER, VIEWER, "/help")
        fake.user_sends(VIEWER, VIEWER, "/help")
        other = await say(fake, ADMIN, ADMIN, "/help")  # others are not affected
        assert "Commands" in other.plain
        assert len(fake.sent(VIEWER)) == 4  # 3 answers + one "slow down", nothing for the extra two
        assert runner.dp["parts"].throttle.dropped == 3
        frame_ctx.clock.advance(61)
        again = await say(fake, VIEWER, VIEWER, "/help")
        assert "Commands" in again.plain
    finally:
        await runner.stop()


def test_every_button_fits_telegram_limits():
    signer = CallbackSigner(b"k")
    for cb in (StatusCb(action=StatusAction.REFRESH), JobsCb(action=JobsAction.RUN, job="x" * 30, ts=2_000_000_000),
               PingCb(action=PingAction.TEST, ts=2_000_000_000)):
        assert len(signer.pack(cb).encode()) <= 64
    with pytest.raises(ValueError):
        signer.pack(JobsCb(action=JobsAction.RUN, job="x" * 60, ts=1))


async def test_commands_for_other_bots_in_a_group_are_ignored(fake, running_bot):
    fake.add_chat(-100777, "supergroup", title="other group", members=[STRANGER])
    fake.user_sends(-100777, STRANGER, "/status@some_other_bot")
    fake.user_sends(-100777, STRANGER, "/frob@some_other_bot")
    refusal = await say(fake, -100777, STRANGER, "/status@tokenwatch_test_bot")
    assert refusal.plain == "Not authorised."
    assert len(fake.sent(-100777)) == 1


async def test_commands_in_photo_captions_are_rate_limited(fake, frame_ctx):
    frame_ctx.settings.command_rate_limit_per_min = 2
    runner = BotRunner(frame_ctx, polling_timeout=1)
    await runner.start()
    try:
        for _ in range(2):
            before = len(fake.sent(STRANGER))
            fake.user_sends(STRANGER, STRANGER, "/status", as_caption=True)
            await fake.wait_for(lambda: len(fake.sent(STRANGER)) > before, 10)
        slow = await _say_caption(fake, STRANGER, "/status")
        assert slow.plain.startswith("Slow down")
        for _ in range(5):
            fake.user_sends(STRANGER, STRANGER, "/status", as_caption=True)
        await say(fake, VIEWER, VIEWER, "/help")  # a sync point: everything before it was handled
        assert len(fake.sent(STRANGER)) == 3  # 2 refusals + one "slow down", nothing for the rest
        assert runner.dp["parts"].throttle.dropped == 6
    finally:
        await runner.stop()


async def _say_caption(fake, user_id: int, text: str):
    before = len(fake.sent(user_id))
    fake.user_sends(user_id, user_id, text, as_caption=True)
    await fake.wait_for(lambda: len(fake.sent(user_id)) > before, 10)
    return fake.sent(user_id)[before]


async def test_strangers_bare_commands_in_groups_get_no_refusal(fake, running_bot):
    fake.add_chat(-100778, "supergroup", title="busy group", members=[STRANGER])
    fake.user_sends(-100778, STRANGER, "/status")  # maybe meant for another bot: ignore quietly
    fake.user_sends(-100778, STRANGER, "/help arg")
    refusal = await say(fake, -100778, STRANGER, "/status@tokenwatch_test_bot")
    assert refusal.plain == "Not authorised."
    assert len(fake.sent(-100778)) == 1
