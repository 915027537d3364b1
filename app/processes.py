"""The process registry: every tokenwatch process writes its row (table ``processes``) every
``PROCESS_HEARTBEAT_S``, so ``/status`` and ``/metrics`` show each one and the whole::

    registry = ProcessRegistry(db, clock, process_id="host:123:ab12", role=lambda: gate.role,
                               fence=lambda: lease.fence, heartbeat_s=5.0)
    await registry.heartbeat()        # upsert this process's row, then read every row
    for p in registry.latest:         # ProcessView, newest first; p.up is False once it stopped beating
        print(p.role, p.host, p.pid, p.heartbeat_age_s)
    await registry.remove()           # a clean stop takes the row away

Roles: ``leader`` (runs the singletons), ``standby`` (a ``tokenwatch run`` that is not leading:
the pipeline, hot for a takeover), ``worker`` (``tokenwatch worker``: the pipeline only). A row
whose heartbeat is older than ``STALE_AFTER_BEATS`` heartbeats is shown as down; the leader
forgets rows silent for ``FORGET_AFTER_S`` (``prune``).
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database

log = logging.getLogger(__name__)

ROLES = ("leader", "standby", "worker")
STALE_AFTER_BEATS = 3      # a process that missed this many heartbeats in a row is shown as down
FORGET_AFTER_S = 86400.0   # rows silent this long are deleted by the leader


class ProcessRecord(SQLModel, table=True):
    """One tokenwatch process (its heartbeat row)."""

    __tablename__ = "processes"

    id: str = Field(primary_key=True, max_length=96)
    role: str = Field(max_length=16)
    host: str = Field(max_length=64)
    pid: int
    started_at: float
    heartbeat_at: float = Field(index=True)
    fence: int | None = None
    leadership: str = Field(default="single", max_length=16)


@dataclass(frozen=True)
class ProcessView:
    """What /status and /metrics show of one process (epoch seconds)."""

    id: str
    role: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    heartbeat_age_s: float
    up: bool
    fence: int | None
    leadership: str
    this: bool  # this process


class ProcessRegistry:
    """Heartbeats into ``processes`` and keeps the last read of every row (see the module docstring)."""

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK, *, process_id: str,
                 role: Callable[[], str], fence: Callable[[], int | None] = lambda: None,
                 leadership: str = "single", heartbeat_s: float = 5.0,
                 host: str | None = None, pid: int | None = None) -> None:
        self.db = db
        self.clock = clock
        self.process_id = process_id
        self.role = role
        self.fence = fence
        self.leadership = leadership
        self.heartbeat_s = heartbeat_s
        self.host = (host or socket.gethostname())[:64]
        self.pid = pid if pid is not None else os.getpid()
        self.started_at = clock.time()
        self.latest: list[ProcessView] = []
        self.read_at: float | None = None
        self.failures = 0

    @property
    def stale_after_s(self) -> float:
        return STALE_AFTER_BEATS * self.heartbeat_s

    async def beat(self) -> None:
        """Write this process's row (insert the first time, update after)."""
        now = self.clock.time()
        record = ProcessRecord(id=self.process_id, role=self.role(), host=self.host, pid=self.pid,
                               started_at=self.started_at, heartbeat_at=now, fence=self.fence(),
                               leadership=self.leadership)
        row = record.model_dump()
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        # one statement: two beats at once (the job and a change of role) never both insert
        stmt = insert(ProcessRecord.__table__).values(**row).on_conflict_do_update(   # type: ignore[attr-defined]
            index_elements=["id"], set_={k: v for k, v in row.items() if k != "id"})

        async def upsert(session: AsyncSession) -> None:
            await session.exec(stmt)

        await self.db.run(upsert)

    async def read(self) -> list[ProcessView]:
        """Every row, leader first, then by host and pid; ``latest`` keeps the result."""
        async def rows(session: AsyncSession) -> list[ProcessRecord]:
            return list((await session.exec(select(ProcessRecord))).all())

        now = self.clock.time()
        views = [ProcessView(id=r.id, role=r.role, host=r.host, pid=r.pid, started_at=r.started_at,
                             heartbeat_at=r.heartbeat_at, heartbeat_age_s=max(0.0, now - r.heartbeat_at),
                             up=now - r.heartbeat_at <= self.stale_after_s, fence=r.fence,
                             leadership=r.leadership, this=r.id == self.process_id)
                 for r in await self.db.run(rows)]
        order = {role: i for i, role in enumerate(ROLES)}
        views.sort(key=lambda v: (not v.up, order.get(v.role, 9), v.host, v.pid))
        self.latest, self.read_at = views, now
        return views

    async def heartbeat(self) -> None:
        """The per-process job: beat, then read the others (what /status shows)."""
        await self.beat()
        await self.read()

    async def prune(self) -> int:
        """Delete rows silent for ``FORGET_AFTER_S`` (the leader's maintenance job)."""
        before = self.clock.time() - FORGET_AFTER_S

        async def prune(session: AsyncSession) -> int:
            result = await session.exec(delete(ProcessRecord)
                                        .where(col(ProcessRecord.heartbeat_at) < before))
            return int(result.rowcount or 0)

        return await self.db.run(prune)

    async def remove(self) -> None:
        """Take this process's row away (a clean stop)."""
        async def remove(session: AsyncSession) -> None:
            await session.exec(delete(ProcessRecord)
                               .where(col(ProcessRecord.id) == self.process_id))

        await self.db.run(remove)
