"""/tune's Controls and the self-healing announcements through the running bot and the fake Bot
API server, against the REAL recovery layer (``build_recovery`` over a real, unstarted pipeline's
timeouts and batch size, on the frame's SQLite database and manual clock). Controllers' actions are
made as a controller makes them: ``ctx.knobs.adjust(..., controller="rto")``; the announcements go
through the real outbox and its sender to the fake Telegram, which judges their HTML."""
from __future__ import annotations

from typing import Any

import pytest

from app.supervisor import LoopSpec, Supervisor
from bot.callbacks import KnobAction, KnobCb
from bot.control_buttons import ControlButtons, install_control_buttons
from bot.routers.fallback import UNKNOWN_BUTTON
from delivery import Outbox, OutboxSender
from recovery.ledger_queries import get_action, load_pins, recent_actions
from recovery.setup import build_recovery
from simulator.telegram_api import FakeTelegram, SentMessage
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import ADMIN, ALERT_CHAT, GROUP_MEMBER, STRANGER, VIEWER, buttons, press, say
from tokens.pipeline import Pipeline

NOWHERE = "http://127.0.0.1:9"   # the pipeline is built, never run: its knobs are real, no request is sent


@pytest.fixture
async def recovery(frame_ctx):
    pipeline = Pipeline(frame_ctx.settings, frame_ctx.db, frame_ctx.clock, NOWHERE, "ws://127.0.0.1:9")
    await pipeline.start()
    frame_ctx.pipeline = pipeline
    frame_ctx.outbox = Outbox(frame_ctx.db, frame_ctx.clock)
    made = await build_recovery(frame_ctx, outbox=frame_ctx.outbox, alert_chat_id=ALERT_CHAT)
    yield made
    await made.stop()
    await pipeline.stop()


@pytest.fixture
async def sender(frame_ctx, running_bot, recovery):
    """The bot's Revert buttons on the announcements, and the real outbox sender to the fake Telegram."""
    assert isinstance(install_control_buttons(frame_ctx, running_bot.dp["parts"].signer), ControlButtons)
    out = OutboxSender(frame_ctx.db, frame_ctx.outbox, running_bot.transport(), frame_ctx.settings, frame_ctx.clock)
    supervisor = Supervisor(frame_ctx.clock)
    supervisor.add(LoopSpec("bot.outbox_sender", out.run, stop=out.stop))
    await supervisor.start()
    yield out
    await supervisor.stop()


async def delivered(fake: FakeTelegram, clock: Any, predicate: Any) -> Any:
    """Wait for what the outbox sender delivers (it paces each chat by the manual clock)."""
    for _ in range(20):
        try:
            return await fake.wait_for(predicate, 0.5)
        except TimeoutError:
            clock.advance(1)
    return await fake.wait_for(predicate, 1)


def announcements(fake: FakeTelegram) -> list[SentMessage]:
    return [m for m in fake.sent(ALERT_CHAT) if m.plain.startswith("🛠 Self-healing")]


async def controls_msg(fake: FakeTelegram, chat: int, user: int) -> SentMessage:
    """/tune without alerting here: the alerting notice, then the Controls."""
    await say(fake, chat, user, "/tune")
    await fake.wait_for(lambda: fake.sent(chat)[-1].plain.startswith("🎚 Controls"), 10)
    return fake.sent(chat)[-1]


async def test_tune_shows_every_control_with_value_bounds_and_mode(fake, running_bot, frame_ctx, recovery):
    msg = await controls_msg(fake, VIEWER, VIEWER)
    shown = msg.plain.splitlines()
    assert shown[0] == "🎚 Controls — what the service turns by itself, now"
    # every registered control, sorted, with its running value, bounds and mode
    for line in ("• batch_size 30 (1–30) · auto — tokens per market request",
                 "• timeout:token_pairs 2s (2s–30s) · auto — request timeout to token_pairs (RFC 6298: SRTT + 4 RTTVAR)",
                 "• timeout:tokens_batch 2s (2s–30s) · auto — request timeout to tokens_batch (RFC 6298: SRTT + 4 RTTVAR)"):
        assert line in shown, shown
    controls = [line.split(" ")[1] for line in shown[1:] if line.startswith("• ")]
    assert controls == sorted(controls) and {"fetch_concurrency", "memory_warn_share"} <= set(controls)
    assert "Last automatic actions\nnone yet" in msg.plain and buttons(msg) == {}


