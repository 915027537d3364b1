"""The alert commands and buttons through the running bot and the fake Bot API server, against
the REAL alert layer (``alerts.setup.build_alerts`` on the frame's SQLite database and manual
clock, ``tests/bot/alert_world.py``).

Incidents are made by feeding the engine observations, as the evaluator does; the engine's own
messages go through the outbox and its real sender to the fake Telegram. "Nothing changed" is
checked on the chat side (no edit, a refusal) and on the services' side (:func:`state`).
"""
from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import func, select

from alerts.api import Actor
from bot.alert_buttons import AlertButtons, install_alert_buttons
from bot.callbacks import AlertAction, AlertCb, TuneAction, TuneCb
from bot.routers.fallback import UNKNOWN_BUTTON
from delivery.models import OutboxMessage
from simulator.telegram_api import FakeTelegram, SentMessage
from tests.bot.alert_world import AlertWorld, obs, scenario_rules
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import ADMIN, ALERT_CHAT, GROUP_MEMBER, STRANGER, VIEWER, buttons, press, say

OFF = "Alerting is not running in this process."
ACK_1 = "Acknowledged #1; escalation stopped (reminder in 1h 00m)."
MARKET = obs("market_api_down", 300, endpoint="tokens")
BACKLOG = obs("backlog_high", 500)
SLOW = obs("api_slow", 3.1, endpoint="pairs")


@pytest.fixture
async def world(frame_ctx):
    made = await AlertWorld.build(frame_ctx, alert_chat_id=ALERT_CHAT)
    yield made
    await made.stop()


@pytest.fixture
async def with_buttons(running_bot, frame_ctx, world) -> AlertButtons:
    factory = install_alert_buttons(frame_ctx, running_bot.dp["parts"].signer)
    assert isinstance(factory, AlertButtons) and world.alerts.buttons is factory
    return factory


@pytest.fixture
async def incidents(world, with_buttons) -> list[int]:
    """#1: the market API down (critical) with the backlog folded under it; #2: the API slow (warning)
    with a remediation. Opened after the bot's buttons are installed, so the engine's messages carry them."""
    opened = await world.fire(MARKET, BACKLOG)
    world.ctx.clock.advance(1)
    opened += await world.fire(SLOW)
    assert opened == [1, 2]
    return opened


async def state(world: AlertWorld) -> tuple[Any, ...]:
    """Everything the real services hold that an action could change, to compare before and after
    a refused one: incidents, their timelines, silences, maintenance, thresholds and the outbox."""
    a = world.alerts
    assert a.incidents and a.quiet and a.tuning
    views = await a.incidents.open_incidents()
    timelines = [await a.incidents.timeline(v.id) for v in views]
    tune = [(r.rule, r.threshold, r.last_change_id) for r in await a.tuning.report()]

    async def outbox_rows(session):
        return (await session.exec(select(func.count()).select_from(OutboxMessage))).one()
    return (views, timelines, await a.quiet.silences(), await a.quiet.maintenance(), tune,
            await world.ctx.db.run(outbox_rows))


async def say_many(fake: FakeTelegram, chat_id: int, user_id: int, text: str, n: int) -> list[SentMessage]:
    before = len(fake.sent(chat_id))
    fake.user_sends(chat_id, user_id, text)
    await fake.wait_for(lambda: len(fake.sent(chat_id)) >= before + n, 10)
    return fake.sent(chat_id)[before:]


async def engine_message(fake: FakeTelegram, world: AlertWorld, running_bot, incident_id: int) -> SentMessage:
    """The engine's own message for ``incident_id`` in the alert chat, delivered by the real outbox sender."""
    if world.sender is None:
        await world.start_sender(running_bot)

    def found() -> SentMessage | None:
        return next((m for m in fake.sent(ALERT_CHAT) if f"#{incident_id} · " in m.plain), None)
    return await delivered(fake, world.ctx.clock, found)


