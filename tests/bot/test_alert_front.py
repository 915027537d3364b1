"""The alert commands and buttons through the running bot and the fake Bot API server.

The alert layer's services are the in-memory ones of ``tests/bot/alert_services.py`` (the real
ones are written in parallel); they keep state and record every call, so "nothing changed" is
checked on both the chat and the service side.
"""
from __future__ import annotations

import pytest
from aiogram.types import InlineKeyboardMarkup

from alerts.api import DigestView
from alerts.rules import Remediation
from bot.alert_buttons import AlertButtons, install_alert_buttons
from bot.callbacks import AlertAction, AlertCb, TuneAction, TuneCb
from bot.routers.fallback import UNKNOWN_BUTTON
from simulator.telegram_api import FakeTelegram, SentMessage
from tests.bot.alert_services import AlertServices, incident, member, tune_row
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import ADMIN, ALERT_CHAT, GROUP_MEMBER, STRANGER, VIEWER, buttons, press, say

FIX = Remediation(label="Restart client", action="market.restart_client")
OFF = "Alerting is not running in this process."


@pytest.fixture
def services(frame_ctx) -> AlertServices:
    now = frame_ctx.clock.time()
    made = AlertServices.make(frame_ctx.clock, [
        incident(1, "Market API down", "critical", opened_at=now - 300, runbook="Check the provider's status page",
                 members=[member("market_api_down", "DexScreener unreachable", labels={"endpoint": "tokens"},
                                 since=now - 300),
                          member("backlog_high", "Backlog 500 tokens", folded_under="market_api_down")]),
        incident(2, "API slow", "warning", opened_at=now - 60, remediations=[FIX],
                 members=[member("api_slow", "API pairs p95 3.1s over 2s", labels={"endpoint": "pairs"}, value=3.1)]),
    ], rows=[tune_row("api_slow", 2.0, 2.5), tune_row("pipeline_stalled", 1.0, None, severity="critical", unit="")])
    frame_ctx.alerts = made.alerts
    return made


async def say_many(fake: FakeTelegram, chat_id: int, user_id: int, text: str, n: int) -> list[SentMessage]:
    before = len(fake.sent(chat_id))
    fake.user_sends(chat_id, user_id, text)
    await fake.wait_for(lambda: len(fake.sent(chat_id)) >= before + n, 10)
    return fake.sent(chat_id)[before:]


async def engine_message(running_bot, fake: FakeTelegram, services: AlertServices, incident_id: int,
                         chat_id: int = ALERT_CHAT) -> SentMessage:
    """An alert message as the engine sends it: its text and the bot's ButtonFactory keyboard."""
    factory = services.alerts.buttons
    view = services.incidents.views[incident_id]
    markup = factory.incident(incident_id, remediations=view.remediations, resolved=False)
    await running_bot.bot.send_message(chat_id, f"🔴 <b>#{incident_id}</b> alert",
                                       reply_markup=InlineKeyboardMarkup.model_validate(markup))
    return fake.sent(chat_id)[-1]


@pytest.fixture
def with_buttons(running_bot, frame_ctx, services) -> AlertButtons:
    factory = install_alert_buttons(frame_ctx, running_bot.dp["parts"].signer)
    assert isinstance(factory, AlertButtons) and services.alerts.buttons is factory
    return factory


# --- /alerts and /ack ------------------------------------------------------------------------------

async def test_alerts_lists_open_incidents_most_severe_first_with_their_buttons(fake, running_bot, services):
    header, first, second = await say_many(fake, VIEWER, VIEWER, "/alerts", 3)
    assert header.plain.startswith("🚨 Open alerts: 2")
    assert first.plain.startswith("🔴 #1 CRITICAL · Market API down")
    assert "↳ 🔥 backlog_high" in first.plain and "1 consequence(s) folded" in first.plain
    assert "📖 Check the provider's status page" in first.plain
    assert list(buttons(first)) == ["✅ Acknowledge", "🔕 Silence 1h", "⏫ Escalate", "🔎 Details"]
    assert list(buttons(second)) == ["✅ Acknowledge", "🔕 Silence 1h", "⏫ Escalate", "🔎 Details",
                                     "🛠 Restart client"]
    assert services.calls == []


async def test_alerts_with_nothing_open_and_without_alerting(fake, running_bot, frame_ctx, services):
    for v in list(services.incidents.views):
        services.incidents.resolve(v)
    assert (await say(fake, ADMIN, ADMIN, "/alerts")).plain == "✅ No open alerts."
    frame_ctx.alerts = None
    for command in ("/alerts", "/ack 1", "/silence", "/maintenance", "/tune", "/digest"):
        assert (await say(fake, ADMIN, ADMIN, command)).plain == OFF


