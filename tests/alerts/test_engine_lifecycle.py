"""Fire, pending, resolve, flap, inhibit: what lands in the alert chat."""
from __future__ import annotations

from alerts.api import Actor
from simulator.telegram_html import check_message, visible_text
from alerts.engine import AlertEngine
from delivery import Outbox
from tests.alerts.conftest import ALERT_CHAT, Harness, make_rules, obs


async def test_nothing_is_sent_while_pending_and_one_message_after_for(harness):
    await harness.feed(obs("api_slow", 2.7, endpoint="tokens", threshold=2))
    await harness.advance(58)
    await harness.feed(obs("api_slow", 2.9, endpoint="tokens", threshold=2))
    assert await harness.messages() == []
    assert [e.kind for e in await harness.events()] == ["pending"]

    await harness.advance(2)
    await harness.feed(obs("api_slow", 3.1, endpoint="tokens", threshold=2))
    sent = await harness.messages()
    assert len(sent) == 1
    shown = visible_text(sent[0].text)
    assert "API tokens p95 3.1s over 2s" in shown and "WARNING" in shown
    assert "DexScreener answers slowly" in shown
    assert sent[0].idempotency_key.startswith("alert:")
    # the same reading again changes nothing
    await harness.feed(obs("api_slow", 3.1, endpoint="tokens", threshold=2))
    assert len(await harness.rows()) == 1


async def test_cleared_while_pending_sends_nothing(harness):
    await harness.feed(obs("api_slow", 2.7, endpoint="tokens", threshold=2))
    await harness.advance(30)
    await harness.feed(obs("api_slow", 1.0, False, endpoint="tokens", threshold=2))
    await harness.advance(60)
    await harness.feed(obs("api_slow", 1.0, False, endpoint="tokens", threshold=2))
    assert await harness.rows() == []
    assert [e.kind for e in await harness.events()] == ["pending", "cleared"]


async def test_resolution_waits_for_keep_firing_for_and_says_how_long_it_lasted(harness):
    await harness.feed(obs("api_errors", 9, threshold=5))
    await harness.advance(300 - 2)   # 5m: the first escalation step (chat) is due at 5m for critical
    [incident] = await harness.engine.open_incidents()
    await harness.engine.acknowledge(incident.id, Actor(111, "Ann"))
    await harness.feed(obs("api_errors", 1, False, threshold=5))
    await harness.advance(8)
    assert len(await harness.messages()) == 1          # still within keep_firing_for (10s)
    await harness.advance(2)                            # resolved by the tick, not at the next evaluation
    sent = await harness.messages()
    assert len(sent) == 2
    resolved = visible_text(sent[-1].text)
    assert "Resolved" in resolved and "5m" in resolved and "acknowledged by Ann" in resolved
    edit = visible_text((await harness.last_edit()).text)
    assert "Resolved after" in edit
    assert harness.engine.open_counts() == {"critical": 0, "warning": 0, "info": 0}


async def test_a_flapping_series_becomes_one_state_and_one_message_until_it_settles(harness):
    async def flip(breached: bool) -> None:
        await harness.feed(obs("api_errors", 9 if breached else 1, breached, threshold=5))

    async def notices() -> list:     # everything but the escalation steps of the open incident
        return [m for m in await harness.messages() if ":esc" not in m.idempotency_key]

    await flip(True)                 # fire     (change 1)
    await harness.advance(2)
    await flip(False)
    await harness.advance(10)        # resolve  (change 2)
    await flip(True)                 # fire     (change 3)
    await harness.advance(2)
    await flip(False)
    await harness.advance(10)        # resolve  (change 4): flapping
    before = len(await notices())
    for _ in range(10):              # keeps flapping: nothing new is sent
        await flip(True)
        await harness.advance(4)
        await flip(False)
        await harness.advance(12)
    assert len(await notices()) == before
    assert len(await harness.events("flapping")) == 1
    assert "Flapping" in visible_text((await harness.last_edit()).text)
    assert harness.engine.open_counts()["critical"] == 1
    await harness.advance(300)       # settles clear: one resolution
    sent = await notices()
    assert len(sent) == before + 1 and "Resolved" in visible_text(sent[-1].text)
    assert len(await harness.events("settled")) == 1