async def test_set_pin_and_hand_back_a_control(fake, running_bot, frame_ctx, recovery):
    processor = frame_ctx.pipeline.processor
    answer = await say(fake, ADMIN, ADMIN, "/tune batch_size 10")
    assert answer.plain == "✅ batch_size 30 → 10, pinned by @user111; /tune batch_size auto hands it back."
    assert processor.batch_size() == 10
    assert [p.knob for p in await load_pins(frame_ctx.db)] == ["batch_size"]     # written before the answer
    assert frame_ctx.knobs.adjust("batch_size", 20, controller="aimd", reason="fast batches") is None
    assert "• batch_size 10 (1–30) · 📌 pinned by @user111 now" in (await controls_msg(fake, ADMIN, ADMIN)).plain
    back = await say(fake, ADMIN, ADMIN, "/tune batch_size auto")
    assert back.plain == "✅ batch_size is back under automatic control (at 10 until its controller moves it)."
    again = await say(fake, ADMIN, ADMIN, "/tune batch_size auto")
    assert again.plain == "ℹ️ batch_size is already under automatic control."
    assert await load_pins(frame_ctx.db) == []
    assert frame_ctx.knobs.adjust("batch_size", 20, controller="aimd", reason="fast batches") == 20
    timeout = await say(fake, ADMIN, ADMIN, "/tune timeout:tokens_batch 4500ms")
    assert timeout.plain.startswith("✅ timeout:tokens_batch 2s → 4.5s, pinned by @user111")
    assert frame_ctx.pipeline.timeouts.timeout_s("tokens_batch") == 4.5


@pytest.mark.parametrize("user, text, reply", [
    (ADMIN, "/tune batch_size 99", "⚠️ 99 is outside batch_size's range 1–30; it stays at 30."),
    (ADMIN, "/tune batch_size 2.5", "⚠️ batch_size takes whole numbers, not '2.5'; allowed 1–30, it stays at 30."),
    (ADMIN, "/tune timeout:tokens_batch soon", "⚠️ 'soon' is not a value for timeout:tokens_batch (s); "
                                               "allowed 2s–30s, it stays at 2s."),
    (ADMIN, "/tune batch_sise 10", "⚠️ No control or alert rule named batch_sise; did you mean batch_size?"),
    (ADMIN, "/tune timeout 5s", "⚠️ No control or alert rule named timeout; did you mean timeout:token_pairs, "
                                "timeout:token_profiles, timeout:tokens_batch?"),
    (ADMIN, "/tune batch_size", "⚠️ Usage: /tune batch_size <value> or /tune batch_size auto"),
    (ADMIN, "/tune <b>&amp; 1", "⚠️ No control or alert rule named <b>&amp;; /tune lists the controls and rules"),
    (VIEWER, "/tune batch_size 10", "Only admins can do that."),
])
async def test_refusals_keep_the_running_value(fake, running_bot, frame_ctx, recovery, user, text, reply):
    assert (await say(fake, user, user, text)).plain == reply
    assert frame_ctx.pipeline.processor.batch_size() == 30
    assert frame_ctx.pipeline.timeouts.timeout_s("tokens_batch") == 2.0
    assert recovery.ledger.queued == 0 and await recent_actions(frame_ctx.db) == []


async def test_actions_in_a_window_are_one_message_edited_in_place(fake, running_bot, frame_ctx, recovery, sender):
    knobs, clock = frame_ctx.knobs, frame_ctx.clock
    # within the bounds: recorded, not announced
    knobs.adjust("timeout:tokens_batch", 3.0, controller="rto", reason="p95 1.4s")
    await recovery.ledger.flush()
    # five that matter within one window: one message, edited
    knobs.adjust("timeout:tokens_batch", 30.0, controller="rto", reason="p95 12s, the upper bound")
    await recovery.ledger.flush()
    first = await delivered(fake, clock, lambda: next(iter(announcements(fake)), None))
    for i, batch in enumerate((1, 5, 7)):     # the lower bound (told), then within the bounds (not told)
        clock.advance(20)
        knobs.adjust("batch_size", batch, controller="aimd", reason=f"429s at batch {batch}")
        knobs.record(_cleanup(clock.time(), i))                  # an act without a knob (told)
        await recovery.ledger.flush()
    text = await delivered(fake, clock, lambda: "#8 memory" in first.plain and first.plain)
    assert len(announcements(fake)) == 1 and first.edits
    lines = text.splitlines()
    assert lines[0].startswith("🛠 Self-healing · actions since ") and lines[0].endswith(" UTC (5)")
    assert "#2 timeout:tokens_batch 3s → 30s by rto: p95 12s, the upper bound" in text
    assert "#3 batch_size 30 → 1 by aimd: 429s at batch 1" in text and "#4 memory: freed 40 MiB (share 91%)" in text
    assert "#1 " not in text and "batch 5" not in text             # within bounds: only in the ledger
    assert list(buttons(first)) == ["↩ Revert #2 timeout:tokens_batch", "↩ Revert #3 batch_size"]
    # the window closes: the next action that matters opens a new message
    clock.advance(recovery.announcer.window_s)
    knobs.record(_cleanup(clock.time(), 9))
    await recovery.ledger.flush()
    await delivered(fake, clock, lambda: len(announcements(fake)) == 2)
    assert announcements(fake)[1].plain.startswith("🛠 Self-healing") and "(1)" in announcements(fake)[1].plain
    assert fake.refusals == []


