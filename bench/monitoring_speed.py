"""Pipeline monitoring speed on the 100k/1M/1M dataset, on SQLite and PostgreSQL.

    .venv/bin/python bench/monitoring_speed.py                 # builds the datasets on first run
    .venv/bin/python bench/monitoring_speed.py --rebuild
    TEST_PG_ADMIN_DSN=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/monitoring_speed.py

Prints, per database (median of several runs after a warm-up):

- the whole collection cycle: ``PipelineCollector.collect`` (every pipeline query, the failure
  hint and the last errors: everything the cycle's snapshot holds) — target < 200 ms on SQLite,
  < 100 ms on PostgreSQL;
- the due-queue query ``... WHERE next_check_at <= now ORDER BY next_check_at LIMIT 30`` — < 20 ms;
- /status: the command's own code (``bot.routers.status.build_status``) from the latest snapshot,
  and its 🔄 Refresh, which collects anew first — < 300 ms;
- the collector's CPU cost as a share of one core at the 10 s cadence (this process's CPU
  time per collection / 10 s; PostgreSQL's own server CPU is not included) — < 2 %.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from app.clock import ManualClock  # noqa: E402
from monitoring.context import MonitoringContext  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.dataset import NOW, build_dataset  # noqa: E402
from bot.routers.status import build_status  # noqa: E402
from bot.setup import build_status_sections  # noqa: E402
from monitoring.collector import CollectorRegistry  # noqa: E402
from monitoring.collectors.pipeline import PipelineCollector  # noqa: E402
from monitoring.pipeline import PipelineParams  # noqa: E402
from tokens.stage_stats import StageStats  # noqa: E402

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE_URL = os.environ.get("TEST_PG_BASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")
PG_DB = "tw_bench_monitoring"
SQLITE_PATH = Path(os.environ.get("BENCH_SQLITE", "./data/bench_monitoring.db"))
RUNS = 15
CADENCE_S = 10.0
DUE_QUEUE = text("SELECT id, mint, status FROM tokens WHERE next_check_at <= :now ORDER BY next_check_at LIMIT 30")


async def _pg_admin(sql: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        return await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_exists() -> bool:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DB))
    finally:
        await conn.close()


async def _timed(fn, runs: int = RUNS) -> tuple[float, float, float]:
    """(median wall ms, max wall ms, median process-CPU ms) after one warm-up."""
    await fn()
    walls, cpus = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        await fn()
        walls.append((time.perf_counter() - w0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return statistics.median(walls), max(walls), statistics.median(cpus)


async def measure(label: str, url: str, target_collect_ms: float) -> None:
    settings = Settings(_env_file=None, database_url=url)
    db = Database(make_engine(url))
    clock = ManualClock(NOW)
    stats = StageStats(clock)
    for stage in ("scheduler", "fetch", "scoring", "db_write", "discovery"):
        stats.record(stage, 0.05)
    collector = PipelineCollector(db, PipelineParams.from_settings(settings), stage_stats=stats)
    sections = build_status_sections()
    ctx = MonitoringContext(settings=settings, db=db, clock=clock)
    ctx.collectors = CollectorRegistry(clock=clock, collect_interval_s=CADENCE_S)
    ctx.collectors.register_pipeline(PipelineCollector(db, PipelineParams.from_settings(settings), stage_stats=stats))

    async def collect():
        return await collector.collect(NOW)

    async def due_queue():
        async with db.session() as session:
            return (await session.exec(DUE_QUEUE, params={"now": NOW})).all()

    async def status():
        return await build_status(ctx, sections)

    async def refresh():
        return await build_status(ctx, sections, refresh=True)

    try:
        c_med, c_max, c_cpu = await _timed(collect)
        d_med, d_max, _ = await _timed(due_queue)
        s_med, s_max, _ = await _timed(status)
        r_med, r_max, _ = await _timed(refresh)
        share = c_cpu / 1000 / CADENCE_S
        samples = len(await collect())
        print(f"{label}:")
        print(f"  collection cycle   median {c_med:7.1f} ms  max {c_max:7.1f} ms  ({samples} samples)"
              f"  target < {target_collect_ms:.0f} ms  {'OK' if c_med < target_collect_ms else 'MISSED'}")
        print(f"  due-queue query    median {d_med:7.2f} ms  max {d_max:7.2f} ms"
              f"  target < 20 ms  {'OK' if d_med < 20 else 'MISSED'}")
        print(f"  /status (snapshot) median {s_med:7.1f} ms  max {s_max:7.1f} ms"
              f"  target < 300 ms  {'OK' if s_med < 300 else 'MISSED'}")
        print(f"  /status Refresh    median {r_med:7.1f} ms  max {r_max:7.1f} ms"
              f"  target < 300 ms  {'OK' if r_med < 300 else 'MISSED'}")
        print(f"  collector CPU      {c_cpu:7.1f} ms per cycle = {share:.2%} of one core at {CADENCE_S:.0f} s"
              f"  target < 2%  {'OK' if share < 0.02 else 'MISSED'}")
    finally:
        await db.dispose()


async def main(rebuild: bool, only: str | None) -> None:
    if only in (None, "sqlite"):
        SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        sqlite_url = f"sqlite+aiosqlite:///{SQLITE_PATH}"
        if rebuild or not SQLITE_PATH.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
            print(f"building SQLite dataset at {SQLITE_PATH} ...")
            await build_dataset(sqlite_url)
        await measure("SQLite", sqlite_url, 200.0)
    if only in (None, "postgres"):
        pg_url = f"{PG_BASE_URL}/{PG_DB}"
        if rebuild or not await _pg_exists():
            await _pg_admin(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            await _pg_admin(f'CREATE DATABASE "{PG_DB}"')
            print(f"building PostgreSQL dataset in {PG_DB} ...")
            await build_dataset(pg_url)
        await measure("PostgreSQL", pg_url, 100.0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the datasets")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    asyncio.run(main(args.rebuild, args.only))
