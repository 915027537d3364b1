"""The slow-query log: statements over ``DB_SLOW_QUERY_S``, each shape explained once, with a suggestion.

SQLAlchemy's ``before_cursor_execute`` / ``after_cursor_execute`` events time every statement
(cheap: two clock reads). A statement over the threshold is counted under its *shape* (the text
with numbers and bound-parameter lists folded: ``IN (?, ?, ?)`` -> ``IN (…)``); the first time a
shape is slow it is queued, and the ``recovery.slow_queries`` job (off the hot path) asks the
database for its plan once: ``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL (neither
runs the statement). A whole-table walk (SQLite ``SCAN <table>`` without an index, PostgreSQL
``Seq Scan on <table>``) gets a suggestion naming the columns the statement filters that table on::

    log = SlowQueryLog(db, threshold_s=0.5)        # attaches to db.engine
    scheduler.add_all(log.jobs()); collectors.register(log.collector())
    await log.explain_pending()                    # what the job does
    for q in log.slowest(): print(q.shape, q.count, q.max_s, q.plan, q.suggestion)
    log.close()

Logged once per shape (when its plan is known), never per statement.
"""
from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.db import Database
from app.scheduler import JobSpec
from monitoring import metric_names as m
from monitoring.sample import Sample

log = logging.getLogger(__name__)

MAX_SHAPES = 200
MAX_PENDING = 20
EXPLAINABLE = ("SELECT", "UPDATE", "DELETE", "WITH")
_PARAM = r"(?:\?|\$\d+|%\(\w+\)s|:\w+)"
_LIST = re.compile(rf"\bIN\s*\(\s*{_PARAM}(?:\s*,\s*{_PARAM})*\s*\)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w$])\d+(?:\.\d+)?\b")
_SPACE = re.compile(r"\s+")


def shape_of(statement: str) -> str:
    """The statement with whitespace, numbers and parameter lists folded (one shape per query)."""
    text = _SPACE.sub(" ", statement).strip()
    text = _LIST.sub("IN (…)", text)
    return _NUMBER.sub("N", text)


@dataclass
class SlowQuery:
    shape: str
    count: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    last_at: float = 0.0
    plan: list[str] | None = None
    suggestion: str | None = None
    explain_error: str | None = None
    _sample: tuple[str, Any] | None = field(default=None, repr=False)   # one statement and its parameters


def _filter_columns(statement: str, table: str) -> list[str]:
    """Columns of ``table`` the statement compares in WHERE / JOIN ON / ORDER BY (``table.col op``)."""
    cols: list[str] = []
    for match in re.finditer(rf"\b{re.escape(table)}\.\"?(\w+)\"?\s*(?:=|<|>|<=|>=|!=|<>|\bIN\b|\bLIKE\b|\bIS\b|\bBETWEEN\b)",
                             statement, re.IGNORECASE):
        if match.group(1) not in cols:
            cols.append(match.group(1))
    order = re.search(r"\bORDER BY\b(.*?)(?:\bLIMIT\b|\bOFFSET\b|$)", statement, re.IGNORECASE | re.DOTALL)
    if order:
        for match in re.finditer(rf"\b{re.escape(table)}\.\"?(\w+)\"?", order.group(1)):
            if match.group(1) not in cols:
                cols.append(match.group(1))
    return cols


def suggest(dialect: str, plan: list[str], statement: str) -> str | None:
    """A suggestion for a plan that walks a whole table, else None."""
    tables: list[str] = []
    for line in plan:
        if dialect == "sqlite":
            found = re.match(r"\s*SCAN (?:TABLE )?(\w+)(?: AS \w+)?\s*$", line)
        else:
            found = re.search(r"Seq Scan on (\w+)", line)
        if found and found.group(1) not in tables:
            tables.append(found.group(1))
    if not tables:
        return None
    parts = []
    for table in tables:
        cols = _filter_columns(statement, table)
        if cols:
            parts.append(f"a whole-table walk of {table}: an index on {table}({', '.join(cols)}) would let it "
                         f"search instead")
        else:
            parts.append(f"a whole-table walk of {table} (it filters on no column of it: is a WHERE or a LIMIT missing?)")
    return "; ".join(parts)