async def test_ack_on_a_card_acknowledges_once_and_redraws_the_card(fake, running_bot, services):
    _, card, _ = await say_many(fake, ADMIN, ADMIN, "/alerts", 3)
    answer = await press(fake, ADMIN, ADMIN, card.message_id, buttons(card)["✅ Acknowledge"])
    assert answer["text"] == "Acknowledged."
    assert services.incidents.views[1].acked_by == "@user111"
    assert "✅ Acknowledged by @user111" in card.plain and len(card.edits) == 1
    before = services.state()
    again = await press(fake, ADMIN, ADMIN, card.message_id, buttons(card)["✅ Acknowledge"])  # double tap
    assert (again["text"], again["show_alert"]) == ("Already acknowledged by @user111.", True)
    assert services.state() == before and len(card.edits) == 1


async def test_ack_command_does_what_the_button_does(fake, running_bot, services):
    assert (await say(fake, ADMIN, ADMIN, "/ack 2")).plain == "✅ Acknowledged."
    assert services.incidents.views[2].acked_by == "@user111"
    assert (await say(fake, ADMIN, ADMIN, "/ack #2")).plain == "ℹ️ Already acknowledged by @user111."


@pytest.mark.parametrize("text, reply", [
    ("/ack abc", "⚠️ 'abc' is not an incident number. Example: /ack 12 (the numbers are in /alerts)"),
    ("/ack", "⚠️ Give one incident number. Example: /ack 12 (the numbers are in /alerts)"),
    ("/ack 1 2", "⚠️ Give one incident number. Example: /ack 12 (the numbers are in /alerts)"),
    ("/ack 99999", "⚠️ No incident #99999. Example: /ack 12"),
    ("/ack -5", "⚠️ '-5' is not an incident number. Example: /ack 12 (the numbers are in /alerts)"),
])
async def test_bad_ack_arguments_get_one_line_with_an_example(fake, running_bot, services, text, reply):
    before = services.state()
    msg = await say(fake, ADMIN, ADMIN, text)
    assert msg.plain == reply and "\n" not in msg.plain
    assert services.state() == before


async def test_only_admins_may_ack(fake, running_bot, services):
    assert (await say(fake, VIEWER, VIEWER, "/ack 1")).plain == "Only admins can do that."
    assert (await say(fake, STRANGER, STRANGER, "/ack 1")).plain == "Not authorised."
    assert services.calls == []


# --- the engine's alert messages ------------------------------------------------------------------

async def test_buttons_on_the_engines_message_act_and_leave_its_text_to_the_engine(
        fake, running_bot, services, with_buttons):
    msg = await engine_message(running_bot, fake, services, 2)
    b = buttons(msg)
    assert list(b) == ["✅ Acknowledge", "🔕 Silence 1h", "⏫ Escalate", "🔎 Details", "🛠 Restart client"]
    assert all(len(data.encode()) <= 64 for data in b.values())
    assert (await press(fake, ALERT_CHAT, ADMIN, msg.message_id, b["⏫ Escalate"]))["text"] == "Escalated to level 1."
    assert (await press(fake, ALERT_CHAT, ADMIN, msg.message_id, b["🔕 Silence 1h"]))["text"] == "Silenced for 1h."
    assert (await press(fake, ALERT_CHAT, ADMIN, msg.message_id, b["🛠 Restart client"]))["text"] == \
        "Ran Restart client."
    twice = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, b["🛠 Restart client"])
    assert twice["text"] == "Restart client already ran."
    assert services.calls == [("escalate", 2, "@user111"), ("silence_incident", 2, 3600.0, "@user111"),
                              ("remediate", 2, 0, "@user111"), ("remediate", 2, 0, "@user111")]
    assert msg.edits == []  # the engine redraws its own message


async def test_details_is_a_new_message_with_the_timeline_and_open_to_viewers(
        fake, running_bot, frame_ctx, services, with_buttons):
    msg = await engine_message(running_bot, fake, services, 1)
    await press(fake, ALERT_CHAT, ADMIN, msg.message_id, buttons(msg)["✅ Acknowledge"])
    before = len(fake.sent(ALERT_CHAT))
    answer = await press(fake, ALERT_CHAT, VIEWER, msg.message_id, buttons(msg)["🔎 Details"])
    await fake.wait_for(lambda: len(fake.sent(ALERT_CHAT)) > before, 10)
    details = fake.sent(ALERT_CHAT)[-1]
    assert answer["text"] is None and msg.edits == []
    assert "🕑 Timeline (UTC)" in details.plain
    assert "fired — Market API down (value 1)" in details.plain
    assert "acknowledged · by @user111" in details.plain


