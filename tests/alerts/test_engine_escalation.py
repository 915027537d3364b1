"""Acknowledge, escalate, re-arm, lapse, silence, restart: what operators receive, and when."""
from __future__ import annotations

import json

import pytest
from aiohttp import web

from alerts.api import ActionResult, Actor
from alerts.engine import AlertEngine
from alerts.rules import Rule
from simulator.telegram_html import check_message, visible_text
from tests.alerts.conftest import ADMINS, ALERT_CHAT, ESCALATION_CHAT, make_settings, obs

ANN = Actor(111, "Ann")
BOB = Actor(222, "Bob")


@pytest.fixture
async def hook():
    """A tiny local webhook receiver: ``hook.bodies`` collects the JSON it got; ``hook.status`` answers."""
    class Hook:
        bodies: list[dict] = []
        status = 200

    h = Hook()
    h.bodies = []

    async def receive(request: web.Request) -> web.Response:
        h.bodies.append(await request.json())
        return web.Response(status=h.status)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    h.url = f"http://127.0.0.1:{port}/hook"  # type: ignore[attr-defined]
    yield h
    await runner.cleanup()


async def _critical(harness) -> int:
    await harness.feed(obs("api_errors", 9, threshold=5))
    [incident] = await harness.engine.open_incidents()
    return incident.id


def _esc(rows):
    return [r for r in rows if ":esc" in r.idempotency_key]


async def test_every_escalation_step_in_order(harness, hook):
    harness.settings.escalation_webhook_url = hook.url
    iid = await _critical(harness)
    await harness.advance(298)
    assert _esc(await harness.rows()) == []
    await harness.advance(2)                                   # 5m: the alert chat, mentioning the admins
    [chat] = _esc(await harness.rows())
    assert chat.chat_id == ALERT_CHAT and all(f'href="tg://user?id={a}"' in chat.text for a in ADMINS)
    assert "unacknowledged after 5m" in visible_text(chat.text)
    await harness.advance(300)                                 # 10m: each admin directly
    assert sorted(r.chat_id for r in _esc(await harness.rows())[1:]) == sorted(ADMINS)
    await harness.advance(300)                                 # 15m: the escalation chat
    last = _esc(await harness.rows())[-1]
    assert last.chat_id == ESCALATION_CHAT and "api_errors" in visible_text(last.text)
    await harness.advance(300)                                 # 20m: the webhook
    assert len(hook.bodies) == 1
    assert hook.bodies[0]["kind"] == "alert_escalation" and hook.bodies[0]["incident"] == iid
    assert hook.bodies[0]["level"] == 4
    await harness.advance(3600)                                # the chain is over: nothing more
    assert len(_esc(await harness.rows())) == 4 and len(hook.bodies) == 1
    kinds = [e.kind for e in await harness.engine.timeline(iid)]
    assert kinds.count("escalated") == 4 and "webhook" in kinds
    assert all(check_message(r.text, "HTML") is None for r in await harness.rows())
    assert (await harness.engine.get(iid)).escalation_level == 4


async def test_a_failing_webhook_is_recorded_not_raised(harness, hook):
    harness.settings.escalation_webhook_url = hook.url
    hook.status = 500
    iid = await _critical(harness)
    await harness.advance(20 * 60)
    [result] = [e for e in await harness.engine.timeline(iid) if e.kind == "webhook"]
    assert "POST failed: HTTP 500" in result.detail


async def test_acknowledge_stops_escalation_and_edits_the_message(harness):
    iid = await _critical(harness)
    await harness.advance(60)
    result = await harness.engine.acknowledge(iid, ANN)
    assert result.changed and "Acknowledged" in result.text
    edit = visible_text((await harness.last_edit()).text)
    assert "Acknowledged by Ann" in edit
    again = await harness.engine.acknowledge(iid, BOB)          # a double tap / a second admin
    assert not again.changed and again.text == "Already acknowledged by Ann 0s ago."
    await harness.advance(30 * 60)
    assert _esc(await harness.rows()) == []
    assert harness.engine.open_counts()["critical"] == 1


