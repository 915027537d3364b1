"""Metric store speed on SQLite and PostgreSQL: one collection cycle's write, rollup, query.

    .venv/bin/python bench/metric_store_speed.py            # both databases (PostgreSQL on 127.0.0.1)
    TEST_PG_ADMIN_DSN=postgresql://... .venv/bin/python bench/metric_store_speed.py

Simulates 6 hours of 10-second collections of 200 series (432,000 raw rows), then times:
the write of one cycle (200 samples), a rollup pass, a 1-hour raw query, a 24-hour query
(1-minute rollups) and latest() (queries: median of 7 runs).
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from bench.scratch_pg import scratch_postgres  # noqa: E402
from app.clock import ManualClock  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from monitoring.sample import Sample  # noqa: E402
from monitoring.store import MetricStore  # noqa: E402

QUERY_RUNS = 7  # queries are timed as the median of this many runs
SERIES = 200
INTERVAL_S = 10
HOURS = 6
START = 1_700_000_000.0 - (1_700_000_000.0 % 3600)


def cycle(ts: float) -> list[Sample]:
    return [Sample(f"tokenwatch_bench_{i % 40}", float(i + ts % 7), {"endpoint": f"e{i}"}, ts) for i in range(SERIES)]


async def run(label: str, url: str) -> None:
    await upgrade(url)
    db = Database(make_engine(url))
    clock = ManualClock(START)
    store = MetricStore(db, clock, raw_retention_h=HOURS, settle_s=0)
    cycles = HOURS * 3600 // INTERVAL_S
    # fill history fast: several cycles per write
    batch: list[Sample] = []
    for n in range(cycles):
        batch += cycle(START + n * INTERVAL_S)
        if len(batch) >= 20_000:
            await store.write(batch)
            batch = []
    if batch:
        await store.write(batch)
    clock.set(START + HOURS * 3600)
    t0 = time.perf_counter()
    await store.rollup(clock.time())
    first_rollup = time.perf_counter() - t0

    writes = []
    for n in range(20):
        samples = cycle(clock.time())
        t0 = time.perf_counter()
        await store.write(samples)
        writes.append(time.perf_counter() - t0)
        clock.advance(INTERVAL_S)
    t0 = time.perf_counter()
    await store.rollup(clock.time())
    steady_rollup = time.perf_counter() - t0
    now = clock.time()
    if db.dialect == "postgresql":  # what autovacuum's analyze does after a bulk load
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE metric_samples"))

    async def median_s(fn) -> tuple[float, object]:
        times, result = [], None
        for _ in range(QUERY_RUNS):
            t0 = time.perf_counter()
            result = await fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times), result

    q_raw, raw = await median_s(lambda: store.query("tokenwatch_bench_3", labels={"endpoint": "e3"}, since=now - 3600))
    q_day, day = await median_s(lambda: store.query("tokenwatch_bench_3", labels={"endpoint": "e3"},
                                                     since=now - 86400))
    q_latest, _ = await median_s(lambda: store.latest("tokenwatch_bench_3", {"endpoint": "e3"}))
    print(f"{label:10s} rows={cycles * SERIES:,} write(200) p50={statistics.median(writes) * 1000:.1f}ms "
          f"max={max(writes) * 1000:.1f}ms  first rollup={first_rollup:.2f}s steady rollup="
          f"{steady_rollup * 1000:.0f}ms  query 1h raw={q_raw * 1000:.1f}ms ({len(raw)} pts)  "
          f"24h={q_day * 1000:.1f}ms ({len(day)} pts)  latest={q_latest * 1000:.1f}ms")
    await db.dispose()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db")
    async with scratch_postgres() as pg_url:
        if pg_url is not None:
            await run("postgresql", pg_url)


if __name__ == "__main__":
    asyncio.run(main())