async def delivered(fake: FakeTelegram, clock: Any, predicate: Any) -> Any:
    """Wait for what the outbox sender delivers; it paces each chat by the (manual) clock, so let
    the spacing pass a second at a time."""
    for _ in range(20):
        try:
            return await fake.wait_for(predicate, 0.5)
        except TimeoutError:
            clock.advance(1)
    return await fake.wait_for(predicate, 1)


async def edited(fake: FakeTelegram, world: AlertWorld, msg: SentMessage, n: int) -> str:
    """The engine's message after its ``n``-th edit (the outbox sender delivers edits too)."""
    await delivered(fake, world.ctx.clock, lambda: len(msg.edits) >= n)
    return msg.plain


# --- /alerts and /ack ------------------------------------------------------------------------------

async def test_alerts_lists_open_incidents_most_severe_first_with_their_buttons(fake, running_bot, world, incidents):
    before = await state(world)
    header, first, second = await say_many(fake, VIEWER, VIEWER, "/alerts", 3)
    assert header.plain.startswith("🚨 Open alerts: 2")
    assert first.plain.startswith("🔴 #1 CRITICAL · Market API down: tokens failing for 5m 00s")
    assert "↳ 🔥 backlog_high source=test — Backlog 500 tokens" in first.plain
    assert "1 consequence(s) folded" in first.plain
    assert "📖 Check the provider's status page" in first.plain
    assert second.plain.startswith("🟠 #2 WARNING · API pairs p95 3.1s")
    assert list(buttons(first)) == ["✅ Acknowledge", "🔕 Silence 1h", "⏫ Escalate", "🔎 Details"]
    assert list(buttons(second)) == ["✅ Acknowledge", "🔕 Silence 1h", "⏫ Escalate", "🔎 Details",
                                     "🛠 Restart stuck jobs"]
    assert await state(world) == before  # reading changes nothing


async def test_alerts_with_nothing_open_and_without_alerting(fake, running_bot, frame_ctx, world, incidents):
    await world.clear(MARKET, BACKLOG, SLOW)
    assert await world.alerts.incidents.open_incidents() == []
    assert (await say(fake, ADMIN, ADMIN, "/alerts")).plain == "✅ No open alerts."
    frame_ctx.alerts = None
    for command in ("/alerts", "/ack 1", "/silence", "/maintenance", "/tune", "/digest"):
        assert (await say(fake, ADMIN, ADMIN, command)).plain == OFF


async def test_ack_on_a_card_acknowledges_once_and_redraws_the_card(fake, running_bot, world, incidents):
    _, card, _ = await say_many(fake, ADMIN, ADMIN, "/alerts", 3)
    answer = await press(fake, ADMIN, ADMIN, card.message_id, buttons(card)["✅ Acknowledge"])
    assert answer["text"] == ACK_1
    view = await world.alerts.incidents.get(1)
    assert (view.status, view.acked_by, view.next_escalation_at) == ("acknowledged", "@user111", None)
    assert "✅ Acknowledged by @user111" in card.plain and len(card.edits) == 1
    before = await state(world)
    again = await press(fake, ADMIN, ADMIN, card.message_id, buttons(card)["✅ Acknowledge"])  # double tap
    assert (again["text"], again["show_alert"]) == ("Already acknowledged by @user111 0s ago.", True)
    assert await state(world) == before and len(card.edits) == 1


async def test_ack_command_does_what_the_button_does(fake, running_bot, world, incidents):
    assert (await say(fake, ADMIN, ADMIN, "/ack 2")).plain == \
        "✅ Acknowledged #2; escalation stopped (reminder in 1h 00m)."
    assert (await world.alerts.incidents.get(2)).acked_by == "@user111"
    assert [e.kind for e in await world.alerts.incidents.timeline(2)][-1] == "ack"
    assert (await say(fake, ADMIN, ADMIN, "/ack #2")).plain == "ℹ️ Already acknowledged by @user111 0s ago."


