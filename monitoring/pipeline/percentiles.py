"""Percentiles in SQL with the one definition (nearest rank, ``app.percentiles``).

PostgreSQL computes them with ``percentile_disc`` (:func:`percentile_disc_sql`); SQLite has no
ordered-set aggregates, so there the count comes first and each percentile reads the single row
at ``OFFSET nearest_rank_index(n, p)`` of the ordered values (:func:`distribution`). Both return
exactly ``app.percentiles.percentile`` of the same values (tested on both databases)::

    async with db.session() as s:
        d = await distribution(s, "time_in_previous_s", "FROM transitions WHERE at > :since", {"since": t})
    d.count, d.p50, d.p95, d.max
    percentile_disc_sql(0.95, "lag")   # "percentile_disc(0.95) WITHIN GROUP (ORDER BY lag)"
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from app.percentiles import nearest_rank_index, percentile
from monitoring.pipeline.sql import dialect_name, run
from monitoring.pipeline.sql import sql_float as _f

P50, P95 = 0.5, 0.95


def percentile_disc_sql(p: float, expr: str) -> str:
    """PostgreSQL's nearest-rank percentile of ``expr`` (an aggregate: use with GROUP BY or alone)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"percentile must be within 0..1, got {p!r}")
    return f"percentile_disc({float(p)!r}) WITHIN GROUP (ORDER BY {expr})"


@dataclass(frozen=True)
class Distribution:
    """Count, p50, p95 (nearest rank) and max of a set of durations in seconds.

        d = Distribution.of([1.0, 2.0, 3.0, 4.0])
        assert (d.count, d.p50, d.p95, d.max) == (4, 2.0, 4.0, 4.0)
    """

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> "Distribution":
        ordered = sorted(float(v) for v in values)
        if not ordered:
            return cls()
        return cls(len(ordered), percentile(ordered, P50), percentile(ordered, P95), ordered[-1])


async def percentile_of(session: Any, expr: str, from_where: str, binds: Mapping[str, Any], p: float) -> float | None:
    """One nearest-rank percentile of ``expr`` over ``from_where``, computed in the database."""
    if dialect_name(session) == "postgresql":
        return _f((await run(session, text(f"SELECT {percentile_disc_sql(p, expr)} {from_where}"), binds)).scalar())
    n = int((await run(session, text(f"SELECT COUNT(*) {from_where}"), binds)).scalar() or 0)
    if not n:
        return None
    at_rank = text(f"SELECT {expr} {from_where} ORDER BY {expr} LIMIT 1 OFFSET :_offset")
    return _f((await run(session, at_rank, {**binds, "_offset": nearest_rank_index(n, p)})).scalar())


async def distribution(session: Any, expr: str, from_where: str, binds: Mapping[str, Any]) -> Distribution:
    """Count, p50, p95 and max of ``expr`` over ``from_where`` (``"FROM ... WHERE ..."``), computed
    in the database: ``percentile_disc`` on PostgreSQL, ``ORDER BY expr LIMIT 1 OFFSET k`` on SQLite."""
    if dialect_name(session) == "postgresql":
        row: Any = (await run(session, text(
            f"SELECT COUNT(*), {percentile_disc_sql(P50, expr)}, {percentile_disc_sql(P95, expr)}, MAX({expr}) "
            f"{from_where}"), binds)).one()
        n = int(row[0] or 0)
        return Distribution(n, _f(row[1]), _f(row[2]), _f(row[3])) if n else Distribution()
    n_row: Any = (await run(session, text(f"SELECT COUNT(*), MAX({expr}) {from_where}"), binds)).one()
    n = int(n_row[0] or 0)
    if not n:
        return Distribution()
    at_rank = text(f"SELECT {expr} {from_where} ORDER BY {expr} LIMIT 1 OFFSET :_offset")

    async def nth(p: float) -> float | None:
        value = (await run(session, at_rank, {**binds, "_offset": nearest_rank_index(n, p)})).scalar()
        return _f(value)

    return Distribution(n, await nth(P50), await nth(P95), _f(n_row[1]))


__all__ = ["Distribution", "distribution", "nearest_rank_index", "percentile", "percentile_disc_sql",
           "percentile_of"]
