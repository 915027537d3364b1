"""Benchmark: token checks per minute with 1, 2 and 4 pipeline processes on PostgreSQL + Redis.

One local market runs in a process of its own (seeded with ``--tokens`` tokens); each run gets a
fresh PostgreSQL database holding those tokens and its own egress key in Redis, then starts N
pipeline-only processes (``tokens.pipeline.Pipeline`` built directly, as bench/self_healing.py
does; the processor run as the scheduler runs it, every ``PROCESS_INTERVAL_S``). Every token is
due every second (check intervals of 1 s), so demand always exceeds what is measured. Two limits:

- (a) the market's limit raised to ``--high-rate`` (30,000/min): the API is not the ceiling, the
  processes and the database are;
- (b) the market at 300/min: the limit shared through Redis must hold (0 429s, at most 300
  requests in any 60 s window), and the checks are capped near 300 x 30 = 9,000/min whatever N.

It prints, per run: checks/min (from the checks table, over the measured span after a warm-up),
the scaling against 1 process, 429s served by the market, the most requests it received in any
60 s window, requests/min, and the cores used (CPU seconds per second) by the pipeline
processes together and by the market process: on a small machine they show the ceiling. Note the machine load (``uptime``): the figures are indicative.

    .venv/bin/python bench/cluster_throughput.py                   # about 6 minutes
    .venv/bin/python bench/cluster_throughput.py --seconds 20 --low-seconds 65 --procs 1 2
    .venv/bin/python bench/cluster_throughput.py --limits high     # (a) only, about 2.5 minutes
    .venv/bin/python bench/cluster_throughput.py --limits high --latency-ms 1000 --high-rate 600
        # processes held by round trips (as against a real market), the limit at 600/min: scaling until it
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
WARMUP_S = 5.0


# --- the market (its own process) ----------------------------------------------------------------
def _market(rate: int, tokens: int, out: Any, stop: Any, latency_ms: float = 0.0) -> None:
    async def main() -> None:
        from simulator.server import LocalMarket

        market = LocalMarket(seed=11, autostart_flow=False, rate_limit_per_min=rate, port=0,
                             fate_weights={"steady": 1.0})
        await market.start()
        if latency_ms > 0:  # a real market is a round trip away, not a loopback microsecond
            market.faults.set(latency_ms=latency_ms)
        mints = market.model.seed_tokens(tokens)
        out.put({"url": market.dexscreener_base_url, "admin": market.admin_url, "mints": mints})
        cpu0 = time.process_time()
        await asyncio.to_thread(stop.wait)
        out.put({"cpu_s": time.process_time() - cpu0})
        await market.stop()

    asyncio.run(main())


# --- one pipeline process ------------------------------------------------------------------------
def _worker(db_url: str, market_url: str, rate: int, egress: str, procs: int, go: Any, stop: Any,
            cpu: Any) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="worker %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        from app.clock import SYSTEM_CLOCK
        from app.db import Database, make_engine
        from app.settings import Settings
        from tokens.pipeline import Pipeline

        settings = Settings(_env_file=None, database_url=db_url, redis_url=REDIS_URL, egress_id=egress,
                            cluster_size_hint=procs, api_rate_limit_per_min=rate, hot_check_interval_s=1.0,
                            cold_check_interval_s=1.0, fresh_hot_s=0.0, batch_size=30, fetch_concurrency=4,
                            process_interval_s=1.0)
        db = Database(make_engine(db_url))
        async with Pipeline(settings, db, SYSTEM_CLOCK, market_url, "ws://127.0.0.1:9/unused", listen=False) as p:
            assert p.processor is not None
            limiter = p.limiter
            heartbeat = getattr(limiter, "heartbeat", None)
            if heartbeat is not None:
                await heartbeat()
            await asyncio.to_thread(go.wait)
            cpu0 = time.process_time()
            beat_at = time.monotonic()
            while not stop.is_set():
                started = time.monotonic()
                await p.processor.run_once()
                if heartbeat is not None and time.monotonic() - beat_at > 5.0:
                    await heartbeat()
                    beat_at = time.monotonic()
                await asyncio.sleep(max(0.0, settings.process_interval_s - (time.monotonic() - started)))
            cpu.put(time.process_time() - cpu0)
        await db.dispose()

    asyncio.run(main())


# --- one run -------------------------------------------------------------------------------------
async def _seed(db_url: str, mints: list[str]) -> None:
    from app.clock import SYSTEM_CLOCK
    from app.db import Database, make_engine
    from app.migrate import upgrade
    from tokens.repository import insert_token

    await upgrade(db_url)
    db = Database(make_engine(db_url))
    now = SYSTEM_CLOCK.time()
    for start in range(0, len(mints), 500):
        async def chunk(s, part=mints[start:start + 500]):
            for mint in part:
                await insert_token(s, mint, now=now, source="bench")
        await db.run(chunk)
    await db.dispose()


async def _checks_between(db_url: str, t0: float, t1: float) -> int:
    from sqlalchemy import func, select

    from app.db import Database, make_engine
    from tokens.models import Check
    from tokens.sql import execute

    db = Database(make_engine(db_url))
    try:
        async def count(s):
            stmt = select(func.count()).select_from(Check).where(Check.at >= t0, Check.at < t1)
            return int((await execute(s, stmt)).scalar_one())
        return await db.run(count)
    finally:
        await db.dispose()


def run_once(procs: int, rate: int, seconds: float, tokens: int, latency_ms: float = 0.0) -> dict:
    from bench.scratch_pg import scratch_postgres

    ctx = mp.get_context("spawn")
    out, market_stop = ctx.Queue(), ctx.Event()
    market = ctx.Process(target=_market, args=(rate, tokens, out, market_stop, latency_ms),
                        name="bench-market")
    market.start()
    info = out.get(timeout=120)

    async def body() -> dict:
        async with scratch_postgres("tw_cluster") as db_url:
            if db_url is None:
                raise SystemExit("PostgreSQL is needed (TEST_PG_ADMIN_DSN)")
            await _seed(db_url, info["mints"])
            go, stop, cpu = ctx.Event(), ctx.Event(), ctx.Queue()
            egress = f"bench-{uuid.uuid4().hex[:8]}"
            workers = [ctx.Process(target=_worker, args=(db_url, info["url"], rate, egress, procs, go, stop, cpu),
                                   name=f"bench-worker-{i}") for i in range(procs)]
            for w in workers:
                w.start()
            await asyncio.sleep(3.0 + procs)  # let them import and build their pipelines
            go.set()
            started = time.time()
            await asyncio.sleep(WARMUP_S + seconds)
            t0, t1 = started + WARMUP_S, time.time()
            stop.set()
            for w in workers:
                await asyncio.to_thread(w.join, 60)
            checks = await _checks_between(db_url, t0, t1)
            wall = time.time() - started
            with urllib.request.urlopen(f"{info['admin']}/stats", timeout=10) as resp:
                stats = json.loads(resp.read())
            market_stop.set()
            market_cpu = (await asyncio.to_thread(out.get, True, 60))["cpu_s"]
            workers_cpu = sum(cpu.get(timeout=10) for _ in workers)
            requests = sum(v for k, v in stats.get("requests", {}).items() if k in ("tokens", "token_pairs"))
            return {"procs": procs, "rate": rate, "checks_per_min": checks / ((t1 - t0) / 60.0),
                    "served_429": stats.get("served_429", 0), "max_in_window": stats.get("max_in_window", 0),
                    "requests_per_min": requests / (wall / 60.0), "exit_codes":
                    [w.exitcode for w in workers], "market_cores": market_cpu / wall,
                    "workers_cores": workers_cpu / wall}

    try:
        return asyncio.run(body())
    finally:
        market_stop.set()
        market.join(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--limits", nargs="+", choices=["high", "low"], default=["high", "low"],
                        help="which runs: (a) high = the raised limit, (b) low = the real limit")
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--high-rate", type=int, default=30_000, help="(a) the market's raised limit")
    parser.add_argument("--low-rate", type=int, default=300, help="(b) the market's real limit")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured span at the raised limit")
    parser.add_argument("--low-seconds", type=float, default=70.0,
                        help="measured span at the real limit (over 60 s: a whole window)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="the market's added latency per answer (a real market is ~100-1000 ms away): with "
                             "FETCH_CONCURRENCY=4 a process is then held by round trips, not by the database")
    args = parser.parse_args(argv)
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"({os.cpu_count()} cores); {args.tokens} tokens, each due every second; market latency "
          f"{args.latency_ms:g} ms", flush=True)
    ok = True
    runs = {"high": ("(a) raised limit", args.high_rate, args.seconds),
            "low": ("(b) real limit", args.low_rate, args.low_seconds)}
    for label, rate, seconds in (runs[k] for k in args.limits):
        print(f"\n{label}: market {rate}/min, {seconds:.0f}s measured after {WARMUP_S:.0f}s warm-up", flush=True)
        print(f"{'procs':>5} {'checks/min':>11} {'scaling':>8} {'429s':>5} {'max req/60s':>12} {'req/min':>8}"
              f" {'cores: workers':>15} {'market':>7}")
        base = None
        for n in args.procs:
            r = run_once(n, rate, seconds, args.tokens, args.latency_ms)
            base = base or r["checks_per_min"]
            print(f"{n:>5} {r['checks_per_min']:>11.0f} {r['checks_per_min'] / base:>7.2f}x {r['served_429']:>5} "
                  f"{r['max_in_window']:>12} {r['requests_per_min']:>8.0f} {r['workers_cores']:>15.2f} "
                  f"{r['market_cores']:>7.2f}   load {os.getloadavg()[0]:.2f}",
                  flush=True)
            ok = ok and r["served_429"] == 0 and (rate != args.low_rate or r["max_in_window"] <= rate)
    print(f"\naims: 0 429s and at most {args.low_rate} requests in any 60 s window at the real limit: "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