async def test_an_acknowledgment_lapses_with_a_reminder_and_escalation_resumes(harness):
    iid = await _critical(harness)
    await harness.engine.acknowledge(iid, ANN)
    await harness.advance(3600 - 2)
    assert len(await harness.messages()) == 1
    await harness.advance(2)
    reminder = (await harness.messages())[-1]
    assert "lapsed" in visible_text(reminder.text) and "Ann" in visible_text(reminder.text)
    assert (await harness.engine.get(iid)).status == "open"
    await harness.advance(300)                                  # the chain re-armed from the lapse
    assert len(_esc(await harness.rows())) == 1
    assert [e.kind for e in await harness.engine.timeline(iid)].count("ack_lapsed") == 1


async def test_a_severity_rise_re_arms_an_acknowledged_incident(harness):
    await harness.feed(obs("api_slow", 3, endpoint="a", threshold=2))
    await harness.advance(60)
    await harness.feed(obs("api_slow", 3, endpoint="a", threshold=2))
    [incident] = await harness.engine.open_incidents()
    await harness.engine.acknowledge(incident.id, ANN)
    await harness.feed(obs("api_errors", 9, threshold=5))      # same group, critical
    view = await harness.engine.get(incident.id)
    assert view.severity == "critical" and view.status == "open" and view.next_escalation_at is not None
    texts = [visible_text(m.text) for m in await harness.messages()]
    assert any("rose from warning to critical" in t for t in texts)
    await harness.advance(300)
    assert len(_esc(await harness.rows())) == 1


async def test_a_stale_timer_does_nothing(harness):
    iid = await _critical(harness)
    inc = harness.engine.incidents[iid]
    token, due = inc.timer_token, inc.next_escalation_at
    await harness.engine.acknowledge(iid, ANN)                 # bumps the token
    harness.clock.set(due)
    assert await harness.engine.run_timer(iid, token, "escalate", due) is False
    assert _esc(await harness.rows()) == []
    assert (await harness.engine.get(iid)).escalation_level == 0


async def test_the_escalate_button_jumps_to_the_next_step_once(harness):
    iid = await _critical(harness)
    first = await harness.engine.escalate(iid, BOB)
    assert first.changed and "alert chat" in first.text
    again = await harness.engine.escalate(iid, ANN)
    assert not again.changed and again.text.startswith("Already escalated by Bob")
    assert len(_esc(await harness.rows())) == 1
    [step] = [e for e in await harness.engine.timeline(iid) if e.kind == "escalated"]
    assert step.actor == "Bob" and "escalated by Bob" in step.detail
    await harness.advance(300)                                  # the next step follows its own gap
    assert len(_esc(await harness.rows())) == 1 + len(ADMINS)


async def test_presses_on_a_resolved_or_unknown_incident_change_nothing(harness):
    iid = await _critical(harness)
    await harness.feed(obs("api_errors", 1, False, threshold=5))
    await harness.advance(10)
    before = await harness.rows()
    for press in (harness.engine.acknowledge(iid, ANN), harness.engine.escalate(iid, ANN),
                  harness.engine.silence_incident(iid, 3600, ANN), harness.engine.remediate(iid, 0, ANN)):
        result = await press
        assert not result.changed and "already resolved" in result.text
    unknown = await harness.engine.acknowledge(99999, ANN)
    assert not unknown.ok and "No incident #99999" in unknown.text
    assert len(await harness.rows()) == len(before)


async def test_repeat_firing_escalates_a_level(harness):
    for episode in range(5):
        await harness.feed(obs("api_errors", 9, threshold=5))
        await harness.feed(obs("api_errors", 1, False, threshold=5))
        await harness.advance(10)
        if episode < 4:
            assert _esc(await harness.rows()) == []
            await harness.advance(11 * 60)                       # far apart: not flapping
    escalations = [e for e in await harness.events("escalated")]
    assert len(escalations) == 1 and "fired 5 times" in escalations[0].detail
    assert len(_esc(await harness.rows())) == 1