@pytest.mark.parametrize("text, reply", [
    ("/ack abc", "⚠️ 'abc' is not an incident number. Example: /ack 12 (the numbers are in /alerts)"),
    ("/ack", "⚠️ Give one incident number. Example: /ack 12 (the numbers are in /alerts)"),
    ("/ack 1 2", "⚠️ Give one incident number. Example: /ack 12 (the numbers are in /alerts)"),
    ("/ack 99999", "⚠️ No incident #99999; /alerts lists the open ones. Example: /ack 12"),
    ("/ack -5", "⚠️ '-5' is not an incident number. Example: /ack 12 (the numbers are in /alerts)"),
])
async def test_bad_ack_arguments_get_one_line_with_an_example(fake, running_bot, world, incidents, text, reply):
    before = await state(world)
    msg = await say(fake, ADMIN, ADMIN, text)
    assert msg.plain == reply and "\n" not in msg.plain
    assert await state(world) == before


async def test_only_admins_may_ack(fake, running_bot, world, incidents):
    before = await state(world)
    assert (await say(fake, VIEWER, VIEWER, "/ack 1")).plain == "Only admins can do that."
    assert (await say(fake, STRANGER, STRANGER, "/ack 1")).plain == "Not authorised."
    assert await state(world) == before and (await world.alerts.incidents.get(1)).status == "open"


# --- the engine's alert messages ------------------------------------------------------------------

async def test_the_engines_message_carries_the_buttons_and_an_ack_edits_it(fake, running_bot, world, incidents):
    msg = await engine_message(fake, world, running_bot, 1)
    assert msg.plain.startswith("🔴 CRITICAL #1 · market")
    b = buttons(msg)
    assert list(b) == ["✅ Acknowledge", "🔕 Silence 1h", "⏫ Escalate", "🔎 Details"]
    assert all(len(data.encode()) <= 64 for data in b.values())
    assert (await press(fake, ALERT_CHAT, ADMIN, msg.message_id, b["✅ Acknowledge"]))["text"] == ACK_1
    assert (await world.alerts.incidents.get(1)).status == "acknowledged"
    # the engine redraws its own message (through the outbox), showing who acknowledged
    assert "✅ Acknowledged by @user111" in await edited(fake, world, msg, 1)


async def test_escalate_silence_and_remediation_buttons_act_once(fake, running_bot, frame_ctx, world, incidents):
    msg = await engine_message(fake, world, running_bot, 2)
    b = buttons(msg)
    assert list(b) == ["✅ Acknowledge", "🔕 Silence 1h", "⏫ Escalate", "🔎 Details", "🛠 Restart stuck jobs"]
    escalated = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, b["⏫ Escalate"])
    assert escalated["text"].startswith("Escalated #2: step 1/4 chat: alert chat, mentioning 1 admin(s)")
    assert (await world.alerts.incidents.get(2)).escalation_level == 1
    silenced = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, b["🔕 Silence 1h"])
    assert silenced["text"] == "Silenced #2 for 1h 00m; its resolution will still be announced."
    [silence] = await world.alerts.quiet.silences()
    assert (silence.matchers, silence.ends_at - frame_ctx.clock.time()) == ("rule=api_slow endpoint=pairs source=test",
                                                                            3600.0)
    fixed = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, b["🛠 Restart stuck jobs"])
    assert fixed["text"] == "Restart stuck jobs: No job was over its time budget."
    twice = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, b["🛠 Restart stuck jobs"])
    assert (twice["text"], twice["show_alert"]) == ("Already ran Restart stuck jobs by @user111 0s ago.", True)
    kinds = [e.kind for e in await world.alerts.incidents.timeline(2)]
    assert kinds.count("escalated") == 1 and kinds.count("silenced") == 1 and kinds.count("remediation") == 1
    # the engine redraws its message (edits of one message may be merged: the newest text wins)
    await delivered(fake, frame_ctx.clock, lambda: "🔕 Muted: silenced for 1h 00m by @user111" in msg.plain)
    assert "⏫ Escalation level 1" in msg.plain


