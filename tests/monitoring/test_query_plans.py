"""Every statement a collection cycle sends to the database reads through an index, on SQLite
(EXPLAIN QUERY PLAN: no SCAN step) and on PostgreSQL (EXPLAIN with sequential scans priced out:
no Seq Scan node, so an index can serve it). None walks a whole table: at 100,000 tokens and
1,000,000 checks such a scan turns a 2 ms query into 150 ms, and checks are counted from the
per-minute rollup (``check_minutes``), never from the window's rows. The one allowed exception on
SQLite is the count by status, which reads every token by nature, from a covering index.

The cycle is the one the service runs: the registry with the pipeline collector (every pipeline
query, the failure reasons and their advice, the newest errors), the database probe, the outbox
figures the bot's collector reads, and the metric store's write.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any

from sqlalchemy import event

from app.clock import ManualClock
from delivery.store import Outbox
from monitoring.collector import CollectorRegistry
from monitoring.collectors.pipeline import PipelineCollector
from monitoring.failure_stats import failure_stats
from monitoring.host.db_pool import DbPoolCollector
from monitoring.pipeline import PipelineParams
from monitoring.store import MetricStore
from tests.monitoring import pipeline_data
from tests.monitoring.pipeline_data import N

ALLOWED_FULL_READS = ("SELECT tokens.status, count(*) AS count_1 FROM tokens GROUP BY tokens.status",)  # counts_by_status


async def _cycle_statements(db) -> list[tuple[str, Any]]:
    """Run one whole collection cycle over the hand-built dataset; every SELECT it sent."""
    async with db.session() as session:
        await pipeline_data.build(session)
    clock = ManualClock(N)
    registry = CollectorRegistry(clock=clock, store=MetricStore(db, clock), collect_interval_s=10)
    registry.register_pipeline(PipelineCollector(db, PipelineParams()))
    probe = DbPoolCollector(db, clock)
    registry.register(probe)
    outbox = Outbox(db, clock)
    statements: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        samples = await registry.run_collection()
        await outbox.pending_count()       # what the bot's collector adds to every cycle
        await outbox.oldest_pending_age()
        async with db.session() as session:  # /failures: both windows, codes included
            await failure_stats(session, N)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
        probe.close()
    snap = registry.coordinator.latest
    # the cycle really ran every query: the snapshot holds the pipeline with its failures and errors
    assert samples and snap is not None and snap.pipeline is not None
    assert snap.pipeline.failures is not None and snap.pipeline.failures.checks > 0 and snap.pipeline.last_errors
    assert snap.pipeline.last_success_at == N - 10 and snap.pipeline.stuck_count > 0
    selects = [(s, p) for s, p in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) > 15, selects
    return selects


async def test_every_cycle_query_uses_an_index_on_sqlite(sqlite_db, sqlite_url):
    selects = await _cycle_statements(sqlite_db)
    conn = sqlite3.connect(sqlite_url.split(":///", 1)[1])
    try:
        full_reads = []
        for statement, params in selects:
            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()]
            scans = [step for step in plan if step.startswith("SCAN") and step != "SCAN CONSTANT ROW"]
            normalized = " ".join(statement.split())
            if scans and not (normalized in ALLOWED_FULL_READS and all("COVERING INDEX" in s for s in scans)):
                full_reads.append((normalized[:160], scans))
        rollup = [s for s, _ in selects if "check_minutes" in s]
        plans = [conn.execute("EXPLAIN QUERY PLAN " + s, p).fetchall() for s, p in selects if "check_minutes" in s]
    finally:
        conn.close()
    assert not full_reads, f"statements reading whole tables: {full_reads}"
    assert rollup and all(any("SEARCH check_minutes" in row[3] for row in plan) for plan in plans)
    # the window's checks are never counted from the checks table (only /failures' codes are, on request)
    assert not [s for s, _ in selects if "FROM checks" in s and "count(" in s.lower() and "failure_codes" not in s]


def _seq_scans(node: dict) -> list[str]:
    found = [node.get("Relation Name", "?")] if node.get("Node Type") == "Seq Scan" else []
    for child in node.get("Plans", []):
        found += _seq_scans(child)
    return found


async def test_every_cycle_query_uses_an_index_on_postgres(pg_url):
    from app.db import Database, make_engine

    db = Database(make_engine(pg_url))
    try:
        selects = await _cycle_statements(db)
        full_reads = []
        async with db.engine.connect() as conn:
            # a scratch table of a few rows is cheapest to read whole: price sequential scans out, so
            # a Seq Scan left in the plan means no index can serve the statement
            await conn.exec_driver_sql("SET enable_seqscan = off")
            for statement, params in selects:
                result = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, tuple(params or ()))
                raw = result.scalar()
                plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
                scans = _seq_scans(plan)
                if scans:
                    full_reads.append((" ".join(statement.split())[:160], scans))
    finally:
        await db.dispose()
    assert not full_reads, f"statements reading whole tables: {full_reads}"
