"""Every statement that a collection cycle and the failure statistics send to SQLite reads
through an index: none walks a whole table (at 100,000 tokens and 1,000,000 checks such a
scan turns a 2 ms query into 150 ms). The one allowed exception is the count by status,
which reads every token by nature, from a covering index."""
from __future__ import annotations

import sqlite3

from sqlalchemy import event

from monitoring.failure_stats import failure_stats
from monitoring.pipeline import PipelineParams, pipeline_snapshot
from tests.monitoring.pipeline_data import N, build

ALLOWED_FULL_READS = ("SELECT tokens.status, count(*) AS count_1 FROM tokens GROUP BY tokens.status",)  # counts_by_status


async def test_collection_queries_use_indexes_on_sqlite(sqlite_db, sqlite_url):
    await sqlite_db.run(build)
    statements: list[tuple[str, object]] = []

    @event.listens_for(sqlite_db.engine.sync_engine, "before_cursor_execute")
    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    await pipeline_snapshot(sqlite_db, N, PipelineParams())
    async with sqlite_db.session() as session:
        await failure_stats(session, N)
    assert statements, "nothing was queried"

    path = sqlite_url.split(":///", 1)[1]
    conn = sqlite3.connect(path)
    try:
        full_reads = []
        for statement, params in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()]
            scans = [step for step in plan if step.startswith("SCAN")]
            normalized = " ".join(statement.split())
            if scans and not (normalized in ALLOWED_FULL_READS and all("COVERING INDEX" in s for s in scans)):
                full_reads.append((normalized[:120], scans))
    finally:
        conn.close()
    assert not full_reads, f"statements reading whole tables: {full_reads}"
