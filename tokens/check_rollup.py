"""Checks counted per minute (``check_minutes``), written with each batch of checks.

Monitoring needs, every cycle, how many checks were made over a window by status, outcome and
reason (rates, pass rate, failure reasons). Counting them from ``checks`` costs what the window
holds: at the pipeline's own rate an hour is ~500,000 rows. Instead each batch of checks adds
its counts to one row per (minute, status at check, ok, passed, reason) in the same transaction
(``apply_checks`` ends with ``add_checks_to_rollup``), and a window reads ~10 rows a minute
whatever the check rate::

    await add_checks_to_rollup(session, [{"at": now, "status_at_check": "monitoring", "ok": True,
                                          "passed": False, "primary_failure": "no_pairs"}])
    counts = await window_counts(session, now - 3600, now, by=("ok", "passed"), status="monitoring")
    counts[(True, False)]                  # checks of tokens in monitoring, evaluated, not passed
    await delete_old_rollup(session, cutoff)             # with the checks' retention
    await rebuild_check_rollup(session)                  # from ``checks`` (tests, repairs)

The upsert is one statement per batch (``INSERT .. ON CONFLICT DO UPDATE SET checks = checks +
excluded.checks``) on SQLite and PostgreSQL. Concurrent writers on PostgreSQL add to the same
rows safely (the conflict takes the row lock); their keys are written in one sorted order, so
two batches never wait for each other's rows in opposite orders (no deadlock), and a row is
held only from the upsert to the batch's commit. A batch writes to one of ``ROLLUP_SHARDS``
copies of its minute's rows, at random, so concurrent batches seldom wait for one another.

A minute row counts the checks of ``(minute, minute + 60]`` and keeps the first and last check's
time. Windows ``(since, until]`` rarely start or end on a minute: a minute holding ``since`` or
``until`` counts for the share of its ``[first_at, last_at]`` span inside the window (nothing when
the span is outside, all when it is inside; checks assumed even in between), every other minute
wholly. Exact when the window's ends are on minutes or outside the edge minutes' spans (``until``
is usually now: nothing was checked after it); otherwise off by a fraction of an edge minute's checks.
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.tables import table_of
from tokens.models import CheckMinute
from tokens.sql import dialect_name, execute

MINUTE_S = 60.0
KEY = ("minute", "status_at_check", "ok", "passed", "reason", "shard")
ROLLUP_SHARDS = 16  # rows per key and minute: concurrent batches (writer tasks, processes) rarely share one
GROUPABLE = ("status_at_check", "ok", "passed", "reason")  # what ``window_counts`` groups by
CHECK_MINUTES = table_of(CheckMinute)
_F = "CAST(:{} AS DOUBLE PRECISION)"


def minute_of(at: float) -> float:
    """The start of the minute holding ``at`` (epoch seconds). Minutes are ``(minute, minute + 60]``,
    like every window here (``(since, until]``): a check exactly on a minute belongs to the minute that
    ends there, so a window that starts on a minute is counted exactly.

        minute_of(61.0) == 60.0 and minute_of(120.0) == 60.0
    """
    return math.ceil(float(at) / MINUTE_S) * MINUTE_S - MINUTE_S


def minute_sql(dialect: str) -> str:
    """``minute_of(at)`` in SQL (SQLite has no ceil everywhere; ``at`` is positive, so CAST truncates = floors)."""
    if dialect == "postgresql":
        return "(ceil(at / 60.0) * 60 - 60)"
    return "(CASE WHEN at = CAST(at / 60.0 AS INTEGER) * 60 THEN at - 60 ELSE CAST(at / 60.0 AS INTEGER) * 60 END)"


def rollup_rows(checks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A batch of check rows (``at``, ``status_at_check``, ``ok``, ``passed``, ``primary_failure``) as
    rollup rows, one per key, in key order (pure)::

        rollup_rows([{"at": 61.0, "status_at_check": "active", "ok": True, "passed": True}])
        # [{"minute": 60.0, "status_at_check": "active", "ok": True, "passed": True, "reason": "", "shard": 7,
        #   "checks": 1, "first_at": 61.0, "last_at": 61.0}]

    A batch's rows go to one of ``ROLLUP_SHARDS`` shards, picked at random: concurrent batches on
    PostgreSQL (four writer tasks a process, several processes) add to different rows instead of
    waiting on each other's row locks until commit; readers sum the shards.
    """
    shard = random.randrange(ROLLUP_SHARDS)
    counts: dict[tuple[float, str, bool, bool, str, int], list[Any]] = {}
    for check in checks:
        at = float(check["at"])
        key = (minute_of(at), str(check["status_at_check"]), bool(check.get("ok", True)),
               bool(check.get("passed", False)), str(check.get("primary_failure") or ""), shard)
        row = counts.get(key)
        if row is None:
            counts[key] = [1, at, at]
        else:
            row[0] += 1
            row[1] = min(row[1], at)
            row[2] = max(row[2], at)
    return [dict(zip(KEY, key), checks=n, first_at=first, last_at=last)
            for key, (n, first, last) in sorted(counts.items())]


