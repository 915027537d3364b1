"""Benchmark: what a full market outage costs the market, and how fast tokenwatch comes back.

Seeds ``--tokens`` (10,000: demand above the ``--api-rate`` ceiling of 300/min) in a ``LocalMarket``
and a fresh database (as ``bench/pipeline_throughput.py``), runs the ``pipeline.process`` job under
the real scheduler on the real clock, and goes through three phases: normal (``--normal-s``),
a full outage answering 503 (``--outage-s``), normal again (``--after-s``). Requests are counted at
the market's side every second. Prints:

- requests/min in the normal phase and during the outage (and the outage's share of normal);
- seconds from the market's return to the breaker closing, and to full pace (the first 5 s
  window after it at >= 90 % of the normal phase's request rate).

    .venv/bin/python bench/breaker_outage.py --normal-s 45 --outage-s 60 --after-s 45

Aims (issue 9): at most 10 % of the normal request rate during the outage, full pace within 30 s.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app.clock import SYSTEM_CLOCK  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.scheduler import JobSpec, Scheduler  # noqa: E402
from app.settings import Settings  # noqa: E402
from pipeline_throughput import fresh_database, seed  # noqa: E402
from simulator.server import LocalMarket  # noqa: E402
from tokens.breaker import BreakerTransition  # noqa: E402
from tokens.pipeline import Pipeline  # noqa: E402

WINDOW_S = 5


def market_requests(market: LocalMarket) -> int:
    """Every request the market received on the DexScreener endpoints, answered or not."""
    return sum(market.stats.requests.values()) + market.stats.faults["outage"]


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="tw_bench_"))
    url, _ = await fresh_database(args.database_url, tmp)
    settings = Settings(database_url=url, api_rate_limit_per_min=args.api_rate, process_interval_s=1.0,
                        _env_file=None)
    db = Database(make_engine(url))
    market = LocalMarket(seed=42, rate_limit_per_min=args.api_rate, autostart_flow=False, port=0)
    await market.start()
    scheduler = Scheduler(settings, SYSTEM_CLOCK)
    pipeline = Pipeline(settings, db, SYSTEM_CLOCK, market.dexscreener_base_url, market.pumpportal_ws_url,
                        listen=False)
    transitions: list[tuple[float, BreakerTransition]] = []
    try:
        mints = market.model.seed_tokens(args.tokens)
        await seed(db, mints, SYSTEM_CLOCK.time())
        await pipeline.start()
        pipeline.breakers.on_transition(lambda t: transitions.append((time.perf_counter(), t)))
        spec = next(j for j in pipeline.jobs() if j.id == "pipeline.process")
        scheduler.add(JobSpec(spec.id, spec.func, spec.interval_s, spec.budget_s))
        per_s: list[int] = []  # requests the market received in each second
        started = time.perf_counter()
        scheduler.start()
        last = market_requests(market)
        phases = [("normal", args.normal_s), ("outage", args.outage_s), ("after", args.after_s)]
        marks: dict[str, int] = {}
        back_at = 0.0
        for name, seconds in phases:
            if name == "outage":
                await market.apply_faults({"outage": True, "outage_mode": "503"})
            elif name == "after":
                await market.reset_faults()
                back_at = time.perf_counter()
            marks[name] = len(per_s)
            for _ in range(int(seconds)):
                await asyncio.sleep(max(0.0, started + len(per_s) + 1 - time.perf_counter()))
                now = market_requests(market)
                per_s.append(now - last)
                last = now
            print(f"  {name:6s} {sum(per_s[marks[name]:]):5d} requests in {seconds:g}s "
                  f"(breaker {pipeline.breakers.state('tokens_batch')})", flush=True)
        logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
        await scheduler.shutdown()

        normal = per_s[marks["normal"]:marks["outage"]]
        outage = per_s[marks["outage"]:marks["after"]]
        after = per_s[marks["after"]:]
        normal_per_min = sum(normal) / max(1, len(normal)) * 60
        outage_per_min = sum(outage) / max(1, len(outage)) * 60
        full_pace_s: float | None = None
        for i in range(len(after) - WINDOW_S + 1):
            if sum(after[i:i + WINDOW_S]) / WINDOW_S * 60 >= 0.9 * normal_per_min:
                full_pace_s = float(i + WINDOW_S)  # the end of the first full-pace window
                break
        closed = [at for at, t in transitions if t.after == "closed" and at >= back_at]
        return {
            "tokens": args.tokens,
            "api_rate_per_min": args.api_rate,
            "normal_requests_per_min": round(normal_per_min, 1),
            "outage_requests_per_min": round(outage_per_min, 1),
            "outage_share_of_normal": round(outage_per_min / normal_per_min, 4) if normal_per_min else None,
            "outage_requests": sum(outage),
            "breaker_closed_after_s": round(closed[0] - back_at, 1) if closed else None,
            "full_pace_after_s": full_pace_s,
            "breaker_openings": pipeline.breakers.get("tokens_batch").opened,
            "served_429": market.stats.served_429,
        }
    finally:
        await pipeline.stop()
        await market.stop()
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--api-rate", type=int, default=300)
    parser.add_argument("--normal-s", type=float, default=60.0)
    parser.add_argument("--outage-s", type=float, default=60.0)
    parser.add_argument("--after-s", type=float, default=60.0)
    parser.add_argument("--database-url", default=None, help="PostgreSQL admin URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = asyncio.run(run(args))
    print("\nresult:")
    for key, value in result.items():
        print(f"  {key:26s} {value}")


if __name__ == "__main__":
    main()
