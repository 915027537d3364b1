"""Metric store speed on SQLite and PostgreSQL: one collection cycle's write, rollup, query.

    .venv/bin/python bench/metric_store_speed.py            # both databases (PostgreSQL on 127.0.0.1)
    TEST_PG_ADMIN_DSN=postgresql://... .venv/bin/python bench/metric_store_speed.py

Builds 24 hours of history of 10-second collections of 200 series as the service stores it
after a day: the last 6 hours raw (the raw retention: 432,000 rows), the 18 hours before as
1-minute rows (what the rollup left of them), then the first rollup pass (raw -> 1-minute,
1-minute -> 1-hour). Then times, each a median: the write of one cycle (200 samples, 30 writes),
the steady rollup (after each of 10 minutes of cycles), a 1-hour raw query, the 24-hour query
(1-minute rows over the whole 24 hours, plus the not-yet-rolled tail) and latest() (7 runs each).
"""
from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text  # noqa: E402

from bench.scratch_pg import scratch_postgres  # noqa: E402
from app.clock import ManualClock  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from monitoring.sample import Sample  # noqa: E402
from monitoring.store import TABLE, MetricStore  # noqa: E402

QUERY_RUNS = 7  # queries are timed as the median of this many runs
SERIES = 200
INTERVAL_S = 10
HOURS = 6  # raw history (the raw retention)
DAY_HOURS = 24  # history in all: the hours before the raw ones are stored as 1-minute rows
ROLLUP_RUNS = 10  # steady rollups timed (one after each minute of cycles)
START = 1_700_000_000.0 - (1_700_000_000.0 % 3600)


def cycle(ts: float) -> list[Sample]:
    return [Sample(f"tokenwatch_bench_{i % 40}", float(i + ts % 7), {"endpoint": f"e{i}"}, ts) for i in range(SERIES)]


def minute_rows(minute: float) -> list[dict]:
    """The 1-minute rows the rollup makes of one minute of ``cycle`` samples."""
    times = [minute + k * INTERVAL_S for k in range(60 // INTERVAL_S)]
    rows = []
    for i in range(SERIES):
        values = [float(i + ts % 7) for ts in times]
        rows.append({"name": f"tokenwatch_bench_{i % 40}", "labels": f"endpoint=e{i}", "resolution": 60,
                     "ts": minute, "value": sum(values) / len(values), "min_value": min(values),
                     "max_value": max(values), "count": len(values)})
    return rows


async def run(label: str, url: str) -> None:
    await upgrade(url)
    db = Database(make_engine(url))
    clock = ManualClock(START)
    store = MetricStore(db, clock, raw_retention_h=HOURS, settle_s=0)
    cycles = HOURS * 3600 // INTERVAL_S
    # the 18 hours before the raw ones, as the rollup left them (1-minute rows; hours rolled below)
    older: list[dict] = []
    for m in range((DAY_HOURS - HOURS) * 60):
        older += minute_rows(START - (DAY_HOURS - HOURS) * 3600 + m * 60)
        if len(older) >= 20_000:
            await db.run(lambda s, rows=older: s.exec(insert(TABLE), params=rows))
            older = []
    if older:
        await db.run(lambda s, rows=older: s.exec(insert(TABLE), params=rows))
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

    writes, rollups = [], []
    for _ in range(ROLLUP_RUNS):  # a minute of cycles, then the rollup job, as the service runs them
        for _ in range(60 // INTERVAL_S):
            samples = cycle(clock.time())
            t0 = time.perf_counter()
            await store.write(samples)
            writes.append(time.perf_counter() - t0)
            clock.advance(INTERVAL_S)
        t0 = time.perf_counter()
        await store.rollup(clock.time())
        rollups.append(time.perf_counter() - t0)
    steady_rollup = statistics.median(rollups)
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
    print(f"{label:10s} raw rows={cycles * SERIES:,} + 24 h of 1-minute rows  write(200) median="
          f"{statistics.median(writes) * 1000:.1f}ms max={max(writes) * 1000:.1f}ms ({len(writes)} writes)  "
          f"first rollup={first_rollup:.2f}s  steady rollup median={steady_rollup * 1000:.0f}ms "
          f"max={max(rollups) * 1000:.0f}ms ({len(rollups)} runs)  query 1h raw={q_raw * 1000:.1f}ms ({len(raw)} pts)  "
          f"24h={q_day * 1000:.1f}ms ({len(day)} pts, from {(now - day[0].ts) / 3600:.1f} h ago)  "
          f"latest={q_latest * 1000:.1f}ms")
    await db.dispose()


async def main() -> None:
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db")
    async with scratch_postgres() as pg_url:
        if pg_url is not None:
            await run("postgresql", pg_url)


if __name__ == "__main__":
    asyncio.run(main())