def _cleanup(at: float, i: int) -> Any:
    from recovery.knobs import Action
    return Action(at, "memory", None, None, None, "share 91%", detail="freed 40 MiB" if i == 0 else f"freed {i} MiB")


async def announced_revert(fake: FakeTelegram, frame_ctx: Any, recovery: Any) -> SentMessage:
    frame_ctx.knobs.adjust("timeout:tokens_batch", 30.0, controller="rto", reason="p95 12s")
    await recovery.ledger.flush()
    return await delivered(fake, frame_ctx.clock, lambda: next(iter(announcements(fake)), None))


async def test_revert_by_admin_once_and_the_stale_press_does_nothing(fake, running_bot, frame_ctx, recovery, sender):
    msg = await announced_revert(fake, frame_ctx, recovery)
    revert = buttons(msg)["↩ Revert #1 timeout:tokens_batch"]
    answer = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, revert)
    assert answer["text"] == ("timeout:tokens_batch back to 2s (#1 reverted), pinned by @user111; "
                              "/tune timeout:tokens_batch auto hands it back.")
    assert frame_ctx.pipeline.timeouts.timeout_s("tokens_batch") == 2.0
    revert_action = (await recent_actions(frame_ctx.db, limit=1))[0]
    assert (revert_action.controller, revert_action.revert_of, revert_action.actor) == ("operator", 1, "@user111")
    assert (await get_action(frame_ctx.db, 1)).reverted_by == "@user111"
    twice = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, revert)
    assert (twice["text"], twice["show_alert"]) == ("Action #1 was already reverted by @user111.", True)
    # the announcement shows it reverted, in the same message
    text = await delivered(fake, frame_ctx.clock, lambda: "reverted by @user111" in msg.plain and msg.plain)
    assert "#2 timeout:tokens_batch 30s → 2s by @user111: revert of #1" in text
    assert len(await recent_actions(frame_ctx.db)) == 2 and len(announcements(fake)) == 1


async def test_a_revert_after_the_knob_moved_again_changes_nothing(fake, running_bot, frame_ctx, recovery, sender):
    msg = await announced_revert(fake, frame_ctx, recovery)
    frame_ctx.knobs.adjust("timeout:tokens_batch", 12.0, controller="rto", reason="p95 4s")
    answer = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, buttons(msg)["↩ Revert #1 timeout:tokens_batch"])
    assert answer["text"] == ("timeout:tokens_batch has changed since #1 (now 12s); "
                              "set it with /tune timeout:tokens_batch <value>.")
    assert frame_ctx.pipeline.timeouts.timeout_s("tokens_batch") == 12.0
    assert frame_ctx.knobs.pinned("timeout:tokens_batch") is None


@pytest.mark.parametrize("user, chat, refusal", [
    (VIEWER, ALERT_CHAT, "Only admins can do that."),
    (GROUP_MEMBER, ALERT_CHAT, "Only admins can do that."),
    (STRANGER, STRANGER, "Not authorised."),     # the announcement, forwarded with its buttons
])
async def test_a_viewers_or_strangers_revert_changes_nothing(fake, running_bot, frame_ctx, recovery, sender,
                                                            user, chat, refusal):
    msg = await announced_revert(fake, frame_ctx, recovery)
    if chat != ALERT_CHAT:
        await running_bot.bot.send_message(chat, msg.plain, reply_markup=msg.reply_markup)
        msg = fake.sent(chat)[-1]
    answer = await press(fake, chat, user, msg.message_id, buttons(msg)["↩ Revert #1 timeout:tokens_batch"])
    assert (answer["text"], answer["show_alert"]) == (refusal, True)
    assert frame_ctx.pipeline.timeouts.timeout_s("tokens_batch") == 30.0
    assert (await get_action(frame_ctx.db, 1)).reverted_at is None and len(await recent_actions(frame_ctx.db)) == 1


