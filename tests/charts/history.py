"""A crafted history for the picture tests: a week at 10-minute steps plus the last 90 minutes
at 30-second steps (rolled up into 1-minute and 1-hour rows), and token transitions for the flow."""
from __future__ import annotations

from charts.demo import synthetic_samples
from monitoring.store import MetricStore
from tokens.models import Token, Transition


async def craft_history(store: MetricStore, now: float) -> None:
    growth = (now - 7 * 86400, now)
    await store.write(synthetic_samples(now - 5400, span_s=7 * 86400 - 5400, step_s=600, growth=growth))
    await store.write(synthetic_samples(now, span_s=5400, step_s=30, seed=3, growth=growth))
    await store.rollup(now)


async def craft_transitions(db, now: float) -> None:
    """5 tokens discovered 30 min ago: 3 activated 20 min ago (1 archived since), 2 archived."""
    async with db.session() as session:
        tokens = [Token(mint=f"FlowMint{i}", status="monitoring", status_since=now - 1800, discovered_at=now - 1800)
                  for i in range(5)]
        session.add_all(tokens)
        await session.flush()
        moves = []
        for i, t in enumerate(tokens):
            moves.append(Transition(token_id=t.id, from_status=None, to_status="monitoring", at=now - 1800,
                                    reason="discovered"))
            if i < 3:
                moves.append(Transition(token_id=t.id, from_status="monitoring", to_status="active", at=now - 1200,
                                        reason="activated"))
            else:
                moves.append(Transition(token_id=t.id, from_status="monitoring", to_status="archived",
                                        at=now - 1200, reason="expired"))
        moves.append(Transition(token_id=tokens[0].id, from_status="active", to_status="archived", at=now - 600,
                                reason="low_score"))
        session.add_all(moves)
        await session.commit()


async def craft_incidents(db, now: float) -> dict[str, int]:
    """The alert engine's history, as it records it, over the last 2 hours:

    - incident A (critical, ``market`` group), 100 to 70 min ago: ``market_api_down`` fired
      (endpoint tokens) and ``api_slow`` (warning) fired 95 min ago folded under it, both resolved
      70 min ago; acknowledged by Ann 90 min ago;
    - incident B (warning), opened 30 min ago and still open: ``backlog_growing`` fired and is
      still firing; acknowledged by Bob 20 min ago;
    - incident C (warning), opened 3 h ago, resolved 110 min ago (before a 1h range, inside 6h);
    - a maintenance window 60 to 40 min ago (ended early; it was planned until 30 min ago).
    Returns the incident ids by letter."""
    from alerts.models import AlertEvent, AlertIncident, AlertMaintenance, AlertState

    m = 60.0
    async with db.session() as session:
        a = AlertIncident(group_key="market", title="Market API down", severity="critical", status="resolved",
                          opened_at=now - 100 * m, resolved_at=now - 70 * m, acked_by_name="Ann",
                          acked_at=now - 90 * m)
        b = AlertIncident(group_key="pipeline", title="Backlog growing", severity="warning", status="acknowledged",
                          opened_at=now - 30 * m, acked_by_name="Bob", acked_at=now - 20 * m)
        c = AlertIncident(group_key="db", title="DB slow", severity="warning", status="resolved",
                          opened_at=now - 180 * m, resolved_at=now - 110 * m)
        session.add_all([a, b, c])
        await session.flush()
        session.add_all([
            AlertState(fingerprint="fp-down", rule="market_api_down", severity="critical", state="resolved",
                       incident_id=a.id),
            AlertState(fingerprint="fp-slow", rule="api_slow", severity="warning", state="resolved", incident_id=a.id),
            AlertState(fingerprint="fp-backlog", rule="backlog_growing", severity="warning", state="firing",
                       incident_id=b.id),
            AlertState(fingerprint="fp-db", rule="db_slow", severity="warning", state="resolved", incident_id=c.id),
        ])
        ev = [
            ("fired", now - 180 * m, c.id, "db_slow", "fp-db", None),
            ("opened", now - 180 * m, c.id, "db_slow", "fp-db", None),
            ("resolved", now - 110 * m, c.id, "db_slow", "fp-db", None),
            ("closed", now - 110 * m, c.id, None, None, None),
            ("fired", now - 100 * m, a.id, "market_api_down", "fp-down", None),
            ("opened", now - 100 * m, a.id, "market_api_down", "fp-down", None),
            ("fired", now - 95 * m, a.id, "api_slow", "fp-slow", None),
            ("folded", now - 95 * m, a.id, "api_slow", "fp-slow", None),
            ("ack", now - 90 * m, a.id, None, None, "Ann"),
            ("resolved", now - 70 * m, a.id, "market_api_down", "fp-down", None),
            ("resolved", now - 70 * m, a.id, "api_slow", "fp-slow", None),
            ("closed", now - 70 * m, a.id, None, None, None),
            ("maintenance", now - 60 * m, None, None, None, "Ann"),
            ("fired", now - 30 * m, b.id, "backlog_growing", "fp-backlog", None),
            ("opened", now - 30 * m, b.id, "backlog_growing", "fp-backlog", None),
            ("ack", now - 20 * m, b.id, None, None, "Bob"),
        ]
        session.add_all([AlertEvent(kind=k, at=at, incident_id=iid, rule=rule, fingerprint=fp, actor=actor or "auto")
                         for k, at, iid, rule, fp, actor in ev])
        session.add(AlertMaintenance(started_at=now - 60 * m, ends_at=now - 30 * m, ended_at=now - 40 * m,
                                     reason="db upgrade", started_by="Ann", ended_by="Ann"))
        await session.commit()
        return {"A": a.id, "B": b.id, "C": c.id}
