"""The /dashboard's numbers: the key /status figures with a sparkline of the last hour each,
read from the metric store in one pass (shared by every chat's dashboard).

    rows = await read_dashboard(store, now)
    rows[0].label, rows[0].value, rows[0].spark      # 'tokens monitoring', '312', '▁▂▃▅▇'

To add a row, add a ``DashRow`` spec to ``ROWS``; a family (``family=True``) sums every label
set of the metric point by point (checks per minute of all statuses, backlog of both bands).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select

from charts import units
from charts.models import Dashboard
from charts.sparkline import sparkline
from charts.units import fmt_value
from monitoring import metric_names as m
from monitoring.store import MetricStore

SPARK_WINDOW_S = 3600.0
SPARK_WIDTH = 12


@dataclass(frozen=True)
class RowSpec:
    label: str
    metric: str
    unit: str = units.COUNT
    labels: tuple[tuple[str, str], ...] = ()
    family: bool = False  # sum every label set
    scale: float = 1.0


@dataclass(frozen=True)
class DashRow:
    label: str
    value: str
    spark: str


ROWS: tuple[RowSpec, ...] = (
    RowSpec("tokens monitoring", m.TOKENS, labels=(("status", "monitoring"),)),
    RowSpec("tokens active", m.TOKENS, labels=(("status", "active"),)),
    RowSpec("tokens archived", m.TOKENS, labels=(("status", "archived"),)),
    RowSpec("checks", m.CHECKS_PER_MINUTE, units.PER_MINUTE, family=True),
    RowSpec("backlog", m.DUE_TOKENS, family=True),
    RowSpec("lag p95 hot", m.PROCESSING_LAG_SECONDS, units.SECONDS, labels=(("band", "hot"), ("quantile", "0.95"))),
    RowSpec("activation rate", m.ACTIVATION_SUCCESS_RATE, units.PERCENT, scale=100.0),
    RowSpec("memory", m.PROCESS_RESIDENT_BYTES, units.BYTES),
    RowSpec("cpu", m.PROCESS_CPU_SHARE, units.PERCENT, scale=100.0),
    RowSpec("loop lag p95", m.LOOP_LAG_P95_SECONDS, units.SECONDS),
)


async def _values(store: MetricStore, spec: RowSpec, since: float) -> list[float]:
    if not spec.family:
        points = await store.query(spec.metric, labels=dict(spec.labels) or None, since=since)
        return [p.value * spec.scale for p in points]
    sums: dict[float, float] = {}
    for labels in await store.series_labels(spec.metric, since=since):
        for p in await store.query(spec.metric, labels=labels, since=since):
            sums[p.ts] = sums.get(p.ts, 0.0) + p.value * spec.scale
    return [sums[t] for t in sorted(sums)]


async def read_dashboard(store: MetricStore, now: float, rows: tuple[RowSpec, ...] = ROWS) -> list[DashRow]:
    """One ``DashRow`` per spec with data in the last hour (rows without data say so)."""
    since = now - SPARK_WINDOW_S
    out = []
    for spec in rows:
        values = await _values(store, spec, since)
        value = fmt_value(values[-1], spec.unit) if values else "no data"
        out.append(DashRow(spec.label, value, sparkline(values, SPARK_WIDTH)))
    return out


# --- the dashboards' table (charts.models.Dashboard) ---------------------------------------
async def load_dashboards(session: Any) -> list[Dashboard]:
    return list((await session.exec(select(Dashboard).order_by(col(Dashboard.chat_id)))).all())


async def get_dashboard(session: Any, chat_id: int) -> Dashboard | None:
    return await session.get(Dashboard, chat_id)


async def put_dashboard(session: Any, dashboard: Dashboard) -> None:
    """Insert or replace the chat's dashboard row."""
    await session.exec(delete(Dashboard).where(col(Dashboard.chat_id) == dashboard.chat_id))
    session.add(dashboard)


async def drop_dashboard(session: Any, chat_id: int) -> Dashboard | None:
    found = await session.get(Dashboard, chat_id)
    if found is not None:
        await session.delete(found)
    return found