async def test_forged_revert_presses_change_nothing(fake, running_bot, frame_ctx, recovery, sender):
    msg = await announced_revert(fake, frame_ctx, recovery)
    real = buttons(msg)["↩ Revert #1 timeout:tokens_batch"]
    _, _, sig = real.rpartition(":")
    for data in (KnobCb(action=KnobAction.REVERT, id=2).pack() + ":" + sig,   # another action, the old signature
                 KnobCb(action=KnobAction.REVERT, id=1).pack() + ":AAAAAAAA",
                 KnobCb(action=KnobAction.REVERT, id=1).pack()):
        answer = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, data)
        assert (answer["text"], answer["show_alert"]) == (UNKNOWN_BUTTON, True)
    signer = running_bot.dp["parts"].signer
    unknown = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, signer.pack(KnobCb(action=KnobAction.REVERT, id=99)))
    assert unknown["text"] == "No action #99 in the ledger."
    assert frame_ctx.pipeline.timeouts.timeout_s("tokens_batch") == 30.0 and len(await recent_actions(frame_ctx.db)) == 1


async def test_revert_from_tune_redraws_the_controls(fake, running_bot, frame_ctx, recovery):
    frame_ctx.knobs.adjust("batch_size", 12, controller="aimd", reason="slow batches")
    await recovery.ledger.flush()
    msg = await controls_msg(fake, ADMIN, ADMIN)
    assert "#1 now: batch_size 30 → 12 by aimd: slow batches" in msg.plain
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["↩ Revert #1 batch_size"])
    assert answer["text"].startswith("batch_size back to 30 (#1 reverted)")
    assert "#1 now: batch_size 30 → 12 by aimd: slow batches — reverted by @user111" in msg.plain
    assert "• batch_size 30 (1–30) · 📌 pinned by @user111 now" in msg.plain and buttons(msg) == {}


async def test_incident_messages_list_the_actions_taken_meanwhile(fake, running_bot, frame_ctx, recovery, sender):
    """The real alert engine: an incident opens, a controller acts, the incident resolves; the resolved
    message and 🔎 Details name the actions (read from the ledger)."""
    from bot.alert_buttons import install_alert_buttons
    from tests.bot.alert_world import AlertWorld, obs

    world = await AlertWorld.build(frame_ctx, alert_chat_id=ALERT_CHAT)
    try:
        install_alert_buttons(frame_ctx, running_bot.dp["parts"].signer)
        slow = obs("api_slow", 3.1, endpoint="tokens_batch")
        [incident] = await world.fire(slow)
        frame_ctx.clock.advance(5)
        frame_ctx.knobs.adjust("timeout:tokens_batch", 6.0, controller="rto", reason="p95 3.1s over 2s")
        frame_ctx.clock.advance(5)
        frame_ctx.knobs.adjust("timeout:tokens_batch", 9.0, controller="rto", reason="p95 4.4s over 2s")
        await recovery.ledger.flush()
        frame_ctx.clock.advance(5)
        await world.clear(slow)
        resolved = await delivered(fake, frame_ctx.clock,
                                   lambda: next((m for m in fake.sent(ALERT_CHAT) if "Meanwhile:" in m.plain), None))
        assert ("automatic actions: timeout:tokens_batch 2s → 6s (rto); timeout:tokens_batch 6s → 9s (rto)"
                in resolved.plain)
        card = next(m for m in fake.sent(ALERT_CHAT) if f"#{incident} · " in m.plain)
        before = len(fake.sent(ALERT_CHAT))
        await press(fake, ALERT_CHAT, VIEWER, card.message_id, buttons(card)["🔎 Details"])
        await fake.wait_for(lambda: len(fake.sent(ALERT_CHAT)) > before, 10)
        details = fake.sent(ALERT_CHAT)[-1].plain
        assert ("action — timeout:tokens_batch 2s → 6s by rto: p95 3.1s over 2s — "
                "not enough: moved further by rto after 5s") in details
        assert "action — timeout:tokens_batch 6s → 9s by rto: p95 4.4s over 2s" in details
        assert details.index("fired") < details.index("2s → 6s") < details.index("resolved")
        assert fake.refusals == []
    finally:
        await world.stop()


async def test_tune_controls_alone_and_without_recovery(fake, running_bot, frame_ctx):
    frame_ctx.recovery = None
    assert (await say(fake, VIEWER, VIEWER, "/tune controls")).plain == \
        "The service's controls do not run in this process."


async def test_tune_controls_shows_only_the_controls(fake, running_bot, frame_ctx, recovery):
    msg = await say(fake, VIEWER, VIEWER, "/tune controls")
    assert msg.plain.startswith("🎚 Controls — what the service turns by itself, now")
    await say(fake, VIEWER, VIEWER, "/start")     # the next message is the next command's: nothing else came
    assert [m.plain[:11] for m in fake.sent(VIEWER)] == ["🎚 Controls ", "👋 Hello Use"]
