"""Maintenance windows: on, off, ending by themselves, one summary even across a restart,
the relaxation flag, critical alerts never muted, bad durations (SQLite and PostgreSQL)."""
from __future__ import annotations

import math

import pytest
from sqlmodel import select

from alerts.api import Actor
from alerts.models import AlertEvent, AlertMaintenance
from alerts.quiet import Quiet, parse_quiet_duration
from delivery.store import Outbox
from tests.alerts.quiet_helpers import ALERT_CHAT, Buttons, add_events, events, queued, rules

ANN = Actor(7, "Ann")


async def make_quiet(db, clock) -> Quiet:
    quiet = Quiet(db, rules(), Outbox(db, clock), clock=clock, chat_id=ALERT_CHAT, buttons=lambda: Buttons(),
                  maintenance_max_s=86400)
    await quiet.start()
    return quiet


def fired(at: float, rule: str, fp: str) -> AlertEvent:
    return AlertEvent(at=at, kind="fired", rule=rule, fingerprint=fp)


async def test_maintenance_mutes_non_critical_relaxes_rules_ends_by_itself_and_sums_up_once(db, clock):
    quiet = await make_quiet(db, clock)
    r = quiet.rules
    t0 = clock.time()
    assert not quiet.in_maintenance(t0) and quiet.current_maintenance(t0) is None
    result = await quiet.maintenance_on(1800, "migrating <db> & co", ANN)
    assert result.ok and result.changed
    assert quiet.in_maintenance(t0)
    assert await quiet.muted(r["api_slow"], {}, t0) == "maintenance"
    assert await quiet.muted(r["cache_low"], {}, t0) == "maintenance"
    assert await quiet.muted(r["db_down"], {}, t0) is None           # critical goes through
    view = quiet.current_maintenance(t0)
    assert view is not None and (view.reason, view.started_by, view.ends_at) == ("migrating <db> & co", "Ann", t0 + 1800)

    # what the engine records meanwhile
    await add_events(db, [fired(t0 + 60, "api_slow", "a"), fired(t0 + 120, "api_slow", "b"),
                          AlertEvent(at=t0 + 130, kind="resolved", rule="api_slow", fingerprint="a"),
                          fired(t0 + 300, "db_down", "c"), fired(t0 - 60, "loop_lag", "d")])
    clock.advance(600)
    await quiet.tick()
    assert quiet.current_maintenance(clock.time()).fired_meanwhile == 3
    assert await queued(db) == []

    clock.advance(1200)                     # its end: no longer on, even before the timer runs
    assert not quiet.in_maintenance(clock.time())
    assert await quiet.muted(r["api_slow"], {}, clock.time()) is None
    await quiet.tick()
    await quiet.tick()
    [summary] = await queued(db)
    assert summary.idempotency_key == "alerts:maintenance:1:summary"
    text = summary.text
    assert "Maintenance over" in text and "30m 00s" in text and "ran its time" in text
    assert "migrating &lt;db&gt; &amp; co" in text
    assert "3 alerts fired" in text and "<code>api_slow</code> ×2 (1 resolved)" in text and "db_down</code> ×1" in text
    assert "loop_lag" not in text

    async def rows(session):
        return list((await session.exec(select(AlertMaintenance))).all())
    [m] = await db.run(rows)
    assert (m.ended_at, m.ended_by, m.summary_sent) == (t0 + 1800, None, True)


async def test_a_window_that_ended_while_the_process_was_down_gets_its_summary_once_at_start(db, clock):
    quiet = await make_quiet(db, clock)
    await quiet.maintenance_on(600, "", ANN)
    del quiet                                 # the process stops
    clock.advance(3600)
    first = await make_quiet(db, clock)       # comes back after the window's end
    assert not first.in_maintenance(clock.time())
    second = await make_quiet(db, clock)      # and restarts once more
    await second.tick()
    [summary] = await queued(db)
    assert "Nothing fired while it was on." in summary.text and "10m 00s" in summary.text


async def test_a_window_still_on_survives_a_restart(db, clock):
    quiet = await make_quiet(db, clock)
    await quiet.maintenance_on(3600, "deploy", ANN)
    clock.advance(60)
    restarted = await make_quiet(db, clock)
    assert restarted.in_maintenance(clock.time())
    assert restarted.current_maintenance(clock.time()).reason == "deploy"
    assert await queued(db) == []


async def test_off_ends_it_now_with_the_summary_and_twice_changes_nothing(db, clock):
    quiet = await make_quiet(db, clock)
    assert not (await quiet.maintenance_off(ANN)).changed
    await quiet.maintenance_on(3600, "deploy", ANN)
    clock.advance(300)
    off = await quiet.maintenance_off(Actor(8, "Bob"))
    again = await quiet.maintenance_off(ANN)
    assert off.changed and not again.changed and again.ok
    assert not quiet.in_maintenance(clock.time())
    [summary] = await queued(db)
    assert "ended by Bob" in summary.text and "5m 00s" in summary.text
    kinds = [e.detail for e in await events(db, "maintenance")]
    assert kinds == ["maintenance #1 on: for 1h 00m: deploy", "maintenance #1 ended by Bob"]


async def test_on_again_extends_the_window(db, clock):
    quiet = await make_quiet(db, clock)
    await quiet.maintenance_on(600, "deploy", ANN)
    clock.advance(300)
    result = await quiet.maintenance_on(1800, "", ANN)
    assert result.changed and "extended" in result.text
    clock.advance(1000)
    assert quiet.in_maintenance(clock.time())
    assert quiet.current_maintenance(clock.time()).reason == "deploy"


@pytest.mark.parametrize("text", ["forever", "0m", "1000d", "soon", ""])
def test_bad_maintenance_durations_get_one_line_with_an_example(text):
    with pytest.raises(ValueError) as err:
        parse_quiet_duration(text, max_s=86400)
    assert "\n" not in str(err.value) and "/maintenance on 30m" in str(err.value)


@pytest.mark.parametrize("seconds", [math.inf, 0, 1000 * 86400, math.nan])
async def test_maintenance_on_refuses_bad_durations_and_changes_nothing(db, clock, seconds):
    quiet = await make_quiet(db, clock)
    result = await quiet.maintenance_on(seconds, "x", ANN)
    assert not result.ok and not result.changed and "/maintenance on 30m" in result.text
    assert not quiet.in_maintenance(clock.time())
    assert await events(db) == []