@pytest.mark.parametrize("user, chat, refusal", [
    (VIEWER, ALERT_CHAT, "Only admins can do that."),
    (GROUP_MEMBER, ALERT_CHAT, "Only admins can do that."),   # alert-chat members are viewers
    (STRANGER, STRANGER, "Not authorised."),                   # e.g. a forwarded alert
])
async def test_a_viewers_or_strangers_press_changes_nothing(fake, running_bot, services, with_buttons, user, chat,
                                                            refusal):
    msg = await engine_message(running_bot, fake, services, 2, chat_id=chat)
    before = services.state()
    for label in ("✅ Acknowledge", "🔕 Silence 1h", "⏫ Escalate", "🛠 Restart client", "🔎 Details"):
        if label == "🔎 Details" and user != STRANGER:
            continue  # viewers may read the details
        answer = await press(fake, chat, user, msg.message_id, buttons(msg)[label])
        assert (answer["text"], answer["show_alert"]) == (refusal, True)
    assert services.calls == [] and services.state() == before and msg.edits == []


async def test_forged_and_tampered_presses_change_nothing(fake, running_bot, services, with_buttons):
    msg = await engine_message(running_bot, fake, services, 1)
    real = buttons(msg)["✅ Acknowledge"]
    signer = running_bot.dp["parts"].signer
    packed, _, sig = real.rpartition(":")
    forged = [
        AlertCb(action=AlertAction.ACK, incident=2).pack() + ":" + sig,   # another incident, the old signature
        AlertCb(action=AlertAction.ACK, incident=1).pack() + ":AAAAAAAA",  # a made-up signature
        AlertCb(action=AlertAction.ACK, incident=1).pack(),                # unsigned
        "al:a:1:0:0:" + "x" * 60,                                          # oversized
    ]
    for data in forged:
        answer = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, data)
        assert (answer["text"], answer["show_alert"]) == (UNKNOWN_BUTTON, True)
    assert signer.unpack(AlertCb, real).incident == 1
    assert services.calls == []


async def test_alert_buttons_keep_working_for_days_and_stale_ones_do_nothing(
        fake, running_bot, frame_ctx, services, with_buttons):
    msg = await engine_message(running_bot, fake, services, 1)
    frame_ctx.clock.advance(3 * 86400)  # an incident can last days: its buttons do not expire
    assert (await press(fake, ALERT_CHAT, ADMIN, msg.message_id, buttons(msg)["⏫ Escalate"]))["text"] == \
        "Escalated to level 1."
    services.incidents.resolve(1)
    before = services.state()
    stale = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, buttons(msg)["✅ Acknowledge"])
    assert (stale["text"], stale["show_alert"]) == ("Incident #1 is resolved; nothing to do.", True)
    assert services.state() == before
    resolved = with_buttons.incident(1, remediations=[], resolved=True)
    assert [b["text"] for row in resolved["inline_keyboard"] for b in row] == ["🔎 Details"]


def test_callback_data_fits_for_the_largest_ids():
    from app.clock import ManualClock
    from bot.callbacks import CallbackSigner

    factory = AlertButtons(CallbackSigner(b"k", ManualClock(2e9)))
    markups = [factory.incident(2**62, remediations=[FIX] * 10, resolved=False), factory.silence(2**62),
               factory.tuning(2**62)]
    for markup in markups:
        for row in markup["inline_keyboard"]:
            for b in row:
                assert len(b["callback_data"].encode()) <= 64


# --- /silence ---------------------------------------------------------------------------------------

async def test_silence_sets_lists_and_unsilences(fake, running_bot, services):
    msg = await say(fake, ADMIN, ADMIN, "/silence rule=api_slow endpoint=tokens 2h deploy <b>&")
    assert msg.plain == "✅ Silence #1 set."
    assert services.calls == [("silence", "rule=api_slow endpoint=tokens", 7200.0, "deploy <b>&", "@user111")]
    assert (await say(fake, ADMIN, ADMIN, "/silence pipeline_stalled 30m")).plain == "✅ Silence #2 set."
    assert services.calls[-1][1:3] == ("rule=pipeline_stalled", 1800.0)
    listing = await say(fake, VIEWER, VIEWER, "/silence")
    assert "#1 rule=api_slow endpoint=tokens — ends in 2h 00m · by @user111 · deploy <b>&" in listing.plain
    assert buttons(listing) == {}  # a viewer in private gets no buttons
    listing = await say(fake, ADMIN, ADMIN, "/silence")
    answer = await press(fake, ADMIN, ADMIN, listing.message_id, buttons(listing)["🔔 Unsilence #1"])
    assert answer["text"] == "Silence #1 removed."
    assert "#1 " not in listing.plain and list(buttons(listing)) == ["🔔 Unsilence #2"]


