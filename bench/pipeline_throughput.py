"""Benchmark: token checks per minute against the API ceiling, on the local market.

Seeds ``--tokens`` (10,000) evolving tokens in a ``LocalMarket`` (DexScreener limit
``--api-rate`` = 300/min), inserts the same mints into a fresh database (SQLite in a temp
dir, or a fresh PostgreSQL database created next to ``--database-url``), runs the
pipeline's ``pipeline.process`` job under the real scheduler for ``--seconds`` (default 180),
and prints:

- token checks per minute, and as a share of the ceiling (API requests/min x 30 mints);
- 429s the market served; the most requests the market saw in any 60 s window;
- per-stage timings (where the time goes).

    .venv/bin/python bench/pipeline_throughput.py --seconds 90
    .venv/bin/python bench/pipeline_throughput.py --seconds 90 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

The target is >= 90% of the ceiling with no 429s.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.clock import SYSTEM_CLOCK  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.scheduler import JobSpec, Scheduler  # noqa: E402
from app.settings import Settings  # noqa: E402
from monitoring.setup import attach_pool_verifier  # noqa: E402
from simulator.server import LocalMarket  # noqa: E402
from tokens.pipeline import Pipeline  # noqa: E402
from tokens.repository import insert_token  # noqa: E402

BATCH = 30


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def fresh_database(database_url: str | None, tmp: Path) -> tuple[str, str | None]:
    """A migrated, empty database URL and (PostgreSQL only) the name to drop afterwards."""
    if not database_url:
        url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        await upgrade(url)
        return url, None
    url = Settings(database_url=database_url).database_url
    if not url.startswith("postgresql"):
        await upgrade(url)
        return url, None
    name = f"tw_bench_{uuid.uuid4().hex[:10]}"
    await _pg_admin(url, f'CREATE DATABASE "{name}"')
    base = url.rsplit("/", 1)[0]
    fresh = f"{base}/{name}"
    await upgrade(fresh)
    return fresh, name


async def seed(db: Database, mints: list[str], now: float) -> None:
    for start in range(0, len(mints), 500):
        chunk = mints[start:start + 500]

        async def insert_chunk(session, chunk=chunk):
            for mint in chunk:
                await insert_token(session, mint, now=now, source="bench")

        await db.run(insert_chunk)


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="tw_bench_"))
    url, pg_name = await fresh_database(args.database_url, tmp)
    settings = Settings(database_url=url, api_rate_limit_per_min=args.api_rate, process_interval_s=1.0,
                        fetch_concurrency=args.concurrency, _env_file=None)
    db = Database(make_engine(url))
    market = LocalMarket(seed=42, rate_limit_per_min=args.api_rate, autostart_flow=False, port=0)
    await market.start()
    scheduler = Scheduler(settings, SYSTEM_CLOCK)
    pipeline = Pipeline(settings, db, SYSTEM_CLOCK, market.dexscreener_base_url, market.pumpportal_ws_url,
                        listen=False)
    try:
        t0 = time.perf_counter()
        mints = market.model.seed_tokens(args.tokens)
        await seed(db, mints, SYSTEM_CLOCK.time())
        print(f"seeded {len(mints)} tokens in {time.perf_counter() - t0:.1f}s ({db.dialect})", flush=True)
        await pipeline.start()
        verifier = None if args.no_cross_check else attach_pool_verifier(pipeline, db, settings, SYSTEM_CLOCK)
        spec = next(j for j in pipeline.jobs() if j.id == "pipeline.process")
        scheduler.add(JobSpec(spec.id, spec.func, spec.interval_s, spec.budget_s))
        started = time.perf_counter()
        scheduler.start()
        next_report = 15.0
        while (elapsed := time.perf_counter() - started) < args.seconds:
            await asyncio.sleep(min(1.0, args.seconds - elapsed))
            if elapsed >= next_report:
                rate = pipeline.counters.checks / elapsed * 60
                print(f"  {elapsed:5.0f}s checks={pipeline.counters.checks} ({rate:,.0f}/min) "
                      f"429s={market.stats.served_429} max_in_window={market.stats.max_in_window}", flush=True)
                next_report += 15.0
        logging.getLogger("apscheduler").setLevel(logging.CRITICAL)  # the cancelled last run
        await scheduler.shutdown()
        elapsed = time.perf_counter() - started
        checks = pipeline.counters.checks
        per_min = checks / elapsed * 60.0
        ceiling = args.api_rate * BATCH
        stages = pipeline.stage_stats.snapshot()
        api = pipeline.api_stats.snapshot()
        result = {
            "database": db.dialect,
            "tokens": args.tokens,
            "seconds": round(elapsed, 1),
            "checks": checks,
            "check_failures": pipeline.counters.check_failures,
            "checks_per_min": round(per_min),
            "ceiling_per_min": ceiling,
            "share_of_ceiling": round(per_min / ceiling, 4),
            "api_requests": market.stats.requests.get("tokens", 0) + market.stats.requests.get("token_pairs", 0),
            "served_429": market.stats.served_429,
            "max_in_60s_window": market.stats.max_in_window,
            "activations": pipeline.counters.transitions.get("activated", 0),
            "pool_cross_checks": verifier.stats.verifications if verifier else "off",
        }
        print("\nresult:")
        for key, value in result.items():
            print(f"  {key:20s} {value}")
        print("stages (p50 / p95 ms per batch; scheduler: per run_once):")
        for name, s in stages.items():
            if s.count:
                print(f"  {name:10s} count={s.count:7d} p50={1000 * (s.p50_s or 0):7.1f} "
                      f"p95={1000 * (s.p95_s or 0):7.1f} queue={s.queue_size}")
        b = api["tokens_batch"]
        print(f"tokens_batch: requests={b.requests} p50={1000 * (b.p50_s or 0):.1f}ms "
              f"p95={1000 * (b.p95_s or 0):.1f}ms errors={b.errors}")
        return result
    finally:
        await pipeline.stop()
        await market.stop()
        await db.dispose()
        if pg_name is not None:
            await _pg_admin(Settings(database_url=args.database_url).database_url,
                            f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="how long to run (default 180)")
    parser.add_argument("--tokens", type=int, default=10_000, help="tracked tokens (default 10000)")
    parser.add_argument("--api-rate", type=int, default=300, help="the market's requests/min limit (300)")
    parser.add_argument("--no-cross-check", action="store_true",
                        help="leave out monitoring's pool cross-check (on in the service; it spends ~3%% of the budget)")
    parser.add_argument("--concurrency", type=int, default=4, help="fetch concurrency (default 4)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL (a fresh database is created beside it); default: temp SQLite")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = asyncio.run(run(args))
    ok = result["share_of_ceiling"] >= 0.9 and result["served_429"] == 0
    print("\nPASS" if ok else "\nBELOW TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
