"""The token flow: how many tokens moved between new, monitoring, active and archived in a range.

    counts = await transition_counts(session, since, until)   # {("monitoring", "active"): 12, ...}
    flow = await fetch_flow(store, since, until, resolution)   # + tokens per status now, success rate
    flow.rate_per_h("monitoring", "active")                    # 1.5

Counts come from the ``transitions`` table (exact, whatever the metric store's rollups);
tokens per status come from the metric store's ``tokenwatch_tokens`` series.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from monitoring import metric_names as m
from monitoring.store import MetricStore
from tokens.models import ACTIVE, ARCHIVED, MONITORING, STATUSES, Transition

NEW = "new"


@dataclass
class FlowData:
    since: float
    until: float
    edges: dict[tuple[str, str], int] = field(default_factory=dict)   # (from, to) -> count; from "new"
    counts_now: dict[str, int] = field(default_factory=dict)           # status -> tokens at the end
    points: int = 0                                                     # store points behind counts_now
    first_ts: float | None = None

    @property
    def hours(self) -> float:
        return max(1e-9, (self.until - self.since) / 3600.0)

    @property
    def total_moves(self) -> int:
        return sum(self.edges.values())

    def rate_per_h(self, src: str, dst: str) -> float:
        return self.edges.get((src, dst), 0) / self.hours

    @property
    def success_rate(self) -> float | None:
        """Share of tokens leaving monitoring that went to active (None when none left)."""
        won = self.edges.get((MONITORING, ACTIVE), 0)
        lost = self.edges.get((MONITORING, ARCHIVED), 0)
        return won / (won + lost) if won + lost else None


async def transition_counts(session: AsyncSession, since: float, until: float) -> dict[tuple[str, str], int]:
    """Status changes in ``[since, until)`` by (from, to); a first status (discovery) is from ``"new"``."""
    t = Transition.__table__.c  # type: ignore[attr-defined]
    rows = await session.exec(  # type: ignore[call-overload]
        select(t.from_status, t.to_status, func.count())
        .where(and_(t.at >= since, t.at < until))
        .group_by(t.from_status, t.to_status))
    out: dict[tuple[str, str], int] = {}
    for frm, to, n in rows.all():
        src = frm if frm in STATUSES else NEW
        if to not in STATUSES or src == to:
            continue
        out[(src, to)] = out.get((src, to), 0) + int(n)
    return out


async def fetch_flow(store: MetricStore, since: float, until: float, resolution: int) -> FlowData:
    edges = await store.db.run(lambda session: transition_counts(session, since, until), turn=False)
    flow = FlowData(since, min(until, store.clock.time()), edges)
    for status in STATUSES:
        points = await store.query(m.TOKENS, labels={"status": status}, since=since, until=until,
                                   resolution=resolution)
        if points:
            flow.counts_now[status] = int(round(points[-1].value))
            flow.points = max(flow.points, len(points))
            flow.first_ts = min(flow.first_ts or points[0].ts, points[0].ts)
    return flow