async def test_an_unsilence_button_on_the_engines_reminder_and_a_stale_one(fake, running_bot, services, with_buttons):
    await say(fake, ADMIN, ADMIN, "/silence api_slow 1h")
    markup = with_buttons.silence(1)
    await running_bot.bot.send_message(ALERT_CHAT, "🔕 silence #1 ends in 10m",
                                       reply_markup=InlineKeyboardMarkup.model_validate(markup))
    reminder = fake.sent(ALERT_CHAT)[-1]
    viewer = await press(fake, ALERT_CHAT, VIEWER, reminder.message_id, buttons(reminder)["🔔 Unsilence #1"])
    assert viewer["text"] == "Only admins can do that." and 1 in services.quiet.active
    ok = await press(fake, ALERT_CHAT, ADMIN, reminder.message_id, buttons(reminder)["🔔 Unsilence #1"])
    assert ok["text"] == "Silence #1 removed." and reminder.edits == []
    stale = await press(fake, ALERT_CHAT, ADMIN, reminder.message_id, buttons(reminder)["🔔 Unsilence #1"])
    assert (stale["text"], stale["show_alert"]) == ("Silence #1 is already over.", True)


@pytest.mark.parametrize("text, problem", [
    ("/silence rule= 1h", "bad matcher 'rule='; write name=value"),
    ("/silence endpoint=<b>x 1h", "bad matcher 'endpoint=<b>x'; write name=value"),
    ("/silence Endpoint=tokens 1h", "bad matcher 'Endpoint=tokens'; write name=value"),
    ("/silence rule=nope 1h", "unknown rule 'nope'"),
    ("/silence nope 1h", "unknown rule 'nope'; give a rule name or matchers"),
    ("/silence api_slow forever", "'forever' is not a duration; write it like 30m, 2h or 1d"),
    ("/silence api_slow", "say for how long"),
    ("/silence 2h", "say what to silence: a rule name or matchers"),
    ("/silence api_slow 30d", "'30d' is too long; at most 7d 00h"),
])
async def test_bad_silence_arguments_change_nothing(fake, running_bot, services, text, problem):
    msg = await say(fake, ADMIN, ADMIN, text)
    assert msg.plain == f"⚠️ {problem}. Example: /silence rule=api_slow endpoint=tokens 2h deploy"
    assert services.calls == []


async def test_a_viewer_cannot_set_a_silence(fake, running_bot, services):
    assert (await say(fake, VIEWER, VIEWER, "/silence api_slow 1h")).plain == "Only admins can do that."
    assert services.calls == []


# --- /maintenance -----------------------------------------------------------------------------------

async def test_maintenance_on_show_and_off(fake, running_bot, frame_ctx, services):
    assert (await say(fake, VIEWER, VIEWER, "/maintenance")).plain.startswith("🛠 Maintenance: off.")
    assert (await say(fake, ADMIN, ADMIN, "/maintenance on 30m db upgrade")).plain == "✅ Maintenance on."
    assert services.calls == [("maintenance_on", 1800.0, "db upgrade", "@user111")]
    again = await say(fake, ADMIN, ADMIN, "/maintenance on 1h")
    assert again.plain == "ℹ️ Maintenance is already on."
    shown = await say(fake, VIEWER, VIEWER, "/maintenance")
    assert "🛠 Maintenance: on until" in shown.plain and "reason: db upgrade" in shown.plain
    assert buttons(shown) == {}
    assert (await say(fake, VIEWER, VIEWER, "/maintenance off")).plain == "Only admins can do that."
    assert services.quiet.window is not None
    assert (await say(fake, ADMIN, ADMIN, "/maintenance off")).plain == "✅ Maintenance off."
    assert (await say(fake, ADMIN, ADMIN, "/maintenance off")).plain == "ℹ️ Maintenance is not on."


async def test_end_maintenance_button(fake, running_bot, services):
    await say(fake, ADMIN, ADMIN, "/maintenance on 1h")
    shown = await say(fake, ADMIN, ADMIN, "/maintenance")
    data = buttons(shown)["⏹ End maintenance"]
    viewer = await press(fake, ADMIN, VIEWER, shown.message_id, data)
    assert viewer["text"] == "Only admins can do that." and services.quiet.window is not None
    assert (await press(fake, ADMIN, ADMIN, shown.message_id, data))["text"] == "Maintenance off."
    assert shown.plain.startswith("🛠 Maintenance: off.")
    stale = await press(fake, ADMIN, ADMIN, shown.message_id, data)
    assert stale["text"] == "That maintenance window is already over."