async def add_checks_to_rollup(session: Any, checks: Sequence[Mapping[str, Any]]) -> int:
    """Add a batch of written checks to the per-minute counts: one upsert statement; returns rows upserted."""
    rows = rollup_rows(checks)
    if not rows:
        return 0
    postgres = dialect_name(session) == "postgresql"
    stmt = (pg_insert if postgres else sqlite_insert)(CHECK_MINUTES).values(rows)
    least, greatest = (func.least, func.greatest) if postgres else (func.min, func.max)  # scalar on SQLite
    c, new = CHECK_MINUTES.c, stmt.excluded
    stmt = stmt.on_conflict_do_update(index_elements=list(KEY), set_={
        "checks": c.checks + new.checks, "first_at": least(c.first_at, new.first_at),
        "last_at": greatest(c.last_at, new.last_at)})
    await execute(session, stmt)
    return len(rows)


_COUNT_STATEMENTS: dict[tuple[tuple[str, ...], bool], Any] = {}


def _count_statement(by: tuple[str, ...], with_status: bool) -> Any:
    key = (by, with_status)
    if key not in _COUNT_STATEMENTS:
        if any(column not in GROUPABLE for column in by):
            raise ValueError(f"window_counts groups by {GROUPABLE}, not {by!r}")
        cols = ", ".join(by)
        since, until = _F.format("since"), _F.format("until")
        # the share of the row's [first_at, last_at] span inside (since, until]: all, none, or in between
        # (where first_at < last_at); CASE for min/max, which the two databases spell differently
        share = (f"CASE WHEN first_at > {since} AND last_at <= {until} THEN 1.0 "
                 f"WHEN last_at <= {since} OR first_at > {until} THEN 0.0 "
                 f"ELSE ((CASE WHEN last_at < {until} THEN last_at ELSE {until} END) "
                 f"- (CASE WHEN first_at > {since} THEN first_at ELSE {since} END)) / (last_at - first_at) END")
        sql = (f"SELECT {cols + ', ' if cols else ''}SUM(checks * {share}) FROM check_minutes "
               f"WHERE minute > {_F.format('lo')} AND minute < {_F.format('until')}"
               + (" AND status_at_check = :status" if with_status else "")
               + (f" GROUP BY {cols}" if cols else ""))
        _COUNT_STATEMENTS[key] = text(sql)
    return _COUNT_STATEMENTS[key]


def _value(column: str, value: Any) -> Any:
    return bool(value) if column in ("ok", "passed") else str(value)


async def window_counts(session: Any, since: float, until: float, *, by: Sequence[str] = (),
                        status: str | None = None) -> dict[tuple[Any, ...], float]:
    """Checks in ``(since, until]`` (see the module docstring for the minute at ``since``), grouped by
    the ``by`` columns (of ``GROUPABLE``; ``ok``/``passed`` as bools), optionally only those made on
    tokens in ``status``. Keys are tuples in ``by`` order (``()`` without ``by``); counts are floats."""
    by = tuple(by)
    binds: dict[str, Any] = {"since": float(since), "lo": float(since) - MINUTE_S, "until": float(until)}
    if status is not None:
        binds["status"] = status
    rows = (await execute(session, _count_statement(by, status is not None), binds)).all()
    out: dict[tuple[Any, ...], float] = {}
    for row in rows:
        if row[-1] is None:
            continue
        key = tuple(_value(column, value) for column, value in zip(by, row[:-1]))
        out[key] = out.get(key, 0.0) + float(row[-1])
    return out


# ``first_at <= until``: a minute whose rows hold only checks written after ``until`` (a batch
# committed between a reader's clock reading and its query, at the start of a new minute) is not
# the newest minute with a check in the window; the minute before it is
_NEWEST = {
    ok: text(f"SELECT MAX(minute) FROM check_minutes WHERE minute > {_F.format('lo')} "
             f"AND minute < {_F.format('until')} AND first_at <= {_F.format('until')} AND {'' if ok else 'NOT '}ok")
    for ok in (True, False)
}


async def newest_minute(session: Any, since: float, until: float, *, ok: bool) -> float | None:
    """The start of the newest minute overlapping ``(since, until]`` with a successful (``ok``) or a
    failed check made at or before ``until``, or ``None``: the newest such check is in
    ``(minute, minute + 60]``."""
    value = (await execute(session, _NEWEST[ok], {"lo": float(since) - MINUTE_S, "until": float(until)})).scalar()
    return None if value is None else float(value)


async def delete_old_rollup(session: Any, cutoff: float) -> int:
    """Delete the minutes that ended before ``cutoff``; returns rows deleted."""
    result = await execute(session, delete(CHECK_MINUTES).where(CHECK_MINUTES.c.minute <= float(cutoff) - MINUTE_S))
    return int(result.rowcount or 0)


async def rebuild_check_rollup(session: Any) -> int:
    """Recount every minute from ``checks`` (what migration 0007 does once): for checks written
    without ``add_checks_to_rollup`` (tests that insert rows, a repair). Returns rows written."""
    minute = minute_sql(dialect_name(session))
    await execute(session, delete(CHECK_MINUTES))
    result = await execute(session, text(
        "INSERT INTO check_minutes (minute, status_at_check, ok, passed, reason, checks, first_at, last_at) "
        f"SELECT {minute}, status_at_check, ok, passed, COALESCE(primary_failure, ''), COUNT(*), MIN(at), MAX(at) "
        "FROM checks "
        f"GROUP BY {minute}, status_at_check, ok, passed, COALESCE(primary_failure, '')"))
    return int(result.rowcount or 0)


__all__ = ["CHECK_MINUTES", "GROUPABLE", "KEY", "MINUTE_S", "add_checks_to_rollup", "delete_old_rollup",
           "minute_of", "minute_sql", "newest_minute", "rebuild_check_rollup", "rollup_rows", "window_counts"]