async def test_details_is_a_new_message_with_the_timeline_and_open_to_viewers(
        fake, running_bot, world, incidents):
    msg = await engine_message(fake, world, running_bot, 1)
    await press(fake, ALERT_CHAT, ADMIN, msg.message_id, buttons(msg)["✅ Acknowledge"])
    await edited(fake, world, msg, 1)
    before = len(fake.sent(ALERT_CHAT))
    answer = await press(fake, ALERT_CHAT, VIEWER, msg.message_id, buttons(msg)["🔎 Details"])
    await fake.wait_for(lambda: len(fake.sent(ALERT_CHAT)) > before, 10)
    details = fake.sent(ALERT_CHAT)[-1]
    assert answer["text"] is None and len(msg.edits) == 1
    assert "🕑 Timeline (UTC)" in details.plain
    assert "fired — Market API down: tokens failing for 5m 00s (value 300) · by auto" in details.plain
    assert "ack — escalation stopped; lapses in 1h 00m · by @user111" in details.plain


@pytest.mark.parametrize("user, chat, refusal", [
    (VIEWER, ALERT_CHAT, "Only admins can do that."),
    (GROUP_MEMBER, ALERT_CHAT, "Only admins can do that."),   # alert-chat members are viewers
    (STRANGER, STRANGER, "Not authorised."),                   # e.g. a forwarded alert
])
async def test_a_viewers_or_strangers_press_changes_nothing(fake, running_bot, world, incidents, user, chat,
                                                            refusal):
    msg = await engine_message(fake, world, running_bot, 2)
    if chat != ALERT_CHAT:  # the alert, forwarded with its buttons
        await running_bot.bot.send_message(chat, msg.plain, reply_markup=msg.reply_markup)
        msg = fake.sent(chat)[-1]
    before = await state(world)
    for label in ("✅ Acknowledge", "🔕 Silence 1h", "⏫ Escalate", "🛠 Restart stuck jobs", "🔎 Details"):
        if label == "🔎 Details" and user != STRANGER:
            continue  # viewers may read the details
        answer = await press(fake, chat, user, msg.message_id, buttons(msg)[label])
        assert (answer["text"], answer["show_alert"]) == (refusal, True)
    assert await state(world) == before and msg.edits == []
    view = await world.alerts.incidents.get(2)
    assert (view.status, view.escalation_level, view.muted_reason) == ("open", 0, None)


async def test_forged_and_tampered_presses_change_nothing(fake, running_bot, world, incidents):
    msg = await engine_message(fake, world, running_bot, 1)
    real = buttons(msg)["✅ Acknowledge"]
    signer = running_bot.dp["parts"].signer
    packed, _, sig = real.rpartition(":")
    forged = [
        AlertCb(action=AlertAction.ACK, incident=2).pack() + ":" + sig,   # another incident, the old signature
        AlertCb(action=AlertAction.ACK, incident=1).pack() + ":AAAAAAAA",  # a made-up signature
        AlertCb(action=AlertAction.ACK, incident=1).pack(),                # unsigned
        "al:a:1:0:0:" + "x" * 60,                                          # oversized
    ]
    before = await state(world)
    for data in forged:
        answer = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, data)
        assert (answer["text"], answer["show_alert"]) == (UNKNOWN_BUTTON, True)
    assert signer.unpack(AlertCb, real).incident == 1
    assert await state(world) == before
    assert [v.status for v in await world.alerts.incidents.open_incidents()] == ["open", "open"]


