"""Every SQL statement on ``alert_state``, ``alert_incident`` and ``alert_event``.

All of it runs through ``Database.run`` (a transient fault retries the whole function)::

    store = AlertStore(db)
    states = await store.load_states()                    # every series, for the engine's memory
    incidents = await store.load_open_incidents()          # open and acknowledged
    incident = await store.insert_incident(AlertIncident(group_key="market", opened_at=now))
    await store.write(states=[...], incidents=[...], events=[...])   # one transaction
    await store.events_for(incident.id, limit=30)          # the timeline, oldest first
    await store.fires_since(now - 3600)                     # [(rule, at), ...] of 'fired' events

Other parts read ``alert_event`` too (``/tune``, maintenance summaries, the digest); the kinds
the engine records are listed in ``alerts.engine.EVENT_KINDS``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import col, select

from app.db import Database
from alerts.models import CLOSED, AlertEvent, AlertIncident, AlertState

_STATE_COLS = [c.name for c in AlertState.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
_INCIDENT_COLS = [c.name for c in AlertIncident.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
_EVENT_COLS = [c.name for c in AlertEvent.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]


def _row(obj: Any, cols: list[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in cols}


def event_row(event: AlertEvent) -> dict[str, Any]:
    return _row(event, _EVENT_COLS)


class AlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def load_states(self) -> list[AlertState]:
        async def q(session) -> list[AlertState]:
            return list((await session.exec(select(AlertState))).all())

        return await self.db.run(q)

    async def load_open_incidents(self) -> list[AlertIncident]:
        async def q(session) -> list[AlertIncident]:
            return list((await session.exec(
                select(AlertIncident).where(AlertIncident.status != CLOSED).order_by(col(AlertIncident.id)))).all())

        return await self.db.run(q)

    async def get_incident(self, incident_id: int) -> AlertIncident | None:
        async def q(session) -> AlertIncident | None:
            return await session.get(AlertIncident, incident_id)

        return await self.db.run(q)

    async def insert_incident(self, incident: AlertIncident) -> AlertIncident:
        """Store a new incident; returns it with its ``id``."""
        async def q(session) -> int:
            result = await session.exec(insert(AlertIncident).values(**_row(incident, _INCIDENT_COLS))
                                        .returning(col(AlertIncident.id)))
            return int(result.scalar_one())

        incident.id = await self.db.run(q)
        return incident

    async def write(self, *, states: Sequence[AlertState] = (), incidents: Sequence[AlertIncident] = (),
                    events: Sequence[AlertEvent] = ()) -> None:
        """Insert new states (``id`` None; ids are set on the objects), update the others and the
        incidents by primary key, append the events: one transaction."""
        new = [s for s in states if s.id is None]
        old = [dict(_row(s, _STATE_COLS), id=s.id) for s in states if s.id is not None]
        inc = [dict(_row(i, _INCIDENT_COLS), id=i.id) for i in incidents if i.id is not None]
        ev = [event_row(e) for e in events]
        new_rows = [_row(s, _STATE_COLS) for s in new]

        async def q(session) -> dict[str, int]:
            ids: dict[str, int] = {}
            if new_rows:
                await session.exec(insert(AlertState), params=new_rows)
                fps = [row["fingerprint"] for row in new_rows]
                for start in range(0, len(fps), 500):
                    found = await session.exec(select(AlertState.id, AlertState.fingerprint)
                                               .where(col(AlertState.fingerprint).in_(fps[start:start + 500])))
                    ids.update({fp: int(i) for i, fp in found.all()})
            if old:
                await session.exec(update(AlertState), params=old)
            if inc:
                await session.exec(update(AlertIncident), params=inc)
            if ev:
                await session.exec(insert(AlertEvent), params=ev)
            return ids

        ids = await self.db.run(q)
        for state in new:
            state.id = ids[state.fingerprint]

    async def events_for(self, incident_id: int, limit: int = 30) -> list[AlertEvent]:
        """The newest ``limit`` events of an incident, oldest first."""
        async def q(session) -> list[AlertEvent]:
            rows = (await session.exec(
                select(AlertEvent).where(AlertEvent.incident_id == incident_id)
                .order_by(col(AlertEvent.at).desc(), col(AlertEvent.id).desc()).limit(limit))).all()
            return list(reversed(rows))

        return await self.db.run(q)

    async def events_of_kind(self, kind: str, since: float) -> list[AlertEvent]:
        async def q(session) -> list[AlertEvent]:
            return list((await session.exec(
                select(AlertEvent).where(AlertEvent.kind == kind, AlertEvent.at >= since)
                .order_by(col(AlertEvent.at)))).all())

        return await self.db.run(q)

    async def fires_since(self, since: float) -> list[tuple[str, float]]:
        """``(rule, at)`` of every 'fired' event since ``since`` (repeat-firing counts after a restart)."""
        return [(e.rule or "", e.at) for e in await self.events_of_kind("fired", since)]

    async def count_events(self) -> int:
        from sqlalchemy import func

        async def q(session) -> int:
            return int((await session.exec(select(func.count()).select_from(AlertEvent))).one())

        return await self.db.run(q)
