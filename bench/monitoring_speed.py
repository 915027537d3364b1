"""Monitoring speed on the 100k/1M/1M dataset, sparse and at production density, on SQLite and PostgreSQL.

    .venv/bin/python bench/monitoring_speed.py                        # both densities, both databases
    .venv/bin/python bench/monitoring_speed.py --density production --only sqlite
    .venv/bin/python bench/monitoring_speed.py --rebuild              # rebuild the datasets (else built once)
    TEST_PG_ADMIN_DSN=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/monitoring_speed.py

Datasets (``bench/dataset.py``): 1,000,000 checks over 48 hours (``sparse``, ~350 a minute) or over
the last 2 hours (``production``, ~8,300 a minute: the pipeline's own rate at its ceiling).

Prints, per density and database (every figure the median of ``--runs`` runs after a warm-up):

- the whole collection cycle: ``CollectorRegistry.run_collection`` with EVERY collector the service
  registers (``build_monitoring``: process, build info, loop lag, database probe, Redis, API,
  breakers, pipeline counters, scheduler, pipeline; plus the bot's outbox collector) AND the metric
  store's write of the cycle's samples — aim < 100 ms on SQLite, < 50 ms on PostgreSQL;
- the same cycle when it also recounts the hour's failure reasons and their advice (one cycle a
  minute does), the pipeline collector alone (its share of the cycle), and the recount alone;
- the due-queue query ``... WHERE next_check_at <= now ORDER BY next_check_at LIMIT 30`` — < 20 ms;
- /status: the command's own code (``bot.routers.status.build_status``) from the latest snapshot,
  and its 🔄 Refresh, which collects anew first — < 300 ms;
- collector CPU: this process's CPU time over wall time across ``--cpu-cycles`` cycles run at the
  service's 10 s interval, one in six with the failure recount (what the collector costs the service's process; with SQLite that
  includes the database engine, which runs in-process) — aim < 2 % of a core. On PostgreSQL the
  server's CPU for the cycle's connections is printed beside it.
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

import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app.clock import ManualClock  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.scheduler import Scheduler  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.dataset import DENSITIES, NOW, build_dataset  # noqa: E402
from bot.metrics import DeliveryCollector  # noqa: E402
from bot.routers.status import build_status  # noqa: E402
from bot.setup import build_status_sections  # noqa: E402
from delivery.dispatch import OutboxSender  # noqa: E402
from delivery.store import Outbox  # noqa: E402
from monitoring.collectors.pipeline import FAILURE_WINDOW  # noqa: E402
from bot.context import BotContext  # noqa: E402
from monitoring.failure_stats import failure_stats  # noqa: E402
from monitoring.setup import build_monitoring  # noqa: E402
from tokens.pipeline import Pipeline  # noqa: E402

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE_URL = os.environ.get("TEST_PG_BASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
DATA_DIR = Path(os.environ.get("BENCH_DATA", "./data"))
CADENCE_S = 10.0
DUE_QUEUE = text("SELECT id, mint, status FROM tokens WHERE next_check_at <= :now ORDER BY next_check_at LIMIT 30")
AIMS = {"SQLite": 100.0, "PostgreSQL": 50.0}


def _pg_db(density: str) -> str:
    return f"tw_bench_monitoring_{density}"


def _sqlite_path(density: str) -> Path:
    return DATA_DIR / ("bench_monitoring.db" if density == "sparse" else f"bench_monitoring_{density}.db")


async def _pg_admin(sql: str):
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        return await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_exists(name: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _timed(fn, runs: int) -> tuple[float, float]:
    """(median wall ms, max wall ms) after one warm-up."""
    await fn()
    walls = []
    for _ in range(runs):
        w0 = time.perf_counter()
        await fn()
        walls.append((time.perf_counter() - w0) * 1000)
    return statistics.median(walls), max(walls)


async def _server_cpu_s(db: Database, name: str | None) -> float | None:
    """CPU seconds used so far by the PostgreSQL backends serving database ``name`` (same host)."""
    if name is None:
        return None
    async with db.engine.connect() as conn:
        pids = (await conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": name})).scalars()
        total = 0.0
        for pid in pids:
            try:
                times = psutil.Process(int(pid)).cpu_times()
                total += times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return total


def _ok(value: float, aim: float) -> str:
    return "OK" if value < aim else "MISSED"


async def measure(label: str, url: str, density: str, runs: int, cpu_cycles: int, pg_name: str | None) -> None:
    settings = Settings(_env_file=None, database_url=url, redis_url=REDIS_URL, http_port=0)
    await upgrade(url)  # a dataset built before the newest migration is brought up to date (and backfilled)
    db = Database(make_engine(url))
    clock = ManualClock(NOW)
    ctx = BotContext(settings=settings, db=db, clock=clock, pipeline=Pipeline(settings, db, clock))
    ctx.scheduler = Scheduler(settings, clock)
    for stage in ("scheduler", "fetch", "scoring", "db_write", "discovery"):
        ctx.pipeline.stage_stats.record(stage, 0.05)
    monitoring = await build_monitoring(ctx, serve_http=False)
    registry = ctx.collectors
    outbox = Outbox(db, clock)
    registry.register(DeliveryCollector(outbox, OutboxSender(db, outbox, None, settings, clock), None, clock))
    pipeline_collector = registry._pipeline  # the one build_monitoring registered
    sections = build_status_sections()
    aim = AIMS[label]

    async def cycle():
        return await registry.run_collection()

    async def cycle_with_recount():  # the one cycle a minute that also recounts the hour's failure reasons
        pipeline_collector._failures = None
        return await registry.run_collection()

    async def pipeline_only():
        return await pipeline_collector.collect(clock.time())

    async def failures():
        async with db.session() as session:
            return await failure_stats(session, clock.time(), windows=(FAILURE_WINDOW,), codes_windows=())

    async def due_queue():
        async with db.session() as session:
            return (await session.exec(DUE_QUEUE, params={"now": NOW})).all()

    async def status():
        return await build_status(ctx, sections)

    async def refresh():
        return await build_status(ctx, sections, refresh=True)

    try:
        c_med, c_max = await _timed(cycle, runs)
        cr_med, cr_max = await _timed(cycle_with_recount, runs)
        p_med, p_max = await _timed(pipeline_only, runs)
        f_med, f_max = await _timed(failures, runs)
        d_med, d_max = await _timed(due_queue, runs)
        s_med, s_max = await _timed(status, runs)
        r_med, r_max = await _timed(refresh, runs)
        samples = len(await cycle())
        # CPU over a run at the service's cadence: a cycle every 10 s, idle in between, one in six with the
        # minute's failure recount. The clock stays at the dataset's now: the dataset is a picture of one
        # moment (moved on, every live token would fall due, as if the processor had stopped).
        server0 = await _server_cpu_s(db, pg_name)
        proc = psutil.Process()
        cpu0, wall0 = proc.cpu_times(), time.perf_counter()
        for n in range(cpu_cycles):
            started = time.perf_counter()
            await (cycle_with_recount() if n % 6 == 0 else cycle())
            await asyncio.sleep(max(0.0, CADENCE_S - (time.perf_counter() - started)))
        cpu1, wall = proc.cpu_times(), time.perf_counter() - wall0
        server1 = await _server_cpu_s(db, pg_name)
        share = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / wall
        server = "" if server0 is None or server1 is None else \
            f"  (+ PostgreSQL backends {(server1 - server0) / wall:.2%})"
        print(f"{label}, {density} density ({DENSITIES[density]:g} h of checks), median of {runs}:")
        print(f"  whole collection cycle  median {c_med:7.1f} ms  max {c_max:7.1f} ms  ({len(registry.collectors)} "
              f"collectors, {samples} samples, store write included)  aim < {aim:.0f} ms  {_ok(c_med, aim)}")
        print(f"  ... with the minute's   median {cr_med:7.1f} ms  max {cr_max:7.1f} ms  (one cycle in six also recounts"
              f" the hour's failure reasons)  aim < {aim:.0f} ms  {_ok(cr_med, aim)}")
        print(f"  pipeline collector      median {p_med:7.1f} ms  max {p_max:7.1f} ms")
        print(f"  hour's failure reasons  median {f_med:7.1f} ms  max {f_max:7.1f} ms  (the recount alone)")
        print(f"  due-queue query         median {d_med:7.2f} ms  max {d_max:7.2f} ms  aim < 20 ms  {_ok(d_med, 20)}")
        print(f"  /status (snapshot)      median {s_med:7.1f} ms  max {s_max:7.1f} ms  aim < 300 ms  {_ok(s_med, 300)}")
        print(f"  /status Refresh         median {r_med:7.1f} ms  max {r_max:7.1f} ms  aim < 300 ms  {_ok(r_med, 300)}")
        print(f"  collector CPU           {share:.2%} of one core over {cpu_cycles} cycles at {CADENCE_S:.0f} s"
              f"{server}  aim < 2%  {_ok(share, 0.02)}")
    finally:
        await monitoring.stop()
        await db.dispose()


async def main(rebuild: bool, only: str | None, densities: list[str], runs: int, cpu_cycles: int) -> None:
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}"
          f" on {os.cpu_count()} cores")
    for density in densities:
        span = DENSITIES[density]
        if only in (None, "sqlite"):
            path = _sqlite_path(density)
            path.parent.mkdir(parents=True, exist_ok=True)
            sqlite_url = f"sqlite+aiosqlite:///{path}"
            if rebuild or not path.exists():
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                print(f"building SQLite dataset ({density}) at {path} ...")
                await build_dataset(sqlite_url, checks_span_h=span)
            await measure("SQLite", sqlite_url, density, runs, cpu_cycles, None)
        if only in (None, "postgres"):
            name = _pg_db(density)
            pg_url = f"{PG_BASE_URL}/{name}"
            if rebuild or not await _pg_exists(name):
                await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await _pg_admin(f'CREATE DATABASE "{name}"')
                print(f"building PostgreSQL dataset ({density}) in {name} ...")
                await build_dataset(pg_url, checks_span_h=span)
            await measure("PostgreSQL", pg_url, density, runs, cpu_cycles, name)
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the datasets")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--density", choices=[*sorted(DENSITIES), "both"], default="both")
    parser.add_argument("--runs", type=int, default=15, help="runs per figure (the median is printed)")
    parser.add_argument("--cpu-cycles", type=int, default=12, help="cycles at the 10 s cadence for the CPU share")
    args = parser.parse_args()
    chosen = ["production", "sparse"] if args.density == "both" else [args.density]
    asyncio.run(main(args.rebuild, args.only, chosen, args.runs, args.cpu_cycles))