async def test_alert_buttons_keep_working_for_days_and_stale_ones_do_nothing(
        fake, running_bot, frame_ctx, world, incidents, with_buttons):
    msg = await engine_message(fake, world, running_bot, 1)
    frame_ctx.clock.advance(3 * 86400)  # an incident can last days: its buttons do not expire
    escalated = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, buttons(msg)["⏫ Escalate"])
    assert escalated["text"].startswith("Escalated #1: step 1/4")
    ack = buttons(msg)["✅ Acknowledge"]   # kept by a client that has not redrawn the message yet
    await world.clear(MARKET, BACKLOG)   # recovered: the incident resolves
    assert (await world.alerts.incidents.get(1)).status == "resolved"
    frame_ctx.clock.advance(60)
    before = await state(world)
    stale = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, ack)
    assert (stale["text"], stale["show_alert"]) == ("Incident #1 already resolved 1m 00s ago; nothing to do.", True)
    assert await state(world) == before and (await world.alerts.incidents.get(1)).acked_by is None
    resolved = with_buttons.incident(1, remediations=[], resolved=True)
    assert [b["text"] for row in resolved["inline_keyboard"] for b in row] == ["🔎 Details"]


def test_callback_data_fits_for_the_largest_ids():
    from app.clock import ManualClock
    from bot.callbacks import CallbackSigner

    factory = AlertButtons(CallbackSigner(b"k", ManualClock(2e9)))
    fixes = list(scenario_rules().get("api_slow").remediation) * 10
    markups = [factory.incident(2**62, remediations=fixes, resolved=False), factory.silence(2**62),
               factory.tuning(2**62)]
    for markup in markups:
        for row in markup["inline_keyboard"]:
            for b in row:
                assert len(b["callback_data"].encode()) <= 64


# --- /silence ---------------------------------------------------------------------------------------

async def test_silence_sets_lists_and_unsilences(fake, running_bot, frame_ctx, world, incidents):
    msg = await say(fake, ADMIN, ADMIN, "/silence rule=api_slow endpoint=tokens 2h deploy <b>&")
    assert msg.plain.startswith("✅ Silence #1 on rule=api_slow endpoint=tokens until ") and "(2h 00m)" in msg.plain
    [silence] = await world.alerts.quiet.silences()
    assert (silence.matchers, silence.reason, silence.created_by) == ("rule=api_slow endpoint=tokens",
                                                                      "deploy <b>&", "@user111")
    assert silence.ends_at == frame_ctx.clock.time() + 7200
    assert (await say(fake, ADMIN, ADMIN, "/silence market_api_down 30m")).plain.startswith(
        "✅ Silence #2 on rule=market_api_down until ")
    listing = await say(fake, VIEWER, VIEWER, "/silence")
    assert "#1 rule=api_slow endpoint=tokens — ends in 2h 00m · by @user111 · deploy <b>&" in listing.plain
    assert buttons(listing) == {}  # a viewer in private gets no buttons
    listing = await say(fake, ADMIN, ADMIN, "/silence")
    answer = await press(fake, ADMIN, ADMIN, listing.message_id, buttons(listing)["🔔 Unsilence #1"])
    assert answer["text"] == "Silence #1 lifted."
    assert [s.id for s in await world.alerts.quiet.silences()] == [2]
    assert "#1 " not in listing.plain and list(buttons(listing)) == ["🔔 Unsilence #2"]


async def test_a_silence_mutes_what_it_matches(fake, running_bot, frame_ctx, world, with_buttons):
    await say(fake, ADMIN, ADMIN, "/silence api_slow 1h")
    [opened] = await world.fire(SLOW)
    view = await world.alerts.incidents.get(opened)
    assert view.muted_reason == "silence #1"  # the engine asked the silence before it sent anything


