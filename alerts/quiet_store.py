"""The SQL behind silences, maintenance windows and tuning (``alert_silence``,
``alert_maintenance``, ``alert_tuning``), each change recorded in ``alert_event`` in the same
transaction. Changes that may race (lifting a silence, ending a maintenance, reverting a
change) are conditional updates: the second of two presses changes nothing::

    store = QuietStore(db)
    silence = await store.add_silence(AlertSilence(...), actor_id=42)     # with its id
    await store.end_silence(silence.id, at=now, by="Ann")                 # True once, then False
    active = await store.open_silences()                                 # not yet ended
    m = await store.add_maintenance(AlertMaintenance(...))
    await store.end_maintenance(m.id, at=now, by="Ann")
    changes = await store.effective_tunings()                            # {rule: newest unreverted}
"""
from __future__ import annotations

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import Database
from alerts.models import AlertEvent, AlertMaintenance, AlertSilence, AlertTuning


def _event(session: AsyncSession, at: float, kind: str, *, rule: str | None = None, actor: str | None = None,
           actor_id: int | None = None, detail: str = "", value: float | None = None) -> None:
    session.add(AlertEvent(at=at, kind=kind, rule=rule, actor=(actor or None) and actor[:128],
                           actor_id=actor_id, detail=detail, value=value))


class QuietStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- silences -------------------------------------------------------------------
    async def add_silence(self, row: AlertSilence, *, detail: str) -> AlertSilence:
        async def run(session: AsyncSession) -> AlertSilence:
            fresh = AlertSilence.model_validate(row.model_dump())
            session.add(fresh)
            await session.flush()
            _event(session, fresh.created_at, "silenced", actor=fresh.created_by, actor_id=fresh.created_by_id,
                   detail=f"silence #{fresh.id}: {detail}")
            return fresh

        return await self.db.run(run)

    async def open_silences(self) -> list[AlertSilence]:
        """Silences not yet ended (some may be past their end: the timer ends them)."""
        async def run(session: AsyncSession) -> list[AlertSilence]:
            rows = await session.exec(select(AlertSilence).where(col(AlertSilence.ended_at).is_(None))
                                      .order_by(col(AlertSilence.id)))
            return list(rows.all())

        return await self.db.run(run)

    async def get_silence(self, silence_id: int) -> AlertSilence | None:
        async def run(session: AsyncSession) -> AlertSilence | None:
            return await session.get(AlertSilence, silence_id)

        return await self.db.run(run)

    async def end_silence(self, silence_id: int, *, at: float, by: str, actor_id: int | None = None,
                          expired: bool = False) -> bool:
        """End a silence that is still on; False when it had ended already (or never existed)."""
        async def run(session: AsyncSession) -> bool:
            result = await session.exec(
                update(AlertSilence)
                .where(and_(col(AlertSilence.id) == silence_id, col(AlertSilence.ended_at).is_(None)))
                .values(ended_at=at, ended_by=by[:128]))
            if not result.rowcount:
                return False
            _event(session, at, "unsilenced", actor=by, actor_id=actor_id,
                   detail=f"silence #{silence_id} {'expired' if expired else 'lifted'}")
            return True

        return await self.db.run(run)

    async def mark_reminded(self, silence_id: int) -> None:
        async def run(session: AsyncSession) -> None:
            await session.exec(update(AlertSilence).where(col(AlertSilence.id) == silence_id).values(reminded=True))

        await self.db.run(run)

    # --- maintenance ----------------------------------------------------------------
    async def add_maintenance(self, row: AlertMaintenance, *, detail: str) -> AlertMaintenance:
        async def run(session: AsyncSession) -> AlertMaintenance:
            fresh = AlertMaintenance.model_validate(row.model_dump())
            session.add(fresh)
            await session.flush()
            _event(session, fresh.started_at, "maintenance", actor=fresh.started_by,
                   detail=f"maintenance #{fresh.id} on: {detail}")
            return fresh

        return await self.db.run(run)

    async def extend_maintenance(self, maintenance_id: int, *, ends_at: float, reason: str, at: float,
                                 by: str) -> bool:
        async def run(session: AsyncSession) -> bool:
            result = await session.exec(
                update(AlertMaintenance)
                .where(and_(col(AlertMaintenance.id) == maintenance_id, col(AlertMaintenance.ended_at).is_(None)))
                .values(ends_at=ends_at, reason=reason))
            if not result.rowcount:
                return False
            _event(session, at, "maintenance", actor=by, detail=f"maintenance #{maintenance_id} extended")
            return True

        return await self.db.run(run)

    async def unfinished_maintenance(self) -> list[AlertMaintenance]:
        """Windows still on, or ended without their summary sent, oldest first."""
        async def run(session: AsyncSession) -> list[AlertMaintenance]:
            rows = await session.exec(
                select(AlertMaintenance)
                .where(or_(col(AlertMaintenance.ended_at).is_(None), col(AlertMaintenance.summary_sent).is_(False)))
                .order_by(col(AlertMaintenance.id)))
            return list(rows.all())

        return await self.db.run(run)

    async def end_maintenance(self, maintenance_id: int, *, at: float, by: str | None) -> bool:
        async def run(session: AsyncSession) -> bool:
            result = await session.exec(
                update(AlertMaintenance)
                .where(and_(col(AlertMaintenance.id) == maintenance_id, col(AlertMaintenance.ended_at).is_(None)))
                .values(ended_at=at, ended_by=by[:128] if by else None))
            if not result.rowcount:
                return False
            _event(session, at, "maintenance", actor=by or "system",
                   detail=f"maintenance #{maintenance_id} {'ended by ' + by if by else 'ran its time'}")
            return True

        return await self.db.run(run)

    async def mark_summary_sent(self, maintenance_id: int) -> None:
        async def run(session: AsyncSession) -> None:
            await session.exec(update(AlertMaintenance).where(col(AlertMaintenance.id) == maintenance_id)
                               .values(summary_sent=True))

        await self.db.run(run)

    # --- tuning ---------------------------------------------------------------------
    async def add_tuning(self, row: AlertTuning) -> AlertTuning:
        async def run(session: AsyncSession) -> AlertTuning:
            fresh = AlertTuning.model_validate(row.model_dump())
            session.add(fresh)
            await session.flush()
            _event(session, fresh.at, "tuned", rule=fresh.rule, actor=fresh.by, actor_id=fresh.by_id,
                   value=fresh.after, detail=f"change #{fresh.id}: threshold {fresh.before:g} -> {fresh.after:g}")
            return fresh

        return await self.db.run(run)

    async def get_tuning(self, change_id: int) -> AlertTuning | None:
        async def run(session: AsyncSession) -> AlertTuning | None:
            return await session.get(AlertTuning, change_id)

        return await self.db.run(run)

    async def tunings(self, *, since: float | None = None) -> list[AlertTuning]:
        """Every change (since ``since``), oldest first."""
        async def run(session: AsyncSession) -> list[AlertTuning]:
            query = select(AlertTuning)
            if since is not None:
                query = query.where(col(AlertTuning.at) >= since)
            return list((await session.exec(query.order_by(col(AlertTuning.at), col(AlertTuning.id)))).all())

        return await self.db.run(run)

    async def effective_tunings(self) -> dict[str, AlertTuning]:
        """The newest unreverted change of each rule."""
        async def run(session: AsyncSession) -> list[AlertTuning]:
            rows = await session.exec(select(AlertTuning).where(col(AlertTuning.reverted_at).is_(None))
                                      .order_by(col(AlertTuning.at), col(AlertTuning.id)))
            return list(rows.all())

        return {row.rule: row for row in await self.db.run(run)}

    async def revert_tuning(self, change_id: int, *, at: float, by: str, by_id: int | None) -> bool:
        async def run(session: AsyncSession) -> bool:
            result = await session.exec(
                update(AlertTuning)
                .where(and_(col(AlertTuning.id) == change_id, col(AlertTuning.reverted_at).is_(None)))
                .values(reverted_at=at, reverted_by=by[:128]))
            if not result.rowcount:
                return False
            row = await session.get(AlertTuning, change_id)
            _event(session, at, "reverted", rule=row.rule if row else None, actor=by, actor_id=by_id,
                   value=row.before if row else None, detail=f"change #{change_id} reverted")
            return True

        return await self.db.run(run)
