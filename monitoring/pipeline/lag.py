"""Processing lag and backlog: how late the due tokens are.

A token is *due* when ``next_check_at <= now``; its lag is ``now - next_check_at``.
Its *band* is ``hot`` when it is active, its ``score_ewma`` is above
``hot_score_threshold``, or it has been in ``monitoring`` for less than ``fresh_hot_s``
(the processor's rule, ``tokens.lifecycle.next_check_at``; checked every
``hot_check_interval_s``), ``cold`` otherwise (checked every ``cold_check_interval_s``). It is *overdue* when its lag exceeds one
interval of its band::

    async with db.session() as s:
        report = await processing_lag(s, now, LagParams.from_settings(settings))
    report.by_status["monitoring"].p95     # seconds, None when nothing is due
    report.due, report.overdue             # backlog

Percentiles are nearest-rank (``app.percentiles``, the one definition). On PostgreSQL they are
computed in SQL (``percentile_disc`` over grouping sets). SQLite has no ordered-set aggregates,
and fetching the whole due set on every collection does not scale during a backlog, so there
the counts, overdue counts and max come from one ``GROUP BY`` and each percentile reads only
the one row at its rank (``ORDER BY next_check_at DESC LIMIT 1 OFFSET k`` per status and band):
a fixed number of tiny result sets whatever the backlog, and both databases report identical
figures.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from monitoring.pipeline.percentiles import P50, P95, Distribution, nearest_rank_index, percentile_disc_sql
from monitoring.pipeline.sql import dialect_name, run
from monitoring.pipeline.sql import sql_float as _f
from tokens.lifecycle import LifecyclePolicy

HOT = "hot"
COLD = "cold"
BANDS = (HOT, COLD)


@dataclass(frozen=True)
class LagParams:
    """Band definition. ``LagParams.from_settings(settings)`` reads the pipeline settings."""

    hot_score_threshold: float = 50.0
    hot_interval_s: float = 10.0
    cold_interval_s: float = 45.0
    fresh_hot_s: float = 120.0

    @classmethod
    def from_settings(cls, settings: Any) -> "LagParams":
        """The processor's own scheduling rule (``tokens.lifecycle.LifecyclePolicy``), so the bands
        measured here are the bands the processor schedules by."""
        policy = LifecyclePolicy.from_settings(settings)
        return cls(
            hot_score_threshold=policy.hot_score_threshold,
            hot_interval_s=policy.hot_interval_s,
            cold_interval_s=policy.cold_interval_s,
            fresh_hot_s=policy.fresh_hot_s,
        )

    def interval(self, band: str) -> float:
        return self.hot_interval_s if band == HOT else self.cold_interval_s


@dataclass(frozen=True)
class LagReport:
    """Lag distributions of due tokens by status and by band, plus the backlog."""

    by_status: dict[str, Distribution] = field(default_factory=dict)
    by_band: dict[str, Distribution] = field(default_factory=dict)
    due: int = 0
    overdue: int = 0
    overdue_by_band: dict[str, int] = field(default_factory=dict)

    @property
    def overall_max(self) -> float | None:
        values = [d.max for d in self.by_band.values() if d.max is not None]
        return max(values) if values else None


_HOT_SQL = ("CASE WHEN status = 'active' OR score_ewma > :hot "
            "OR (status = 'monitoring' AND status_since > :fresh_since) THEN 1 ELSE 0 END")
# SQLite: per (status, band) group: count, earliest next_check_at (-> max lag) and overdue count.
_SQLITE_GROUPS = text(
    f"SELECT status, {_HOT_SQL} AS hot, COUNT(*), MIN(next_check_at), "
    f"SUM(CASE WHEN :now - next_check_at > (CASE WHEN {_HOT_SQL} = 1 THEN :hot_iv ELSE :cold_iv END) "
    "THEN 1 ELSE 0 END) "
    # without INDEXED BY the planner walks ix_tokens_status_since for the GROUP BY: the whole table
    "FROM tokens INDEXED BY ix_tokens_next_check_at WHERE next_check_at <= :now GROUP BY status, hot"
)
# SQLite: the order statistics at ranks :offset.. of the lags (ascending lag = descending next_check_at).
_SQLITE_STATUS_RANKS = text(
    "SELECT next_check_at FROM tokens WHERE next_check_at <= :now AND status = :status "
    "ORDER BY next_check_at DESC LIMIT :limit OFFSET :offset"
)
_SQLITE_BAND_RANKS = text(
    f"SELECT next_check_at FROM tokens WHERE next_check_at <= :now AND {_HOT_SQL} = :band "
    "ORDER BY next_check_at DESC LIMIT :limit OFFSET :offset"
)

_F = "CAST(:{} AS DOUBLE PRECISION)"
_PG_LAG = text(
    f"""
    WITH due AS (
        SELECT status,
               CASE WHEN status = 'active' OR score_ewma > {_F.format('hot')}
                         OR (status = 'monitoring' AND status_since > {_F.format('fresh_since')})
                    THEN 'hot' ELSE 'cold' END AS band,
               {_F.format('now')} - next_check_at AS lag
        FROM tokens
        WHERE next_check_at <= {_F.format('now')}
    )
    SELECT status, band, GROUPING(status) AS by_band, COUNT(*),
           {percentile_disc_sql(P50, "lag")},
           {percentile_disc_sql(P95, "lag")},
           MAX(lag),
           SUM(CASE WHEN lag > (CASE WHEN band = 'hot' THEN {_F.format('hot_iv')}
                                     ELSE {_F.format('cold_iv')} END) THEN 1 ELSE 0 END)
    FROM due
    GROUP BY GROUPING SETS ((status), (band))
    """
)


async def processing_lag(session: AsyncSession, now: float, params: LagParams | None = None) -> LagReport:
    """Lag p50/p95/max of due tokens by status and by band, and the backlog counts."""
    params = params or LagParams()
    if dialect_name(session) == "postgresql":
        return await _lag_postgres(session, now, params)
    return await _lag_python(session, now, params)


async def _lag_postgres(session: AsyncSession, now: float, params: LagParams) -> LagReport:
    rows = (
        await run(session, 
            _PG_LAG,
            {"now": now, "hot": params.hot_score_threshold, "hot_iv": params.hot_interval_s,
             "cold_iv": params.cold_interval_s, "fresh_since": now - params.fresh_hot_s},
        )
    ).all()
    by_status: dict[str, Distribution] = {}
    by_band: dict[str, Distribution] = {}
    overdue_by_band = {band: 0 for band in BANDS}
    due = 0
    for status, band, grouped_by_band, n, p50, p95, mx, overdue in rows:
        dist = Distribution(int(n), _f(p50), _f(p95), _f(mx))
        if grouped_by_band:
            by_band[str(band)] = dist
            overdue_by_band[str(band)] = int(overdue or 0)
            due += int(n)
        else:
            by_status[str(status)] = dist
    return LagReport(by_status, by_band, due, sum(overdue_by_band.values()), overdue_by_band)


async def _lag_python(session: AsyncSession, now: float, params: LagParams) -> LagReport:
    binds = {"now": now, "hot": params.hot_score_threshold, "hot_iv": params.hot_interval_s,
             "cold_iv": params.cold_interval_s, "fresh_since": now - params.fresh_hot_s}
    counts_status: dict[str, int] = defaultdict(int)
    counts_band: dict[str, int] = defaultdict(int)
    earliest_status: dict[str, float] = {}
    earliest_band: dict[str, float] = {}
    overdue_by_band = {band: 0 for band in BANDS}
    for status, hot, n, earliest, overdue in (await run(session, _SQLITE_GROUPS, binds)).all():
        status, band, n, earliest = str(status), (HOT if hot else COLD), int(n), float(earliest)
        counts_status[status] += n
        counts_band[band] += n
        earliest_status[status] = min(earliest, earliest_status.get(status, earliest))
        earliest_band[band] = min(earliest, earliest_band.get(band, earliest))
        overdue_by_band[band] += int(overdue or 0)

    async def distribution(statement: Any, key: dict[str, Any], n: int, earliest: float) -> Distribution:
        async def percentile(p: float) -> float | None:
            rows = (await run(session, statement, {**binds, **key, "limit": 1,
                                                   "offset": nearest_rank_index(n, p)})).all()
            if not rows:  # the due set shrank since the counts were read
                return None
            return now - float(rows[0][0])

        return Distribution(n, await percentile(P50), await percentile(P95), now - earliest)

    by_status = {status: await distribution(_SQLITE_STATUS_RANKS, {"status": status}, n, earliest_status[status])
                 for status, n in counts_status.items()}
    by_band = {band: await distribution(_SQLITE_BAND_RANKS, {"band": 1 if band == HOT else 0}, n,
                                        earliest_band[band])
               for band, n in counts_band.items()}
    due = sum(counts_band.values())
    return LagReport(by_status, by_band, due, sum(overdue_by_band.values()), overdue_by_band)


__all__ = ["BANDS", "COLD", "HOT", "LagParams", "LagReport", "processing_lag"]