class SlowQueryLog:
    """See the module docstring. ``timer`` is a monotonic clock in seconds (injectable)."""

    name = "slow_queries"

    def __init__(self, db: Database, *, threshold_s: float = 0.5, timer: Callable[[], float] = time.perf_counter,
                 wall: Callable[[], float] = time.time) -> None:
        self.db, self.threshold_s, self.timer, self.wall = db, threshold_s, timer, wall
        self.queries: dict[str, SlowQuery] = {}
        self.pending: deque[SlowQuery] = deque(maxlen=MAX_PENDING)
        self.slow_total = 0
        self._engine: Engine = db.engine.sync_engine
        self._listen(self._engine)
        db.on_engine(self._moved)

    def _events(self) -> tuple[tuple[str, Callable[..., None]], ...]:
        return (("before_cursor_execute", self._before), ("after_cursor_execute", self._after),
                ("handle_error", self._failed))

    def _listen(self, engine: Engine) -> None:
        for name, fn in self._events():
            event.listen(engine, name, fn)

    def _unlisten(self, engine: Engine) -> None:
        for name, fn in self._events():
            if event.contains(engine, name, fn):
                event.remove(engine, name, fn)

    def _moved(self, old: Any, new: Any) -> None:
        """The pool was resized (a new engine): time the statements on the new one."""
        self._unlisten(self._engine)
        self._engine = new.sync_engine
        self._listen(self._engine)

    def close(self) -> None:
        self._unlisten(self._engine)
        self.db.off_engine(self._moved)

    # -- the hot path: two clock reads per statement ----------------------------------------------
    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("tw_started", []).append(self.timer())

    def _failed(self, context: Any) -> None:
        started = context.connection.info.get("tw_started") if context.connection is not None else None
        if started:
            started.pop()   # a statement that raised has no after_cursor_execute

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        started = conn.info.get("tw_started")
        if not started:
            return
        took = self.timer() - started.pop()
        if took < self.threshold_s or statement.lstrip()[:7].upper().startswith("EXPLAIN"):
            return
        self.slow_total += 1
        shape = shape_of(statement)
        q = self.queries.get(shape)
        if q is None:
            if len(self.queries) >= MAX_SHAPES:
                del self.queries[min(self.queries.values(), key=lambda x: x.last_at).shape]
            q = self.queries[shape] = SlowQuery(shape)
            if not executemany and statement.lstrip().split(" ", 1)[0].upper() in EXPLAINABLE:
                q._sample = (statement, parameters)
                self.pending.append(q)
            else:
                log.warning("slow query (%.2fs over %.2fs): %s", took, self.threshold_s, shape[:300])
        q.count += 1
        q.total_s += took
        q.max_s = max(q.max_s, took)
        q.last_at = self.wall()

    # -- off the hot path ---------------------------------------------------------------------------
    async def explain_pending(self) -> int:
        """Take the plan of every newly slow shape (once each); returns how many were explained."""
        done = 0
        while self.pending:
            q = self.pending.popleft()
            if q._sample is None:
                continue
            statement, params = q._sample
            q._sample = None
            dialect = self.db.dialect
            prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
            try:
                async with self.db.engine.connect() as conn:
                    result = await conn.exec_driver_sql(prefix + statement, params)
                    rows = result.fetchall()
                q.plan = [str(r[-1]) for r in rows]   # SQLite: (id, parent, notused, detail); PostgreSQL: one text column
                q.suggestion = suggest(dialect, q.plan, statement)
            except Exception as exc:  # noqa: BLE001 - a plan we cannot take is said, not fatal
                q.explain_error = f"{type(exc).__name__}: {exc}"[:300]
            done += 1
            log.warning("slow query (%.2fs, over %.2fs): %s; plan: %s%s", q.max_s, self.threshold_s, q.shape[:300],
                        " | ".join(q.plan or []) or q.explain_error,
                        f"; suggestion: {q.suggestion}" if q.suggestion else "")
        return done

    def slowest(self, n: int = 10) -> list[SlowQuery]:
        return sorted(self.queries.values(), key=lambda q: -q.total_s)[:n]

    def jobs(self) -> list[JobSpec]:
        return [JobSpec("recovery.slow_queries", self.explain_pending, interval_s=5.0, budget_s=30.0)]

    def samples(self) -> list[Sample]:
        walks = sum(1 for q in self.queries.values() if q.suggestion)
        return [Sample(m.DB_SLOW_QUERIES_TOTAL, float(self.slow_total)),
                Sample(m.DB_SLOW_QUERY_SHAPES, float(len(self.queries))),
                Sample(m.DB_SLOW_QUERY_TABLE_WALKS, float(walks))]

    def collector(self) -> SlowQueryCollector:
        return SlowQueryCollector(self)


class SlowQueryCollector:
    """Collector ``slow_queries``."""

    name = "slow_queries"

    def __init__(self, log_: SlowQueryLog) -> None:
        self.log = log_

    async def collect(self, now: float) -> list[Sample]:
        return self.log.samples()
