"""The slow-query log on SQLite and real PostgreSQL: a statement over the threshold (0 here, so every
statement counts: no timing is asserted) is explained once per shape, off the hot path, and a
whole-table walk gets an index suggestion; with the index in place the same query gets none."""
from __future__ import annotations

from sqlalchemy import bindparam, event, text

from recovery.slow_queries import SlowQueryLog, shape_of, suggest

ROWS = 20_000


async def _table(db) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE tw_probe (id INTEGER PRIMARY KEY, kind VARCHAR(20), n INTEGER)"))
        await conn.execute(text("INSERT INTO tw_probe (id, kind, n) VALUES (:id, :kind, :n)"),
                           [{"id": i, "kind": f"k{i % 500}", "n": i % 97} for i in range(ROWS)])
        if db.dialect == "postgresql":
            await conn.execute(text("ANALYZE tw_probe"))


async def _query(db, kinds: list[str]) -> None:
    stmt = text("SELECT tw_probe.id, tw_probe.n FROM tw_probe WHERE tw_probe.kind IN :kinds "
                "ORDER BY tw_probe.n").bindparams(bindparam("kinds", expanding=True))
    async with db.engine.connect() as conn:
        (await conn.execute(stmt, {"kinds": kinds})).fetchall()


async def test_a_table_walk_is_explained_once_with_an_index_suggestion(db):
    await _table(db)
    slow = SlowQueryLog(db, threshold_s=0.0)
    explains: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("EXPLAIN"):
            explains.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for kinds in (["k1"], ["k2", "k3"], ["k4", "k5", "k6"], ["k7"], ["k8", "k9"]):
            await _query(db, kinds)
        assert await slow.explain_pending() >= 1
        assert await slow.explain_pending() == 0          # once per shape, never again
        [q] = [q for q in slow.queries.values() if "FROM tw_probe WHERE" in q.shape]
        assert q.count == 5 and "IN (…)" in q.shape
        assert q.plan and q.explain_error is None
        walk = "SCAN tw_probe" if db.dialect == "sqlite" else "Seq Scan on tw_probe"
        assert any(walk in line for line in q.plan), q.plan
        assert q.suggestion is not None and "an index on tw_probe(kind, n)" in q.suggestion
        assert sum(1 for e in explains if "FROM tw_probe WHERE" in e) == 1
        assert not any(s.shape.startswith("EXPLAIN") for s in slow.queries.values())
        samples = {s.name: s.value for s in slow.samples()}
        assert samples["tokenwatch_db_slow_query_table_walks"] >= 1
    finally:
        slow.close()
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)

    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE INDEX ix_tw_probe_kind ON tw_probe (kind)"))
        if db.dialect == "postgresql":
            await conn.execute(text("ANALYZE tw_probe"))
    indexed = SlowQueryLog(db, threshold_s=0.0)
    try:
        await _query(db, ["k1"])
        await indexed.explain_pending()
        [q] = [q for q in indexed.queries.values() if "FROM tw_probe WHERE" in q.shape]
        assert q.plan and q.suggestion is None, q.plan
    finally:
        indexed.close()


async def test_fast_statements_are_not_logged_and_failures_leave_nothing_behind(sqlite_db):
    slow = SlowQueryLog(sqlite_db, threshold_s=3600.0)
    try:
        assert await sqlite_db.ping()
        async with sqlite_db.engine.connect() as conn:
            try:
                await conn.execute(text("SELECT * FROM no_such_table"))
            except Exception:  # noqa: BLE001 - the failure is the point
                pass
            raw = await conn.get_raw_connection()
            assert not raw.info.get("tw_started")
        assert slow.queries == {} and slow.slow_total == 0
    finally:
        slow.close()


def test_shapes_fold_numbers_and_parameter_lists() -> None:
    a = shape_of("SELECT t.a FROM t WHERE t.b IN ($1, $2, $3) AND t.c > 5  LIMIT 10")
    b = shape_of("SELECT t.a FROM t\n WHERE t.b IN ($1, $2) AND t.c > 7 LIMIT 20")
    assert a == b == "SELECT t.a FROM t WHERE t.b IN (…) AND t.c > N LIMIT N"


def test_a_walk_without_a_filter_says_so() -> None:
    text_ = suggest("sqlite", ["SCAN tokens"], "SELECT tokens.mint FROM tokens")
    assert text_ is not None and "filters on no column" in text_
    assert suggest("sqlite", ["SEARCH tokens USING INDEX ix_tokens_status (status=?)"],
                   "SELECT tokens.mint FROM tokens WHERE tokens.status = ?") is None