@pytest.mark.parametrize("text, problem", [
    ("/maintenance on forever", "'forever' is not a duration; write it like 30m, 2h or 1d"),
    ("/maintenance on", "say for how long"),
    ("/maintenance on 10s", "'10s' is too short; at least 1m 00s"),
    ("/maintenance start 30m", "'start': use on <duration> [reason] or off"),
    ("/maintenance off now", "'off': use on <duration> [reason] or off"),
])
async def test_bad_maintenance_arguments_change_nothing(fake, running_bot, services, text, problem):
    msg = await say(fake, ADMIN, ADMIN, text)
    assert msg.plain == f"⚠️ {problem}. Example: /maintenance on 30m database upgrade"
    assert services.calls == []


# --- /tune ------------------------------------------------------------------------------------------

async def test_tune_apply_and_revert(fake, running_bot, frame_ctx, services):
    msg = await say(fake, ADMIN, ADMIN, "/tune")
    assert "api_slow (warning): fired 12× · firing 1h 30m · acked 25% · cleared unattended 50%" in msg.plain
    assert "pipeline_stalled (critical)" in msg.plain and "no suggestion" in msg.plain
    assert "threshold 2s → suggested 2.5s (p99 of 6d 20h of healthy history)" in msg.plain
    assert list(buttons(msg)) == ["✔ Apply api_slow"]
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["✔ Apply api_slow"])
    assert answer["text"] == "api_slow: threshold set to 2.5."
    assert services.calls == [("apply", "api_slow", "@user111")]
    assert "threshold 2.5s (file 2s)" in msg.plain and list(buttons(msg)) == ["↩ Revert api_slow"]
    assert (await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["↩ Revert api_slow"]))["text"] == \
        "api_slow: threshold back to 2."
    old_revert = msg.edits[0].reply_markup["inline_keyboard"][0][0]["callback_data"]
    twice = await press(fake, ADMIN, ADMIN, msg.message_id, old_revert)
    assert twice["text"] == "Change #1 is already reverted."


async def test_tune_buttons_refused_to_viewers_and_apply_expires(fake, running_bot, frame_ctx, services):
    msg = await say(fake, ALERT_CHAT, VIEWER, "/tune@tokenwatch_test_bot")
    apply = buttons(msg)["✔ Apply api_slow"]  # shown in the group: a viewer's press is refused
    assert (await press(fake, ALERT_CHAT, VIEWER, msg.message_id, apply))["text"] == "Only admins can do that."
    frame_ctx.clock.advance(2 * 3600)
    expired = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, apply)
    assert expired["text"] == "This button has expired; send /tune again."
    assert services.calls == [] and msg.edits == []
    signer = running_bot.dp["parts"].signer
    unknown = signer.pack(TuneCb(action=TuneAction.APPLY, rule="zzzzzzzzzz", ts=signer.now_ts()))
    gone = await press(fake, ALERT_CHAT, ADMIN, msg.message_id, unknown)
    assert gone["text"] == "That rule is no longer loaded; send /tune again." and services.calls == []


# --- /digest and /status ----------------------------------------------------------------------------

async def test_digest_replies_with_the_digest_text(fake, running_bot, services):
    msg = await say(fake, VIEWER, VIEWER, "/digest")
    assert msg.plain == "📰 Digest\nno alerts" and msg.photo is None
    assert services.calls == [("build", 24.0)]


async def test_status_shows_open_alerts_and_maintenance(fake, frame_ctx, services):
    from bot.app import build_dispatcher
    from bot.runner import BotRunner
    from bot.setup import build_status_sections

    runner = BotRunner(frame_ctx, dispatcher=build_dispatcher(frame_ctx, status_sections=build_status_sections()),
                       polling_timeout=1)
    await runner.start()
    try:
        await say(fake, ADMIN, ADMIN, "/maintenance on 45m db <upgrade>")
        status = await say(fake, VIEWER, VIEWER, "/status")
        assert "Alerts: 2 open (1 critical)" in status.plain.splitlines()
        assert any(line.startswith("🛠 Maintenance until ") and line.endswith(" UTC (db <upgrade>)")
                   for line in status.plain.splitlines())
        frame_ctx.alerts = None
        assert "Alerts:" not in (await say(fake, VIEWER, VIEWER, "/status")).plain
    finally:
        await runner.stop()
