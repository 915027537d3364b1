"""The metric store: raw samples, 1-minute and 1-hour rollups, retention, one query interface.

Everything that reads metrics history (/status, alert rules, graphs, digests) goes through
:meth:`MetricStore.query` / :meth:`MetricStore.latest`::

    store = MetricStore(db, clock, raw_retention_h=6, minute_retention_d=2, hour_retention_d=30)
    await store.write(samples)                       # one INSERT statement, one transaction
    await store.rollup(clock.time())                 # raw -> 1m -> 1h, complete buckets only
    await store.apply_retention(clock.time())
    points = await store.query("tokenwatch_api_error_rate", labels={"endpoint": "tokens"},
                               since=now - 3600)     # resolution picked from the span
    point = await store.latest("tokenwatch_process_resident_bytes")

Rows live in ``metric_samples`` (``monitoring/models.py``): ``resolution`` 0 (raw), 60, 3600;
rollup rows carry the average in ``value`` and ``min_value``/``max_value``/``count``;
their ``ts`` is the start of the bucket. Labels are stored canonical (``"k=v,k=v"``, sorted).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, cast, delete, func, insert, literal_column
from sqlalchemy import select as core_select
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.tables import table_of
from monitoring.sample import Sample, canonical_labels, sample_problem
from monitoring.models import HOUR, MINUTE, RAW, MetricSample
from monitoring.pipeline.sql import run

log = logging.getLogger(__name__)

TABLE = table_of(MetricSample)
C = TABLE.c

#: Spans up to this long are answered from raw samples (when raw data still covers them).
RAW_MAX_SPAN_S = 3 * 3600.0
#: Spans up to this long are answered from 1-minute rollups; longer ones from 1-hour rollups.
MINUTE_MAX_SPAN_S = 2 * 86400.0


@dataclass(frozen=True, slots=True)
class Point:
    """One point of a series. For raw samples ``min == max == value``; for rollups
    ``value`` is the average over the bucket starting at ``ts``."""

    ts: float
    value: float
    min: float
    max: float


class MetricStore:
    """Writes, rolls up, expires and queries metric samples on SQLite or PostgreSQL.

        store = MetricStore.from_settings(db, settings, clock)
        await store.write([Sample("tokenwatch_db_up", 1.0, ts=clock.time())])
        [p.value for p in await store.query("tokenwatch_db_up", since=clock.time() - 600)]
    """

    def __init__(
        self,
        db: Database,
        clock: Clock = SYSTEM_CLOCK,
        *,
        raw_retention_h: float = 6.0,
        minute_retention_d: float = 2.0,
        hour_retention_d: float = 30.0,
        settle_s: float = 5.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.raw_retention_s = raw_retention_h * 3600.0
        self.minute_retention_s = minute_retention_d * 86400.0
        self.hour_retention_s = hour_retention_d * 86400.0
        self.settle_s = settle_s
        self.rejected = 0
        self.written = 0

    @classmethod
    def from_settings(cls, db: Database, settings: object, clock: Clock = SYSTEM_CLOCK) -> "MetricStore":
        return cls(
            db,
            clock,
            raw_retention_h=getattr(settings, "metrics_raw_retention_h"),
            minute_retention_d=getattr(settings, "metrics_1m_retention_d"),
            hour_retention_d=getattr(settings, "metrics_1h_retention_d"),
        )

    # --- write ----------------------------------------------------------------------
    async def write(self, samples: Iterable[Sample]) -> int:
        """Insert raw samples in one statement and one transaction; returns rows written.

        Samples that cannot be stored (non-finite value, over-long name/labels) are dropped
        and counted in ``self.rejected``. A sample without ``ts`` gets the clock's time.
        """
        now = self.clock.time()
        rows: list[dict[str, object]] = []
        for sample in samples:
            if sample_problem(sample) is not None:
                self.rejected += 1
                continue
            rows.append({
                "name": sample.name,
                "labels": canonical_labels(sample.labels),
                "resolution": RAW,
                "ts": float(sample.ts if sample.ts is not None else now),
                "value": float(sample.value),
                "min_value": None,
                "max_value": None,
                "count": 1,
            })
        if not rows:
            return 0

        async def _insert(session: AsyncSession) -> None:
            await session.exec(insert(TABLE), params=rows)

        await self.db.run(_insert)
        self.written += len(rows)
        return len(rows)

    # --- rollup ---------------------------------------------------------------------
    def _bucket(self, session: AsyncSession, column: ColumnElement, size: int) -> ColumnElement:
        """``floor(column / size) * size`` on both dialects (SQLite has no floor() everywhere)."""
        dialect = session.bind.dialect.name if session.bind is not None else self.db.dialect
        if dialect == "sqlite":
            # ts is positive, so CAST truncation is floor.
            return cast(column / literal_column(f"{size}.0"), Integer) * literal_column(str(size))
        # Literal (not bound) constants so PostgreSQL sees the same expression in SELECT and GROUP BY.
        return func.floor(column / literal_column(f"{size}.0")) * literal_column(str(size))

    async def _watermark(self, session: AsyncSession, resolution: int) -> float | None:
        """Start of the newest bucket already rolled up at ``resolution``."""
        result = await session.exec(select(func.max(C.ts)).where(C.resolution == resolution))
        value = result.one()  # an aggregate: one row, NULL when there is none
        return None if value is None else float(value)

    async def _oldest(self, session: AsyncSession, resolution: int) -> float | None:
        result = await session.exec(select(func.min(C.ts)).where(C.resolution == resolution))
        value = result.one()
        return None if value is None else float(value)

    async def _roll(self, session: AsyncSession, source: int, target: int, end: float) -> int:
        """Aggregate ``source`` rows into ``target`` buckets for complete buckets before ``end``."""
        mark = await self._watermark(session, target)
        if mark is not None:
            start = mark + target
        else:
            oldest = await self._oldest(session, source)
            if oldest is None:
                return 0
            start = math.floor(oldest / target) * target
        if start >= end:
            return 0
        bucket = self._bucket(session, C.ts, target).label("bucket")
        avg: ColumnElement[Any]
        n: ColumnElement[Any]
        if source == RAW:
            avg = func.avg(C.value)
            lo = func.min(C.value)
            hi = func.max(C.value)
            n = func.count()
        else:
            avg = func.sum(C.value * C["count"]) / func.sum(C["count"])
            lo = func.min(C.min_value)
            hi = func.max(C.max_value)
            n = func.sum(C["count"])
        window = and_(C.resolution == source, C.ts >= start, C.ts < end)
        grouped = (  # 8 columns: more than sqlmodel's select() types; only used inside the INSERT
            core_select(C.name, C.labels, literal_column(str(target)), bucket, avg, lo, hi, n)
            .where(window)
            .group_by(C.name, C.labels, bucket)
        )
        # Idempotent: a repeated run over the same window replaces, never duplicates.
        await session.exec(
            delete(TABLE).where(and_(C.resolution == target, C.ts >= start, C.ts < end))
        )
        result = await session.exec(
            insert(TABLE).from_select(
                ["name", "labels", "resolution", "ts", "value", "min_value", "max_value", "count"], grouped
            )
        )
        return max(0, result.rowcount or 0)

    async def rollup(self, now: float) -> dict[int, int]:
        """Roll raw samples into 1-minute rows, then 1-minute rows into 1-hour rows.

        Only complete buckets are rolled (a minute is complete ``settle_s`` after it ends, so
        a collection in flight at the boundary is not cut off); each bucket is rolled once.
        Returns rows written per target resolution.
        """
        minute_end = math.floor((now - self.settle_s) / MINUTE) * MINUTE
        hour_end = math.floor(minute_end / HOUR) * HOUR

        async def _run(session: AsyncSession) -> dict[int, int]:
            minutes = await self._roll(session, RAW, MINUTE, minute_end)
            hours = await self._roll(session, MINUTE, HOUR, hour_end)
            return {MINUTE: minutes, HOUR: hours}

        return await self.db.run(_run)

    # --- retention ------------------------------------------------------------------
    async def apply_retention(self, now: float) -> dict[int, int]:
        """Delete rows older than each resolution's retention; returns rows deleted per resolution.

        Raw rows not yet rolled up are kept (up to four times the raw retention) so a stalled
        rollup job does not lose data.
        """

        async def _run(session: AsyncSession) -> dict[int, int]:
            raw_cutoff = now - self.raw_retention_s
            mark = await self._watermark(session, MINUTE)
            if mark is not None:
                raw_cutoff = max(min(raw_cutoff, mark + MINUTE), now - 4 * self.raw_retention_s)
            deleted: dict[int, int] = {}
            for resolution, cutoff in (
                (RAW, raw_cutoff),
                (MINUTE, now - self.minute_retention_s),
                (HOUR, now - self.hour_retention_s),
            ):
                result = await session.exec(
                    delete(TABLE).where(and_(C.resolution == resolution, C.ts < cutoff))
                )
                deleted[resolution] = max(0, result.rowcount or 0)
            return deleted

        return await self.db.run(_run)

    # --- query ----------------------------------------------------------------------
    def pick_resolution(self, since: float, until: float, now: float | None = None) -> int:
        """The finest resolution that both covers ``since`` (retention) and keeps the point count sane."""
        now = self.clock.time() if now is None else now
        span = max(0.0, until - since)
        if span <= RAW_MAX_SPAN_S and since >= now - self.raw_retention_s:
            return RAW
        if span <= MINUTE_MAX_SPAN_S and since >= now - self.minute_retention_s:
            return MINUTE
        return HOUR

    async def query(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        since: float,
        until: float | None = None,
        resolution: int | None = None,
    ) -> list[Point]:
        """Points of one series (``labels`` None means the unlabelled series) in ``[since, until)``.

        With ``resolution`` None it is chosen from the span (see :meth:`pick_resolution`). For
        rollup resolutions the newest, not-yet-rolled-up buckets are aggregated on the fly from
        the next finer level, so the tail of a graph is never missing.
        """
        found = await self.query_many(name, [labels or {}], since=since, until=until, resolution=resolution)
        return found[canonical_labels(labels)]

    async def query_many(
        self,
        name: str,
        label_sets: Sequence[Mapping[str, str]] | None,
        *,
        since: float,
        until: float | None = None,
        resolution: int | None = None,
    ) -> dict[str, list[Point]]:
        """Like :meth:`query` for several series of one metric in two statements, keyed by their
        canonical labels (``canonical_labels(labels)``); a series without points maps to ``[]``.

            by_endpoint = await store.query_many(m.API_LATENCY_P95_SECONDS,
                                                 [{"endpoint": "tokens"}, {"endpoint": "pairs"}], since=t0)

        ``label_sets=None`` reads every series of ``name`` with points in the range (one line per
        endpoint without first listing the endpoints: /graph's families), keyed and ordered by
        their canonical labels.
        """
        until = self.clock.time() + 1e-6 if until is None else until
        if resolution is None:
            resolution = self.pick_resolution(since, until)
        if resolution not in (RAW, MINUTE, HOUR):
            raise ValueError(f"resolution must be 0, 60 or 3600, not {resolution!r}")
        every = label_sets is None
        keys = [] if label_sets is None else list(dict.fromkeys(canonical_labels(ls) for ls in label_sets))
        if not keys and not every:
            return {}

        def _of(*conds: ColumnElement[bool]) -> ColumnElement[bool]:
            return and_(C.name == name, *conds) if every else and_(C.name == name, C.labels.in_(keys), *conds)

        async def _run(session: AsyncSession) -> dict[str, list[Point]]:
            out: dict[str, list[Point]] = {key: [] for key in keys}
            base = _of(C.resolution == resolution, C.ts >= since, C.ts < until)
            rows = (await run(session,
                core_select(C.labels, C.ts, C.value, C.min_value, C.max_value).where(base).order_by(C.labels, C.ts)
            )).all()
            for key, ts, v, lo, hi in rows:
                points = out.get(key)
                if points is None:
                    points = out[key] = []
                points.append(Point(float(ts), float(v), float(lo if lo is not None else v),
                                    float(hi if hi is not None else v)))
            if resolution == RAW:
                return out
            finer = RAW if resolution == MINUTE else MINUTE
            mark = await self._watermark(session, resolution)
            tail_from = max(since, (mark + resolution) if mark is not None else since)
            # each series' tail starts after its own newest stored bucket
            starts = {key: max(tail_from, points[-1].ts + resolution) if points else tail_from
                      for key, points in out.items()}
            earliest = min(starts.values(), default=tail_from)
            if earliest >= until:
                return out
            bucket = self._bucket(session, C.ts, resolution).label("bucket")
            agg: tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]
            if finer == RAW:
                agg = (func.avg(C.value), func.min(C.value), func.max(C.value))
            else:
                agg = (func.sum(C.value * C["count"]) / func.sum(C["count"]),
                       func.min(C.min_value), func.max(C.max_value))
            tail = (await run(session,
                core_select(C.labels, bucket, *agg)
                .where(_of(C.resolution == finer, C.ts >= earliest, C.ts < until))
                .group_by(C.labels, bucket)
                .order_by(C.labels, bucket)
            )).all()
            for key, b, v, lo, hi in tail:
                if float(b) >= starts.get(key, tail_from):
                    out.setdefault(key, []).append(Point(float(b), float(v), float(lo), float(hi)))
            return dict(sorted(out.items())) if every else out

        return await self.db.run(_run, turn=False)  # a read: beside the writers

    async def latest(self, name: str, labels: Mapping[str, str] | None = None) -> Point | None:
        """The newest point of a series: its newest raw sample, else its newest rollup row."""
        key = canonical_labels(labels)

        async def _run(session: AsyncSession) -> Point | None:
            for resolution in (RAW, MINUTE, HOUR):
                row = (await session.exec(
                    select(C.ts, C.value, C.min_value, C.max_value)
                    .where(and_(C.name == name, C.labels == key, C.resolution == resolution))
                    .order_by(C.ts.desc())
                    .limit(1)
                )).first()
                if row is not None:
                    ts, v, lo, hi = row
                    return Point(float(ts), float(v), float(lo if lo is not None else v),
                                 float(hi if hi is not None else v))
            return None

        return await self.db.run(_run, turn=False)  # a read: beside the writers

    async def series_labels(self, name: str, *, since: float) -> list[dict[str, str]]:
        """Label sets seen for ``name`` in raw samples since ``since`` (e.g. every API endpoint)."""
        from monitoring.sample import parse_labels

        async def _run(session: AsyncSession) -> list[str]:
            rows = await session.exec(
                select(C.labels).where(and_(C.name == name, C.resolution == RAW, C.ts >= since)).distinct()
            )
            return list(rows.all())

        return [parse_labels(text) for text in sorted(await self.db.run(_run, turn=False))]
