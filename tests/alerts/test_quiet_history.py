"""alerts/history.py on a seeded timeline (SQLite and PostgreSQL)."""
from __future__ import annotations

from alerts import history
from alerts.models import AlertEvent, AlertIncident

T0 = 1_700_000_000.0


async def seed(db, rows):
    async def run(session):
        for row in rows:
            session.add(row)
    await db.run(run)


def ev(at, kind, rule=None, incident=None, fp=None, actor_id=None, actor=None, detail=""):
    return AlertEvent(at=T0 + at, kind=kind, rule=rule, incident_id=incident, fingerprint=fp,
                      actor_id=actor_id, actor=actor, detail=detail)


async def test_rule_statistics_over_a_range(db):
    await seed(db, [
        AlertIncident(id=1, group_key="api", opened_at=T0, resolved_at=T0 + 600),
        AlertIncident(id=2, group_key="api", opened_at=T0 + 1000, resolved_at=T0 + 1300),
        AlertIncident(id=3, group_key="cpu", opened_at=T0 + 2000, resolved_at=None),
        # api_slow: fired 3 times; #1 acked after 120 s, #2 cleared alone, #3 escalated by a person
        ev(0, "fired", "api_slow", 1, "a"), ev(120, "ack", incident=1, actor_id=7, actor="Ann"),
        ev(600, "resolved", "api_slow", 1, "a"),
        ev(1000, "fired", "api_slow", 2, "a"), ev(1050, "escalated", incident=2, actor="system"),
        ev(1100, "resolved", "api_slow", 2, "a"),
        ev(1200, "fired", "api_slow", 2, "b"), ev(1210, "escalated", incident=2, actor_id=8, actor="Bob"),
        ev(1300, "resolved", "api_slow", 2, "b"),
        # cpu_high: still firing at the end of the range
        ev(2000, "fired", "cpu_high", 3, "c"),
        # outside the range: ignored
        ev(9000, "fired", "api_slow", 4, "a"),
    ])
    stats = await history.rule_stats(db, T0, T0 + 3000)
    api, cpu = stats["api_slow"], stats["cpu_high"]
    assert (api.fired, api.resolved, api.acked, api.cleared_unattended) == (3, 3, 1, 1)
    assert api.firing_s == 600 + 100 + 100
    assert api.acked_share == 1 / 3 and api.cleared_unattended_share == 1 / 3
    assert api.ack_mean_s == 120 and api.ack_median_s == 120
    assert (cpu.fired, cpu.resolved, cpu.firing_s, cpu.acked_share) == (1, 0, 1000, 0.0)
    total = history.totals(stats)
    assert (total.fired, total.acked, total.resolved, total.cleared_unattended) == (4, 1, 3, 1)
    assert [s.rule for s in history.noisiest(stats, 1)] == ["api_slow"]
    assert await history.count_by_rule(db, T0, T0 + 3000) == {"api_slow": 3, "cpu_high": 1}
    rows = await history.events_between(db, T0 + 100, T0 + 700, kinds=("ack", "resolved"))
    assert [(r.kind, r.actor) for r in rows] == [("ack", "Ann"), ("resolved", None)]
    assert await history.incident_intervals(db, "api_slow", T0, T0 + 3000) == [(T0, T0 + 600), (T0 + 1000, T0 + 1300)]
    assert await history.incident_intervals(db, "cpu_high", T0, T0 + 3000) == [(T0 + 2000, T0 + 3000)]
    assert await history.rule_stats(db, T0 + 5000, T0 + 6000) == {}
