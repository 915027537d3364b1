"""Reading the action ledger: what the service turned, when, why, and how it went.

Commands and the alert engine read through these, never the table::

    await recent_actions(db, limit=10, automatic=True)        # newest first
    await actions_between(db, incident.opened_at, now)         # oldest first
    await get_action(db, 12)                                   # ActionView or None
    await load_pins(db)                                        # [PinView], for the start-up restore
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import Database
from app.units import fmt_unit
from recovery.knobs import OPERATOR, RELEASED
from recovery.models import KnobPin, RecoveryAction


@dataclass(frozen=True)
class ActionView:
    """One recorded action (plain text fields; the views escape them)."""

    id: int
    at: float
    controller: str
    knob: str | None
    unit: str
    before: float | None
    after: float | None
    reason: str
    actor: str | None
    detail: str
    outcome: str | None
    reverted_at: float | None
    reverted_by: str | None
    revert_of: int | None

    @property
    def automatic(self) -> bool:
        return self.controller != OPERATOR

    @property
    def revertible(self) -> bool:
        """A knob change with a value to go back to, not reverted yet."""
        return (self.knob is not None and self.before is not None and self.after is not None
                and self.before != self.after and self.reverted_at is None)

    def change(self) -> str:
        """``timeout:tokens_batch 5s → 8s``, ``batch_size back to automatic``, or the act itself."""
        if self.knob is None:
            return self.detail or self.reason
        if self.before == self.after:
            return f"{self.knob} {'back to automatic' if self.reason == RELEASED else 'pinned at ' + fmt_unit(self.after, self.unit)}"
        return f"{self.knob} {fmt_unit(self.before, self.unit)} → {fmt_unit(self.after, self.unit)}"

    def describe(self) -> str:
        """One plain line: the change, who and why (``... by rto: p95 2.4s over 2s``)."""
        who = f"{self.actor or 'an operator'}" if not self.automatic else self.controller
        text = f"{self.change()} by {who}"
        if self.knob is None:
            return f"{self.controller}: {self.change()}" + (f" ({self.reason})" if self.detail and self.reason else "")
        if self.reason and self.reason != RELEASED:
            text += f": {self.reason}"
        return text


@dataclass(frozen=True)
class PinView:
    knob: str
    value: float
    actor: str | None
    at: float


def view_of(row: RecoveryAction) -> ActionView:
    assert row.id is not None
    return ActionView(id=row.id, at=row.at, controller=row.controller, knob=row.knob, unit=row.unit, before=row.before,
                      after=row.after, reason=row.reason, actor=row.actor, detail=row.detail, outcome=row.outcome,
                      reverted_at=row.reverted_at, reverted_by=row.reverted_by, revert_of=row.revert_of)


async def recent_actions(db: Database, *, limit: int = 10, automatic: bool = False,
                         knob: str | None = None) -> list[ActionView]:
    """The newest ``limit`` actions, newest first; ``automatic``: leave out the operators' own."""

    async def q(session: AsyncSession) -> list[ActionView]:
        stmt = select(RecoveryAction)
        if automatic:
            stmt = stmt.where(RecoveryAction.controller != OPERATOR)
        if knob is not None:
            stmt = stmt.where(RecoveryAction.knob == knob)
        stmt = stmt.order_by(col(RecoveryAction.at).desc(), col(RecoveryAction.id).desc()).limit(limit)
        return [view_of(r) for r in (await session.exec(stmt)).all()]

    return await db.run(q)


async def actions_between(db: Database, start: float, end: float, *, automatic: bool = False,
                          limit: int = 500) -> list[ActionView]:
    """Actions with ``start <= at <= end``, oldest first (at most ``limit``, the oldest ones)."""

    async def q(session: AsyncSession) -> list[ActionView]:
        stmt = select(RecoveryAction).where(RecoveryAction.at >= start, RecoveryAction.at <= end)
        if automatic:
            stmt = stmt.where(RecoveryAction.controller != OPERATOR)
        stmt = stmt.order_by(col(RecoveryAction.at), col(RecoveryAction.id)).limit(limit)
        return [view_of(r) for r in (await session.exec(stmt)).all()]

    return await db.run(q)


async def get_action(db: Database, action_id: int) -> ActionView | None:
    async def q(session: AsyncSession) -> ActionView | None:
        row = await session.get(RecoveryAction, action_id)
        return view_of(row) if row is not None else None

    return await db.run(q)


async def load_pins(db: Database) -> list[PinView]:
    async def q(session: AsyncSession) -> list[PinView]:
        rows = (await session.exec(select(KnobPin).order_by(col(KnobPin.knob)))).all()
        return [PinView(r.knob, r.value, r.actor, r.at) for r in rows]

    return await db.run(q)
