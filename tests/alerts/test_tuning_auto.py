"""Automatic tuning: only non-critical tune.auto rules that keep firing with nobody acting,
within bounds, announced once with a Revert button (SQLite and PostgreSQL)."""
from __future__ import annotations

from alerts.api import Actor
from alerts.models import AlertEvent
from monitoring.store import MetricStore
from tests.alerts.quiet_helpers import add_events, queued
from tests.alerts.test_tuning_report import LATENCY, make_tuning, seed_week

H = 3600.0


def unattended_firings(rule: str, now: float, count: int, first_incident: int) -> list[AlertEvent]:
    rows = []
    for i in range(count):
        at = now - 20 * H + i * H
        rows += [AlertEvent(at=at, kind="fired", rule=rule, fingerprint="f", incident_id=first_incident + i),
                 AlertEvent(at=at + 120, kind="resolved", rule=rule, fingerprint="f", incident_id=first_incident + i)]
    return rows


async def test_auto_tuning_moves_toward_the_suggestion_within_bounds_and_announces_once(db, clock):
    clock.set(1_700_006_400.0 + 10)
    store = MetricStore(db, clock)
    # healthy latency around 8 s: the suggestion (p99) is far above the rule's max bound of 5
    await seed_week(clock, store, (LATENCY, lambda h: 8.0 + 0.01 * (h % 10), 600.0),
                    ("tokenwatch_db_up", lambda h: 0.0, 600.0))
    now = clock.time()
    await add_events(db, unattended_firings("api_slow", now, 6, 100) + unattended_firings("db_down", now, 6, 200))
    tuning = await make_tuning(db, clock, store, auto_step=0.5, auto_min_fires=5, auto_cooldown_s=24 * H)
    api = tuning.rules["api_slow"]
    [change] = await tuning.auto_tune()
    # half way from 2 toward the suggestion, which is kept within the bounds (5): 3.5
    assert (change.rule, change.before, change.after, change.by) == ("api_slow", 2.0, 3.5, "auto")
    assert tuning.threshold(api) == 3.5
    assert tuning.threshold(tuning.rules["db_down"]) == 1.0          # critical: never touched
    assert await tuning.auto_tune() == []                            # cooling down
    await make_tuning(db, clock, store)                               # a restart re-announces nothing new
    [announcement] = await queued(db)
    assert announcement.idempotency_key == f"alerts:tuning:{change.id}:auto"
    assert "api_slow" in announcement.text and "3.5" in announcement.text and "fired 6 times" in announcement.text
    assert f"rev:{change.id}" in (announcement.reply_markup or "")

    clock.advance(25 * H)                                            # the next day, still unattended
    await add_events(db, unattended_firings("api_slow", clock.time(), 6, 300))
    [second] = await tuning.auto_tune()
    assert (second.before, second.after) == (3.5, 4.25)
    for _ in range(4):
        clock.advance(25 * H)
        await add_events(db, unattended_firings("api_slow", clock.time(), 6, 400 + _ * 10))
        await tuning.auto_tune()
    assert 4.25 < tuning.threshold(api) <= 5.0                      # never past the bound

    restarted = await make_tuning(db, clock, store)
    assert restarted.threshold(api) == tuning.threshold(api)


async def test_acknowledged_or_rarely_firing_rules_are_left_alone(db, clock):
    clock.set(1_700_006_400.0 + 10)
    store = MetricStore(db, clock)
    await seed_week(clock, store, (LATENCY, lambda h: 3.0, 600.0))
    now = clock.time()
    acked = unattended_firings("api_slow", now, 6, 100)
    acked.append(AlertEvent(at=now - 20 * H + 60, kind="ack", incident_id=100, actor_id=7, actor="Ann"))
    await add_events(db, acked + unattended_firings("loop_lag", now, 9, 200))   # loop_lag has no tune.auto
    tuning = await make_tuning(db, clock, store)
    assert await tuning.auto_tune() == []
    assert tuning.threshold(tuning.rules["api_slow"]) == 2.0 and tuning.threshold(tuning.rules["loop_lag"]) == 0.5
    assert await queued(db) == []


async def test_a_reverted_automatic_change_stays_reverted(db, clock):
    clock.set(1_700_006_400.0 + 10)
    store = MetricStore(db, clock)
    await seed_week(clock, store, (LATENCY, lambda h: 3.0, 600.0))
    await add_events(db, unattended_firings("api_slow", clock.time(), 6, 100))
    tuning = await make_tuning(db, clock, store, auto_cooldown_s=24 * H)
    [change] = await tuning.auto_tune()
    assert change.after == 2.5
    result = await tuning.revert(change.id, Actor(7, "Ann"))
    assert result.changed and tuning.threshold(tuning.rules["api_slow"]) == 2.0
    clock.advance(2 * H)
    await add_events(db, unattended_firings("api_slow", clock.time(), 6, 200))
    assert await tuning.auto_tune() == []                            # the operator said no, for the cooldown
    assert (await make_tuning(db, clock, store)).threshold(tuning.rules["api_slow"]) == 2.0