async def test_a_silenced_incident_stops_escalating_and_still_announces_its_resolution(db, clock):
    calls: list[tuple[str, float, str, str]] = []

    async def silence(matchers: str, duration_s: float, reason: str, actor: Actor) -> ActionResult:
        calls.append((matchers, duration_s, reason, actor.name))
        return ActionResult(True, True, "Silenced.")

    from tests.alerts.conftest import make_rules
    from delivery.store import Outbox
    from tests.alerts.conftest import Harness

    settings = make_settings()
    outbox = Outbox(db, clock)
    engine = AlertEngine(db, clock, settings, make_rules(), outbox, silencer=silence)
    await engine.start()
    h = Harness(db, clock, settings, engine.rules, outbox, engine)
    await h.feed(obs("api_slow", 3, endpoint="tokens", threshold=2))
    await h.advance(60)
    await h.feed(obs("api_slow", 3, endpoint="tokens", threshold=2))
    [incident] = await engine.open_incidents()
    result = await engine.silence_incident(incident.id, 3600, ANN)
    assert result.changed and calls == [("rule=api_slow endpoint=tokens", 3600, f"incident #{incident.id}", "Ann")]
    assert not (await engine.silence_incident(incident.id, 3600, BOB)).changed
    assert "Muted: silenced" in visible_text((await h.last_edit()).text)
    await h.advance(30 * 60)
    assert _esc(await h.rows()) == []
    await h.feed(obs("api_slow", 1, False, endpoint="tokens", threshold=2))
    await h.advance(20)
    assert "Resolved" in visible_text((await h.messages())[-1].text)
    await engine.close()


async def test_a_muted_series_is_recorded_not_sent(db, clock):
    class MuteApiSlow:
        async def muted(self, rule: Rule, labels, now: float) -> str | None:
            return "maintenance" if rule.name == "api_slow" else None

        def in_maintenance(self, now: float) -> bool:
            return True

    from tests.alerts.conftest import Harness, make_rules
    from delivery.store import Outbox

    settings = make_settings()
    outbox = Outbox(db, clock)
    engine = AlertEngine(db, clock, settings, make_rules(), outbox, mutes=MuteApiSlow())
    await engine.start()
    h = Harness(db, clock, settings, engine.rules, outbox, engine)
    await h.feed(obs("api_slow", 3, endpoint="tokens", threshold=2))
    await h.advance(60)
    await h.feed(obs("api_slow", 3, endpoint="tokens", threshold=2))
    assert await h.events("fired") == []                       # maintenance relaxes `for` to 5m
    await h.advance(240)
    await h.feed(obs("api_slow", 3, endpoint="tokens", threshold=2))
    assert len(await h.events("fired")) == 1
    [muted] = await h.events("muted")
    assert "maintenance" in muted.detail
    await h.advance(45 * 60)
    await h.feed(obs("api_slow", 1, False, endpoint="tokens", threshold=2))
    await h.advance(20)
    assert await h.rows() == []                                 # never announced: no resolution either
    await engine.close()


async def test_a_restart_mid_incident_announces_nothing_again_and_keeps_its_timers(harness):
    iid = await _critical(harness)
    await harness.feed(obs("api_slow", 3, endpoint="x", threshold=2))   # pending, 1m `for`
    await harness.advance(180)
    rows_before = len(await harness.rows())
    engine2 = harness.restart()
    await engine2.start()
    harness.engine = engine2
    assert len(await harness.rows()) == rows_before
    assert engine2.open_counts()["critical"] == 1
    await harness.advance(118)
    assert _esc(await harness.rows()) == []
    await harness.advance(2)                                    # 5m after the opening, as scheduled
    assert len(_esc(await harness.rows())) == 1
    await harness.feed(obs("api_errors", 9, threshold=5), obs("api_slow", 3, endpoint="x", threshold=2))
    view = await engine2.get(iid)
    assert {m.rule for m in view.members} == {"api_errors", "api_slow"}   # the pending timer survived too
    assert len([m for m in await harness.messages() if "joined" in m.text]) == 1
    result = await engine2.acknowledge(iid, ANN)
    assert result.changed
    engine3 = harness.restart()
    await engine3.start()
    assert (await engine3.acknowledge(iid, BOB)).text.startswith("Already acknowledged by Ann")
    await engine2.close()
    await engine3.close()