async def test_an_unsilence_button_on_the_engines_reminder_and_a_stale_one(fake, running_bot, frame_ctx, world,
                                                                            with_buttons):
    await say(fake, ADMIN, ADMIN, "/silence api_slow 1h")
    await world.start_sender(running_bot)
    frame_ctx.clock.advance(3600 - 240)   # the reminder is due 5 minutes before the end
    await world.alerts.quiet.tick()
    reminder = await fake.wait_for(lambda: next((m for m in fake.sent(ALERT_CHAT) if "Silence #1" in m.plain), None),
                                   10)
    assert "ends in 4m 00s" in reminder.plain
    viewer = await press(fake, ALERT_CHAT, VIEWER, reminder.message_id, buttons(reminder)["🔔 Unsilence #1"])
    assert viewer["text"] == "Only admins can do that." and len(await world.alerts.quiet.silences()) == 1
    ok = await press(fake, ALERT_CHAT, ADMIN, reminder.message_id, buttons(reminder)["🔔 Unsilence #1"])
    assert ok["text"] == "Silence #1 lifted." and reminder.edits == []
    assert await world.alerts.quiet.silences() == []
    stale = await press(fake, ALERT_CHAT, ADMIN, reminder.message_id, buttons(reminder)["🔔 Unsilence #1"])
    assert (stale["text"], stale["show_alert"]) == ("Silence #1 has already ended.", True)


EXAMPLE = "write it like /silence rule=api_slow endpoint=tokens 1h deploy"


@pytest.mark.parametrize("text, problem", [
    ("/silence rule= 1h", f"unknown rule '' (see /tune or /alerts for the names); {EXAMPLE}"),
    ("/silence endpoint!=x 1h", f"a silence must select something: add rule=<name> or label=value; {EXAMPLE}"),
    ("/silence endpoint=~( 1h", "bad regular expression in 'endpoint=~(': "),
    ("/silence rule=nope 1h", f"unknown rule 'nope' (see /tune or /alerts for the names); {EXAMPLE}"),
    ("/silence nope 1h", f"unknown rule 'nope' (see /tune or /alerts for the names); {EXAMPLE}"),
    ("/silence api_slow forever", "'forever' is not a duration; write it like 30m, 2h or 1d; for example "
                                  "/silence rule=api_slow endpoint=tokens 1h deploy"),
    ("/silence api_slow", "say for how long. Example: /silence rule=api_slow endpoint=tokens 1h deploy"),
    ("/silence 2h", "say what to silence: a rule name or matchers. Example: "
                    "/silence rule=api_slow endpoint=tokens 1h deploy"),
    ("/silence api_slow 30d", f"'30d': Too long: at most 7d 00h; {EXAMPLE}"),
    ("/silence api_slow 10s", f"'10s': Too short: at least 1m 00s; {EXAMPLE}"),
])
async def test_bad_silence_arguments_change_nothing(fake, running_bot, world, text, problem):
    before = await state(world)
    msg = await say(fake, ADMIN, ADMIN, text)
    assert msg.plain.startswith(f"⚠️ {problem}") and "\n" not in msg.plain
    assert await state(world) == before and await world.alerts.quiet.silences() == []


async def test_the_silence_limit_is_the_setting(fake, running_bot, frame_ctx, world):
    """The bot reads durations with the alert layer's parser and limits: what it enforces is ALERT_SILENCE_MAX_S."""
    frame_ctx.settings = frame_ctx.settings.model_copy(update={"alert_silence_max_s": 2 * 3600.0})
    msg = await say(fake, ADMIN, ADMIN, "/silence api_slow 3h")
    assert msg.plain.startswith("⚠️ '3h': Too long: at most 2h 00m;")
    assert await world.alerts.quiet.silences() == []


async def test_a_viewer_cannot_set_a_silence(fake, running_bot, world):
    assert (await say(fake, VIEWER, VIEWER, "/silence api_slow 1h")).plain == "Only admins can do that."
    assert await world.alerts.quiet.silences() == []


# --- /maintenance -----------------------------------------------------------------------------------

