"""Silences: matchers, muting, expiry, the reminder, bad input, restarts (SQLite and PostgreSQL)."""
from __future__ import annotations

import pytest
from sqlmodel import select

from alerts.api import Actor
from alerts.models import AlertSilence
from alerts.quiet import Quiet
from delivery.store import Outbox
from tests.alerts.quiet_helpers import ALERT_CHAT, Buttons, events, queued, rules

ANN = Actor(7, "Ann")


async def make_quiet(db, clock) -> Quiet:
    quiet = Quiet(db, rules(), Outbox(db, clock), clock=clock, chat_id=ALERT_CHAT, buttons=lambda: Buttons(),
                  reminder_before_s=300)
    await quiet.start()
    return quiet


async def test_a_silence_mutes_what_it_matches_until_it_expires(db, clock):
    quiet = await make_quiet(db, clock)
    r = quiet.rules
    result = await quiet.silence("api_slow endpoint=tokens", 3600, "deploy", ANN)
    assert result.ok and result.changed and "Silence #1" in result.text
    now = clock.time()
    assert await quiet.muted(r["api_slow"], {"endpoint": "tokens"}, now) == "silence #1"
    assert await quiet.muted(r["api_slow"], {"endpoint": "pairs"}, now) is None
    assert await quiet.muted(r["loop_lag"], {"endpoint": "tokens"}, now) is None
    [view] = await quiet.silences()
    assert (view.matchers, view.reason, view.created_by, view.ends_at) == (
        "rule=api_slow endpoint=tokens", "deploy", "Ann", now + 3600)

    await quiet.silence("rule=~api_.* severity!=critical endpoint!~tok.*", 600, "", ANN)
    assert await quiet.muted(r["api_slow"], {"endpoint": "pairs"}, now) == "silence #2"
    assert await quiet.muted(r["db_down"], {}, now) is None

    clock.advance(3600)
    assert await quiet.muted(r["api_slow"], {"endpoint": "tokens"}, clock.time()) is None  # at its end, no timer needed
    await quiet.tick()
    assert await quiet.silences() == []

    async def rows(session):
        return list((await session.exec(select(AlertSilence).order_by(AlertSilence.id))).all())
    stored = await db.run(rows)
    assert [(s.ended_at, s.ended_by) for s in stored] == [(now + 3600, "expired"), (now + 600, "expired")]
    assert sorted(e.detail for e in await events(db, "unsilenced")) == ["silence #1 expired", "silence #2 expired"]


async def test_the_reminder_goes_out_once_with_an_unsilence_button_even_across_a_restart(db, clock):
    quiet = await make_quiet(db, clock)
    await quiet.silence("api_slow", 3600, "<b>deploy & co</b>", Actor(7, "Ann <admin>"))
    await quiet.silence("loop_lag", 600, "short", ANN)   # too short to remind (under 3 x 5m)
    clock.advance(3600 - 400)
    await quiet.tick()
    assert await queued(db) == []
    clock.advance(150)                                    # 4m 10s before the end
    await quiet.tick()
    await quiet.tick()
    again = await make_quiet(db, clock)                   # a restart re-reads the silences
    await again.tick()
    [reminder] = await queued(db)
    assert reminder.idempotency_key == "alerts:silence:1:reminder"
    assert "Silence #1" in reminder.text and "&lt;b&gt;deploy &amp; co&lt;/b&gt;" in reminder.text
    assert "uns:1" in (reminder.reply_markup or "")
    assert await again.muted(again.rules["api_slow"], {}, clock.time()) == "silence #1"


async def test_unsilence_lifts_once(db, clock):
    quiet = await make_quiet(db, clock)
    await quiet.silence("api_slow", 3600, "", ANN)
    first = await quiet.unsilence(1, ANN)
    second = await quiet.unsilence(1, ANN)
    missing = await quiet.unsilence(99, ANN)
    assert (first.changed, second.changed, second.ok, missing.ok, missing.changed) == (True, False, True, False, False)
    assert await quiet.muted(quiet.rules["api_slow"], {}, clock.time()) is None
    restarted = await make_quiet(db, clock)
    assert await restarted.silences() == []
    assert [e.actor for e in await events(db, "unsilenced")] == ["Ann"]


@pytest.mark.parametrize("matchers", [
    "endpoint=~(", "=tokens", "no_such_rule", "endpoint!=tokens", "Rule=api_slow bad-token",
    "endpoint=~" + "a" * 200, "endpoint=" + "x" * 300, " ", "endpoint=~.*", " ".join(["api_slow"] * 9),
])
async def test_a_bad_matcher_gets_one_line_with_an_example_and_changes_nothing(db, clock, matchers):
    quiet = await make_quiet(db, clock)
    result = await quiet.silence(matchers, 3600, "x", ANN)
    assert not result.ok and not result.changed
    assert "\n" not in result.text and "/silence rule=api_slow" in result.text and len(result.text) < 300
    assert await quiet.silences() == []
    assert await events(db) == []


@pytest.mark.parametrize("seconds", [0, 30, float("inf"), float("nan"), 8 * 86400])
async def test_a_silence_needs_a_bounded_duration(db, clock, seconds):
    quiet = await make_quiet(db, clock)
    result = await quiet.silence("api_slow", seconds, "", ANN)
    assert not result.ok and not result.changed and "\n" not in result.text
    assert await quiet.silences() == []