async def test_consequences_fold_into_the_root_cause_message_without_their_own(harness):
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"))
    await harness.advance(30)
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"))
    assert len(await harness.messages()) == 1
    await harness.feed(obs("pipeline_stalled", 0, stage="fetch", context={"stage": "fetch"}),
                       obs("backlog_high", 900, threshold=500))
    sent = await harness.messages()
    assert len(sent) == 1                               # no message of their own
    edit = visible_text((await harness.last_edit()).text)
    assert "consequences:" in edit and "Processing stopped at fetch" in edit and "Backlog 900 over 500" in edit
    assert harness.engine.open_counts()["critical"] == 1
    assert len(await harness.events("folded")) == 2


async def test_a_root_cause_firing_later_pulls_its_consequences_in(harness):
    await harness.feed(obs("pipeline_stalled", 0, context={"stage": "fetch"}))
    assert len(await harness.messages()) == 1
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"))
    await harness.advance(30)
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"))
    sent = await harness.messages()
    assert len(sent) == 2                               # the root cause's incident opens
    assert harness.engine.open_counts()["critical"] == 1   # the consequence's incident was merged into it
    closed = await harness.events("closed")
    assert len(closed) == 1 and "merged into" in closed[0].detail
    first_edits = [r for r in await harness.rows() if r.target_key == sent[0].idempotency_key]
    assert "merged into #" in visible_text(first_edits[-1].text)
    assert not any("Resolved" in visible_text(m.text) for m in sent)
    view = (await harness.engine.open_incidents())[0]
    assert {m.rule: m.folded_under for m in view.members} == {"market_api_down": None,
                                                             "pipeline_stalled": "market_api_down"}


async def test_an_unrelated_rule_joining_pings_the_same_rule_does_not(harness):
    await harness.feed(obs("api_errors", 9, threshold=5))
    await harness.feed(obs("api_slow", 3, endpoint="a", threshold=2))
    await harness.advance(60)
    await harness.feed(obs("api_slow", 3, endpoint="a", threshold=2), obs("api_slow", 3, endpoint="b", threshold=2))
    sent = await harness.messages()
    assert len(sent) == 2 and "joined incident" in visible_text(sent[1].text)
    assert harness.engine.open_counts() == {"critical": 1, "warning": 0, "info": 0}


async def test_a_flood_of_series_is_one_message_with_counts_and_top_reasons(harness):
    reasons = ["no pool", "rate limited", "timeout"]
    flood = [obs("stuck_tokens", 1, threshold=0, token=f"T{i}", reason=reasons[i % 3],
                 context={"token": f"T{i}", "reason": reasons[i % 3]}) for i in range(500)]
    await harness.feed(*flood[:1])
    await harness.feed(*flood[1:])
    sent = await harness.messages()
    assert len(sent) == 1
    edit = (await harness.last_edit()).text
    assert check_message(edit, "HTML") is None
    shown = visible_text(edit)
    assert "stuck_tokens ×500" in shown and "top reasons" in shown and "no pool (167)" in shown


async def test_out_of_band_rules_go_to_the_log_console_and_fallback_webhook_not_the_chat(harness, caplog, capsys):
    await harness.feed(obs("telegram_failing", 1, threshold=0))
    assert await harness.rows() == []
    assert any(r.levelname == "ERROR" and "Telegram delivery failing" in r.getMessage() for r in caplog.records)
    assert "Telegram delivery failing" in capsys.readouterr().err
    assert [e.detail for e in await harness.events("notified")] == ["opened: log, console"]
    await harness.feed(obs("telegram_failing", 0, False, threshold=0))
    await harness.advance(10)
    assert [e.detail for e in await harness.events("notified")][-1] == "resolved: log, console"
    assert await harness.rows() == []


