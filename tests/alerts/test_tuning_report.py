"""/tune: the report's numbers on a seeded timeline and metric history, Apply and Revert,
surviving a restart (SQLite and PostgreSQL)."""
from __future__ import annotations

from alerts.api import Actor
from alerts.models import AlertEvent, AlertIncident
from alerts.tuning import Tuning
from delivery.store import Outbox
from monitoring.sample import Sample
from monitoring.store import MetricStore
from tests.alerts.quiet_helpers import ALERT_CHAT, Buttons, add_events, events, queued, rules

ANN = Actor(7, "Ann")
H = 3600.0
LATENCY = "tokenwatch_api_latency_p95_seconds"
CACHE = "tokenwatch_api_cache_hit_rate"


async def seed_week(clock, store: MetricStore, *series) -> float:
    """Seven days of samples per ``(name, value_of_hour, every_s)`` (the value fixed within each
    hour), then the store rolls them up and expires old raw and 1-minute rows as it does in
    service. Returns the week's start."""
    start = clock.time() - 7 * 86400
    for name, value_of_hour, every_s in series:
        await store.write([Sample(name, value_of_hour(int(i * every_s // H)), ts=start + i * every_s)
                           for i in range(int(7 * 86400 / every_s))])
    await store.rollup(clock.time())
    await store.apply_retention(clock.time())
    return start


async def make_tuning(db, clock, store, **kw) -> Tuning:
    tuning = Tuning(db, rules(), store, Outbox(db, clock), clock=clock, chat_id=ALERT_CHAT,
                    buttons=lambda: Buttons(), **kw)
    await tuning.start()
    return tuning


async def test_report_numbers_and_a_suggestion_from_healthy_history(db, clock):
    clock.set(1_700_006_400.0 + 10)   # an hour boundary (plus the store's settle time)
    store = MetricStore(db, clock)
    # hour h of the week: 1.00 + 0.01 * (h % 100), except a 4.0 s outage in hours 150-155
    start = await seed_week(clock, store,
                            (LATENCY, lambda h: 4.0 if 150 <= h < 156 else 1.0 + 0.01 * (h % 100), 60.0),
                            (CACHE, lambda h: 0.3 + 0.002 * h, 600.0))

    def at(hours: float) -> float:
        return start + hours * H
    await add_events(db, [
        AlertIncident(id=1, group_key="market", opened_at=at(150), resolved_at=at(156)),
        AlertIncident(id=2, group_key="market", opened_at=at(10), resolved_at=at(10) + 300),
        AlertIncident(id=3, group_key="market", opened_at=at(20), resolved_at=at(20) + 300),
        AlertEvent(at=at(150), kind="fired", rule="api_slow", fingerprint="f", incident_id=1, value=4.0),
        AlertEvent(at=at(150) + 600, kind="ack", incident_id=1, actor_id=7, actor="Ann"),
        AlertEvent(at=at(156), kind="resolved", rule="api_slow", fingerprint="f", incident_id=1),
        AlertEvent(at=at(10), kind="fired", rule="api_slow", fingerprint="f", incident_id=2),
        AlertEvent(at=at(10) + 300, kind="resolved", rule="api_slow", fingerprint="f", incident_id=2),
        AlertEvent(at=at(20), kind="fired", rule="api_slow", fingerprint="f", incident_id=3),
        AlertEvent(at=at(20) + 300, kind="resolved", rule="api_slow", fingerprint="f", incident_id=3),
    ])
    tuning = await make_tuning(db, clock, store)
    rows = {row.rule: row for row in await tuning.report()}
    api = rows["api_slow"]
    assert (api.fired, api.total_firing_s, api.threshold, api.file_threshold) == (3, 6 * H + 600, 2.0, 2.0)
    assert api.acked_share == 1 / 3 and api.cleared_unattended_share == 2 / 3
    # the range starts 10 s into the week's first hour bucket, so hours 1-167 count, less the
    # outage and the two short incidents' hours: 159 healthy hours, each 60 minutes:
    # the top 60 minutes are 1.99 (0.6%), the next 60 are 1.98, so p99 is 1.98; with the outage
    # counted it would have been 4.0
    assert api.suggested == 1.98
    assert api.suggestion_basis.startswith("p99 of 6d") and "healthy history" in api.suggestion_basis
    # '<' rule: p1; of hours 1-167 (10-minute samples), hour 1 (0.302) is the lowest 0.6%,
    # hour 2 (0.304) holds p1
    cache = rows["cache_low"]
    assert cache.suggested == 0.304 and cache.suggestion_basis.startswith("p1 of") and cache.fired == 0
    assert cache.acked_share is None
    lag = rows["loop_lag"]   # no history at all
    assert lag.suggested is None and lag.suggestion_basis.startswith("only 0s of healthy history")


async def test_apply_and_revert_change_the_threshold_and_survive_restarts(db, clock):
    clock.set(1_700_006_400.0 + 10)
    store = MetricStore(db, clock)
    await seed_week(clock, store, (LATENCY, lambda h: 2.0 + 0.01 * (h % 100), 300.0))
    tuning = await make_tuning(db, clock, store)
    api = tuning.rules["api_slow"]
    assert tuning.threshold(api) == 2.0
    applied = await tuning.apply("api_slow", ANN)
    assert applied.ok and applied.changed and "2 → 2.98" in applied.text
    assert tuning.threshold(api) == 2.98
    again = await tuning.apply("api_slow", ANN)
    assert again.ok and not again.changed

    restarted = await make_tuning(db, clock, store)
    assert restarted.threshold(api) == 2.98
    [row] = [r for r in await restarted.report() if r.rule == "api_slow"]
    assert row.threshold == 2.98 and row.last_change_id == 1

    reverted = await restarted.revert(1, ANN)
    twice = await restarted.revert(1, ANN)
    missing = await restarted.revert(42, ANN)
    assert reverted.changed and "back to 2" in reverted.text
    assert (twice.ok, twice.changed, missing.ok, missing.changed) == (True, False, False, False)
    assert restarted.threshold(api) == 2.0
    assert (await make_tuning(db, clock, store)).threshold(api) == 2.0
    [tuned] = await events(db, "tuned")
    [back] = await events(db, "reverted")
    assert (tuned.actor, tuned.value, back.actor, back.value) == ("Ann", 2.98, "Ann", 2.0)
    assert await queued(db) == []        # manual changes are answered by the bot, not announced


async def test_apply_refuses_what_it_cannot_do(db, clock):
    store = MetricStore(db, clock)
    tuning = await make_tuning(db, clock, store)
    unknown = await tuning.apply("nope", ANN)
    no_data = await tuning.apply("loop_lag", ANN)
    assert not unknown.ok and not no_data.ok and "healthy history" in no_data.text
    assert tuning.threshold(tuning.rules["loop_lag"]) == 0.5
    assert await events(db) == []