async def test_maintenance_on_show_and_off(fake, running_bot, frame_ctx, world):
    assert (await say(fake, VIEWER, VIEWER, "/maintenance")).plain.startswith("🛠 Maintenance: off.")
    on = await say(fake, ADMIN, ADMIN, "/maintenance on 30m db upgrade")
    assert on.plain.startswith("✅ Maintenance on until ") and "(30m 00s)" in on.plain
    window = await world.alerts.quiet.maintenance()
    assert (window.ends_at - window.started_at, window.reason, window.started_by) == (1800.0, "db upgrade", "@user111")
    again = await say(fake, ADMIN, ADMIN, "/maintenance on 1h")
    assert again.plain.startswith("✅ Maintenance extended until ") and "(1h 00m from now)" in again.plain
    shown = await say(fake, VIEWER, VIEWER, "/maintenance")
    assert "🛠 Maintenance: on until" in shown.plain and "reason: db upgrade" in shown.plain
    assert buttons(shown) == {}
    assert (await say(fake, VIEWER, VIEWER, "/maintenance off")).plain == "Only admins can do that."
    assert await world.alerts.quiet.maintenance() is not None
    assert (await say(fake, ADMIN, ADMIN, "/maintenance off")).plain.startswith("✅ Maintenance off after ")
    assert await world.alerts.quiet.maintenance() is None
    assert (await say(fake, ADMIN, ADMIN, "/maintenance off")).plain == "ℹ️ Maintenance is not on."


async def test_maintenance_mutes_a_warning_but_not_a_critical(fake, running_bot, world, with_buttons):
    await say(fake, ADMIN, ADMIN, "/maintenance on 1h")
    [slow] = await world.fire(SLOW)
    [market] = await world.fire(MARKET)
    assert (await world.alerts.incidents.get(slow)).muted_reason == "maintenance"
    assert (await world.alerts.incidents.get(market)).muted_reason is None


async def test_end_maintenance_button(fake, running_bot, world):
    await say(fake, ADMIN, ADMIN, "/maintenance on 1h")
    shown = await say(fake, ADMIN, ADMIN, "/maintenance")
    data = buttons(shown)["⏹ End maintenance"]
    viewer = await press(fake, ADMIN, VIEWER, shown.message_id, data)
    assert viewer["text"] == "Only admins can do that." and await world.alerts.quiet.maintenance() is not None
    ended = await press(fake, ADMIN, ADMIN, shown.message_id, data)
    assert ended["text"].startswith("Maintenance off after ")
    assert await world.alerts.quiet.maintenance() is None
    assert shown.plain.startswith("🛠 Maintenance: off.")
    stale = await press(fake, ADMIN, ADMIN, shown.message_id, data)
    assert stale["text"] == "That maintenance window is already over."


MEXAMPLE = "write it like /maintenance on 30m deploy"


@pytest.mark.parametrize("text, problem", [
    ("/maintenance on forever", "'forever' is not a duration; write it like 30m, 2h or 1d; for example "
                                "/maintenance on 30m deploy"),
    ("/maintenance on", "say for how long. Example: /maintenance on 30m deploy"),
    ("/maintenance on 10s", f"'10s': Too short: at least 1m 00s; {MEXAMPLE}"),
    ("/maintenance on 2d", f"'2d': Too long: at most 1d 00h; {MEXAMPLE}"),   # ALERT_MAINTENANCE_MAX_S
    ("/maintenance start 30m", "'start': use on <duration> [reason] or off. Example: /maintenance on 30m deploy"),
    ("/maintenance off now", "'off': use on <duration> [reason] or off. Example: /maintenance on 30m deploy"),
])
async def test_bad_maintenance_arguments_change_nothing(fake, running_bot, world, text, problem):
    before = await state(world)
    msg = await say(fake, ADMIN, ADMIN, text)
    assert msg.plain == f"⚠️ {problem}"
    assert await state(world) == before and await world.alerts.quiet.maintenance() is None


# --- /tune ------------------------------------------------------------------------------------------