async def test_a_consequence_waits_for_its_pending_root_cause_and_is_folded_not_sent(harness):
    """Processing stops (for 0s) while the market outage is still pending (for 30s): the stall
    waits for its root cause instead of going out as its own incident a moment before it."""
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"))
    await harness.advance(10)
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"),
                       obs("pipeline_stalled", 0, context={"stage": "fetch"}))
    assert await harness.messages() == []
    await harness.advance(20)
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"),
                       obs("pipeline_stalled", 0, context={"stage": "fetch"}))
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"),
                       obs("pipeline_stalled", 0, context={"stage": "fetch"}))
    sent = await harness.messages()
    assert len(sent) == 1 and "Market API down" in visible_text(sent[0].text)
    view = (await harness.engine.open_incidents())[0]
    assert {m.rule: m.folded_under for m in view.members} == {"market_api_down": None,
                                                             "pipeline_stalled": "market_api_down"}
    assert await harness.events("closed") == []      # no incident of its own was opened and merged


async def test_the_incident_resolves_with_its_root_cause_while_a_lagging_consequence_clears(harness):
    """The market answers again; the backlog (a lagging window) is still over its limit for a
    moment. The resolution goes out with the root cause, and the backlog, clear before its own
    keep_firing_for, never gets a message of its own."""
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"))
    await harness.advance(30)
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"), obs("backlog_high", 900, threshold=500))
    assert len(await harness.messages()) == 1
    await harness.feed(obs("market_api_down", 1, breached=False, endpoint="pairs"),
                       obs("backlog_high", 800, threshold=500))
    await harness.advance(20)       # keep_firing_for of market_api_down (20s)
    await harness.feed(obs("market_api_down", 1, breached=False, endpoint="pairs"),
                       obs("backlog_high", 700, threshold=500))
    sent = await harness.messages()
    assert len(sent) == 2 and "Resolved" in visible_text(sent[1].text)
    assert harness.engine.open_counts() == {"critical": 0, "warning": 0, "info": 0}
    await harness.advance(4)
    await harness.feed(obs("market_api_down", 1, breached=False, endpoint="pairs"),
                       obs("backlog_high", 300, breached=False, threshold=500))
    await harness.advance(30)
    assert len(await harness.messages()) == 2       # the backlog cleared: nothing more


async def test_a_consequence_still_breached_after_its_root_resolved_opens_its_own_incident(harness):
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"))
    await harness.advance(30)
    await harness.feed(obs("market_api_down", 0, endpoint="pairs"), obs("backlog_high", 900, threshold=500))
    await harness.advance(30)
    await harness.feed(obs("market_api_down", 1, breached=False, endpoint="pairs"),
                       obs("backlog_high", 900, threshold=500))
    await harness.advance(20)
    await harness.feed(obs("market_api_down", 1, breached=False, endpoint="pairs"),
                       obs("backlog_high", 900, threshold=500))
    assert len(await harness.messages()) == 2        # opened, resolved
    await harness.advance(12)                          # backlog_high's keep_firing_for (10s) passed
    await harness.feed(obs("market_api_down", 1, breached=False, endpoint="pairs"),
                       obs("backlog_high", 950, threshold=500))
    sent = await harness.messages()
    assert len(sent) == 3 and "Backlog 950 over 500" in visible_text(sent[2].text)


LAGGING = {"name": "error_rate_high", "metric": "tokenwatch_collector_up", "threshold": 0.25, "for": "1m",
           "keep_firing_for": "1m", "window": "2m", "severity": "warning", "group": "market",
           "depends_on": ["market_api_down"], "unit": "ratio", "summary": "API errors {value}"}


async def lagging_harness(db, clock, settings, **over):
    rules = make_rules([{**LAGGING, **over}])
    outbox = Outbox(db, clock)
    engine = AlertEngine(db, clock, settings, rules, outbox)
    await engine.start()
    return Harness(db, clock, settings, rules, outbox, engine)


