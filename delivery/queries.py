"""Every statement the sender runs against the outbox table, in one place.

Producers use ``delivery.store.Outbox``; the sender's side (leases, outcomes, outage and
retention queries) is here, so the dispatch loop and the one-row delivery hold no SQL::

    rows = SenderQueries(db, clock)
    for head in await rows.heads():                       # next pending row of every chat
        if await rows.claim(head.id, owner="host:123:ab12", lease_s=60):
            ...                                           # only this sender may send it now
    await rows.mark_sent(head.id, message_id=17, attempts=1, plain_fallback=False)

A claim is one conditional ``UPDATE`` (the row is pending, due, and unleased or its lease
ran out), so of two senders racing for a row exactly one wins, on SQLite and PostgreSQL.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from delivery.models import CRITICAL, DEAD, PENDING, SENT, SUPERSEDED, OutboxMessage

MAX_ERROR_LEN = 2000
FINISHED = (SENT, DEAD, SUPERSEDED)


class SenderQueries:
    """The sender's statements on table ``outbox`` (see the module docstring)."""

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------------ choosing and claiming

    async def heads(self) -> list[OutboxMessage]:
        """The next pending row of every chat (lowest priority value, then oldest), leased or not."""
        async def query(session: AsyncSession) -> list[OutboxMessage]:
            rank = func.row_number().over(
                partition_by=col(OutboxMessage.chat_id), order_by=(col(OutboxMessage.priority), col(OutboxMessage.id))
            ).label("rank")
            ranked = select(OutboxMessage.id, rank).where(col(OutboxMessage.status) == PENDING).subquery()
            stmt = (select(OutboxMessage).join(ranked, ranked.c.id == OutboxMessage.id)
                    .where(ranked.c.rank == 1).order_by(col(OutboxMessage.priority), col(OutboxMessage.id)))
            return list((await session.exec(stmt)).all())

        return await self.db.run(query)

    async def claim(self, row_id: int, *, owner: str, lease_s: float) -> bool:
        """Lease the row to ``owner`` for ``lease_s`` seconds if it is pending, due and free; True if won."""
        now = self.clock.time()

        async def claim(session: AsyncSession) -> int:
            result = await session.exec(update(OutboxMessage).where(
                col(OutboxMessage.id) == row_id, col(OutboxMessage.status) == PENDING,
                col(OutboxMessage.next_attempt_at) <= now,
                or_(col(OutboxMessage.lease_owner).is_(None), col(OutboxMessage.lease_until) < now,
                    col(OutboxMessage.lease_owner) == owner),
            ).values(lease_owner=owner, lease_until=now + lease_s))
            return int(result.rowcount or 0)

        return await self.db.run(claim) == 1

    async def renew(self, row_id: int, *, owner: str, lease_s: float) -> None:
        """Extend ``owner``'s lease (a long, many-part delivery)."""
        await self._update(row_id, dict(lease_until=self.clock.time() + lease_s), owner=owner)

    async def release(self, row_id: int, *, owner: str) -> None:
        """Give the lease up without changing anything else (e.g. sending stopped on a 401)."""
        await self._update(row_id, dict(lease_owner=None, lease_until=None), owner=owner)

    # ------------------------------------------------------------------ outcomes

    async def mark_sent(self, row_id: int, *, message_id: int | None, attempts: int, plain_fallback: bool) -> None:
        await self._update(row_id, dict(status=SENT, sent_at=self.clock.time(), telegram_message_id=message_id,
                                        attempts=attempts, plain_fallback=plain_fallback, last_error=None,
                                        lease_owner=None, lease_until=None))

    async def save_progress(self, row_id: int, *, pieces_sent: int, first_message_id: int | None,
                            plain_fallback: bool, owner: str, lease_s: float) -> None:
        """Store how many parts went out (a restart never repeats them) and extend the lease."""
        await self._update(row_id, dict(pieces_sent=pieces_sent, first_message_id=first_message_id,
                                        plain_fallback=plain_fallback, lease_until=self.clock.time() + lease_s))

    async def reschedule(self, row_id: int, *, at: float, error: str, attempts: int | None,
                         plain_fallback: bool) -> None:
        """The row stays pending until ``at``; the lease is released."""
        values: dict[str, Any] = dict(next_attempt_at=at, last_error=error[:MAX_ERROR_LEN],
                                      plain_fallback=plain_fallback, lease_owner=None, lease_until=None)
        if attempts is not None:
            values["attempts"] = attempts
        await self._update(row_id, values, only_pending=True)

    async def mark_dead(self, row_id: int, *, error: str, attempts: int, plain_fallback: bool) -> None:
        await self._update(row_id, dict(status=DEAD, last_error=error[:MAX_ERROR_LEN], attempts=attempts,
                                        plain_fallback=plain_fallback, lease_owner=None, lease_until=None))

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """A group became a supergroup: every pending row of the old chat goes to the new id."""
        async def move(session: AsyncSession) -> int:
            result = await session.exec(update(OutboxMessage).where(
                col(OutboxMessage.chat_id) == old_chat_id, col(OutboxMessage.status) == PENDING).values(chat_id=new_chat_id))
            return int(result.rowcount or 0)

        return await self.db.run(move)

    # ------------------------------------------------------------------ outage

    async def earliest_failed_pending(self) -> float | None:
        """Creation time of the oldest pending row that already failed (an outage began before a restart)."""
        async def earliest(session: AsyncSession) -> float | None:
            stmt = select(func.min(OutboxMessage.created_at)).where(
                col(OutboxMessage.status) == PENDING, col(OutboxMessage.attempts) > 0,
                col(OutboxMessage.last_error).is_not(None))
            return (await session.exec(stmt)).one()

        found = await self.db.run(earliest)
        return None if found is None else float(found)

    async def delayed_per_chat(self, created_before: float, outage_started: float) -> list[tuple[int, int]]:
        """(chat id, messages created before ``created_before`` that waited out the outage: still
        pending, or sent since it started -- the sender goes on sending while this is counted, so a
        count of pending rows alone would depend on how fast it is), edits not counted."""
        async def delayed(session: AsyncSession) -> list[tuple[int, int]]:
            waited = or_(col(OutboxMessage.status) == PENDING,
                         and_(col(OutboxMessage.status) == SENT, col(OutboxMessage.sent_at) >= outage_started))
            stmt = (select(OutboxMessage.chat_id, func.count())
                    .where(waited, col(OutboxMessage.created_at) <= created_before,
                           col(OutboxMessage.method) != "edit")
                    .group_by(col(OutboxMessage.chat_id)))
            return [(int(c), int(n)) for c, n in (await session.exec(stmt)).all()]

        return await self.db.run(delayed)

    async def critical_without_fallback(self, limit: int = 100) -> list[OutboxMessage]:
        """Pending critical alerts (not command replies) not yet posted to the fallback webhook."""
        async def critical(session: AsyncSession) -> list[OutboxMessage]:
            stmt = (select(OutboxMessage)
                    .where(col(OutboxMessage.status) == PENDING, col(OutboxMessage.priority) == CRITICAL,
                           col(OutboxMessage.fallback_sent) == False,  # noqa: E712
                           col(OutboxMessage.is_reply) == False)  # noqa: E712
                    .order_by(col(OutboxMessage.id)).limit(limit))
            return list((await session.exec(stmt)).all())

        return await self.db.run(critical)

    async def flag_fallback_sent(self, row_id: int) -> None:
        await self._update(row_id, dict(fallback_sent=True))

    # ------------------------------------------------------------------ retention

    async def prune_finished(self, finished_before: float, *, batch: int = 500) -> int:
        """Delete sent, dead and superseded rows (photos included) older than ``finished_before``.

        Pending rows are never deleted, nor a row a pending edit still targets.
        """
        edit = aliased(OutboxMessage)
        targeted = exists().where(col(edit.status) == PENDING, col(edit.target_key) == col(OutboxMessage.idempotency_key))
        age = func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at)

        async def prune(session: AsyncSession) -> int:
            ids = select(OutboxMessage.id).where(
                col(OutboxMessage.status).in_(FINISHED), age < finished_before, ~targeted).limit(batch)
            found = [int(i) for i in (await session.exec(ids)).all() if i is not None]
            if not found:
                return 0
            result = await session.exec(delete(OutboxMessage).where(
                and_(col(OutboxMessage.id).in_(found), col(OutboxMessage.status).in_(FINISHED))))
            return int(result.rowcount or 0)

        total = 0
        while True:
            removed = await self.db.run(prune)
            total += removed
            if removed < batch:
                return total

    # ------------------------------------------------------------------ helpers

    async def _update(self, row_id: int, values: dict[str, Any], *, owner: str | None = None,
                      only_pending: bool = False) -> None:
        conditions: list[Any] = [col(OutboxMessage.id) == row_id]
        if owner is not None:
            conditions.append(col(OutboxMessage.lease_owner) == owner)
        if only_pending:
            conditions.append(col(OutboxMessage.status) == PENDING)

        async def run(session: AsyncSession) -> None:
            await session.exec(update(OutboxMessage).where(*conditions).values(**values))

        await self.db.run(run)