async def test_tune_apply_and_revert(fake, running_bot, frame_ctx, world):
    await world.seed_history("tokenwatch_api_latency_p95_seconds", 2.5)
    msg = await say(fake, ADMIN, ADMIN, "/tune")
    assert "api_slow (warning): fired 0× · firing 0s · acked — · cleared unattended —" in msg.plain
    assert "market_api_down (critical)" in msg.plain and "no suggestion (only 0s of healthy history" in msg.plain
    assert "threshold 2s → suggested 2.5s (p99 of " in msg.plain
    assert list(buttons(msg)) == ["✔ Apply api_slow"]
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["✔ Apply api_slow"])
    assert answer["text"] == "api_slow threshold 2 → 2.5 (change #1)."
    rules = world.alerts.rules
    assert world.alerts.tuning.threshold(rules.get("api_slow")) == 2.5   # the evaluator's threshold now
    assert "threshold 2.5s (file 2s)" in msg.plain and list(buttons(msg)) == ["↩ Revert api_slow"]
    reverted = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["↩ Revert api_slow"])
    assert reverted["text"] == "api_slow threshold back to 2 (change #1 reverted)."
    assert world.alerts.tuning.threshold(rules.get("api_slow")) == 2.0
    old_revert = msg.edits[0].reply_markup["inline_keyboard"][0][0]["callback_data"]
    twice = await press(fake, ADMIN, ADMIN, msg.message_id, old_revert)
    assert twice["text"] == "Change #1 was already reverted by @user111."


async def test_tune_buttons_refused_to_viewers_and_apply_expires(fake, running_bot, frame_ctx, world):
    await world.seed_history("tokenwatch_api_latency_p95_seconds", 2.5)
    msg = await say(fake, ALERT_CHAT, VIEWER, "/tune@tokenwatch_test_bot")
    apply = buttons(msg)["✔ Apply api_slow"]  # shown in the group: a viewer's press is refused
    before = await state(world)
    assert (await press(fake, ALERT_CHAT, VIEWER, msg.message_id, apply))["text"] == "Only admins can do that."
    frame_ctx.clock.advance(2 * 3600)
    expired = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, apply)
    assert expired["text"] == "This button has expired; send /tune again."
    assert msg.edits == []
    signer = running_bot.dp["parts"].signer
    unknown = signer.pack(TuneCb(action=TuneAction.APPLY, rule="zzzzzzzzzz", ts=signer.now_ts()))
    gone = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, unknown)
    assert gone["text"] == "That rule is no longer loaded; send /tune again."
    assert await state(world) == before


# --- /digest and /status ----------------------------------------------------------------------------

async def test_digest_replies_with_the_digest_text(fake, running_bot, frame_ctx, world, incidents):
    await world.alerts.incidents.acknowledge(1, Actor(ADMIN, "@user111"))
    frame_ctx.clock.advance(60)
    msg = await say(fake, VIEWER, VIEWER, "/digest")
    assert msg.plain.startswith("📊 Digest · last 24h") and msg.photo is None
    assert "Fired 3 · acknowledged 1 · resolved 0 · incidents opened 2" in msg.plain
    assert "Mean time to acknowledge: 1s" in msg.plain


async def test_status_shows_open_alerts_and_maintenance(fake, frame_ctx, world):
    from bot.app import build_dispatcher
    from bot.runner import BotRunner
    from bot.setup import build_status_sections

    await world.fire(MARKET, BACKLOG, SLOW)
    runner = BotRunner(frame_ctx, dispatcher=build_dispatcher(frame_ctx, status_sections=build_status_sections()),
                       polling_timeout=1)
    await runner.start()
    try:
        await say(fake, ADMIN, ADMIN, "/maintenance on 45m db <upgrade>")
        status = await say(fake, VIEWER, VIEWER, "/status")
        assert "Alerts: 2 open (1 critical)" in status.plain.splitlines()
        assert any(line.startswith("🛠 Maintenance until ") and line.endswith(" UTC (db <upgrade>)")
                   for line in status.plain.splitlines())
        assert len(await world.alerts.incidents.open_incidents()) == 2  # /status's collection left them alone
        frame_ctx.alerts = None
        assert "Alerts:" not in (await say(fake, VIEWER, VIEWER, "/status")).plain
    finally:
        await runner.stop()