async def test_a_consequence_that_was_still_pending_when_its_root_resolved_waits_instead_of_joining(
        db, clock, settings):
    """The bench's 3-minute outage: the error rate (a lagging window) went over its limit during the
    outage and was still waiting for its ``for`` when the market answered again. It must not join the
    incident as something unrelated and keep it open: the incident resolves with its root cause, and
    the error rate, clear by the end of its aftermath, never sends a message."""
    h = await lagging_harness(db, clock, settings)
    try:
        down = obs("market_api_down", 0, endpoint="pairs")
        await h.feed(down)
        await h.advance(30)
        await h.feed(down)
        assert len(await h.messages()) == 1                                  # the incident
        await h.advance(60)
        await h.feed(down, obs("error_rate_high", 0.5, endpoint="pairs", threshold=0.25))   # pending (for 1m)
        await h.advance(40)
        up = obs("market_api_down", 1, breached=False, endpoint="pairs")
        await h.feed(up, obs("error_rate_high", 0.6, endpoint="pairs", threshold=0.25))
        await h.advance(20)                                                  # root's keep_firing_for: resolved
        await h.feed(up, obs("error_rate_high", 0.55, endpoint="pairs", threshold=0.25))  # for 1m has passed
        sent = await h.messages()
        assert len(sent) == 2 and "Resolved" in visible_text(sent[1].text)
        assert h.engine.open_counts() == {"critical": 0, "warning": 0, "info": 0}
        for rate in (0.5, 0.4, 0.3, 0.2, 0.1):                               # the window drains
            await h.advance(40)
            await h.feed(up, obs("error_rate_high", rate, rate > 0.25, endpoint="pairs", threshold=0.25))
        await h.advance(60)
        assert len(await h.messages()) == 2                                  # nothing more
        waits = [e.detail for e in await h.events("pending") if e.rule == "error_rate_high"]
        assert any("root cause resolved" in (d or "") for d in waits)
    finally:
        await h.engine.close()


async def test_a_consequence_still_breached_after_its_aftermath_fires_on_its_own(db, clock, settings):
    h = await lagging_harness(db, clock, settings)
    try:
        down = obs("market_api_down", 0, endpoint="pairs")
        await h.feed(down)
        await h.advance(30)
        await h.feed(down, obs("error_rate_high", 0.5, endpoint="pairs", threshold=0.25))
        await h.advance(30)
        up = obs("market_api_down", 1, breached=False, endpoint="pairs")
        await h.feed(up, obs("error_rate_high", 0.5, endpoint="pairs", threshold=0.25))
        await h.advance(20)
        await h.feed(up, obs("error_rate_high", 0.5, endpoint="pairs", threshold=0.25))
        assert len(await h.messages()) == 2                                  # opened, resolved
        await h.advance(4 * 60)                                              # for + keep_firing_for + window
        await h.feed(up, obs("error_rate_high", 0.5, endpoint="pairs", threshold=0.25))
        sent = await h.messages()
        assert len(sent) == 3 and "API errors 50%" in visible_text(sent[2].text)
    finally:
        await h.engine.close()


async def test_a_consequence_waits_out_its_metrics_own_lookback_too(db, clock, settings):
    """``lookback = "5m"``: the metric is itself a 5-minute error rate, so 4 minutes after the market
    answered again it still reads the outage; it may fire on its own only once that past is gone."""
    h = await lagging_harness(db, clock, settings, lookback="5m")
    try:
        down = obs("market_api_down", 0, endpoint="pairs")
        await h.feed(down)
        await h.advance(30)
        await h.feed(down, obs("error_rate_high", 0.5, endpoint="pairs", threshold=0.25))
        await h.advance(30)
        up = obs("market_api_down", 1, breached=False, endpoint="pairs")
        await h.feed(up, obs("error_rate_high", 0.5, endpoint="pairs", threshold=0.25))
        await h.advance(20)
        for _ in range(8):                      # 4 minutes of the rate still reading the outage
            await h.advance(30)
            await h.feed(up, obs("error_rate_high", 0.4, endpoint="pairs", threshold=0.25))
        assert len(await h.messages()) == 2     # opened, resolved: nothing of its own yet
        await h.advance(5 * 60)
        await h.feed(up, obs("error_rate_high", 0.4, endpoint="pairs", threshold=0.25))
        sent = await h.messages()
        assert len(sent) == 3 and "API errors 40%" in visible_text(sent[2].text)
    finally:
        await h.engine.close()
