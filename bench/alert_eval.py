"""One alert evaluation cycle: 50 rules over 200 series, on SQLite and PostgreSQL.

    .venv/bin/python bench/alert_eval.py            # both databases (PostgreSQL on 127.0.0.1)

Synthetic: 20 metrics x 10 label values = 200 series, 10 minutes of 10-second history in the
window; 48 rules with every aggregation (last, avg, max, min, rate, increase, percentile) over
windows of 1 to 10 minutes, each over all 10 series of its metric (480 observations a cycle),
plus 2 forecast rules over 2 series each, reading 2 hours of stored history. Times (ms, p50 and
p95 of the runs):

Wall time includes waiting for the database (the event loop runs other work meanwhile); CPU
time is this process's (the database driver's threads included).

- ``pure``: a cycle with the forecasts' fits cached (what 59 cycles out of 60 cost; no database);
- ``with forecast refresh``: a cycle that re-reads the store and refits one forecast (the
  evaluator refreshes at most one due fit per cycle; each fit at most once a minute).

Aim: under 20 ms.
"""
from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.evaluate import Evaluator  # noqa: E402
from alerts.rules import parse_rules  # noqa: E402
from app.clock import ManualClock  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from bench.scratch_pg import scratch_postgres  # noqa: E402
from monitoring import metric_names as m  # noqa: E402
from monitoring.sample import Sample  # noqa: E402
from monitoring.snapshot import MonitoringSnapshot  # noqa: E402
from monitoring.store import MetricStore  # noqa: E402

START = 1_700_000_000.0
INTERVAL_S = 10.0
RUNS = 40
METRICS = sorted(name for name, info in m.METRICS.items() if info.kind != "histogram")[:20]
LABELS = [f"e{i}" for i in range(10)]
AGGS = [("last", None, 0), ("avg", None, 60), ("max", None, 120), ("min", None, 300), ("rate", None, 300),
        ("increase", None, 600), ("percentile", 0.95, 600), ("avg", None, 600)]
FORECAST_METRIC = m.PROCESS_RESIDENT_BYTES


def rules_doc() -> dict:
    rules = []
    for i in range(48):
        how, q, window = AGGS[i % len(AGGS)]
        rule = {"name": f"r{i}", "metric": METRICS[i % len(METRICS)], "aggregation": how, "op": ">",
                "threshold": 1e9, "for": "1m", "summary": "{endpoint} at {value} over {threshold}", "unit": "count"}
        if window:
            rule["window"] = f"{window}s"
        if q is not None:
            rule["quantile"] = q
        rules.append(rule)
    for i in range(2):
        rules.append({"name": f"f{i}", "metric": FORECAST_METRIC, "labels": {"band": f"b{i}"}, "op": "<=",
                      "threshold": 3600, "for": "10m", "unit": "bytes", "summary": "full in {eta_in} ({eta})",
                      "forecast": {"history": "2h", "horizon": "6h", "limit": 1e12}})
    return {"rule": rules}


def snapshot(at: float, rng: random.Random, cycle: int) -> MonitoringSnapshot:
    samples = {}
    for name in METRICS:
        for label in LABELS:
            s = Sample(name, cycle * 3.0 + rng.random(), {"endpoint": label}, at)
            samples[(name, s.labels_key)] = s
    for i in range(2):
        for kind in ("x", "y"):
            s = Sample(FORECAST_METRIC, 1e8 + cycle * 1e5, {"band": f"b{i}", "kind": kind}, at)
            samples[(FORECAST_METRIC, s.labels_key)] = s
    return MonitoringSnapshot(at=at, cycle=cycle, rate_window_s=60, collect_interval_s=INTERVAL_S, samples=samples)


async def fill_store(store: MetricStore, now: float) -> None:
    batch = []
    for n in range(720):  # 2 hours at 10 s
        ts = now - 7200 + n * INTERVAL_S
        for i in range(2):
            for kind in ("x", "y"):
                batch.append(Sample(FORECAST_METRIC, 1e8 + n * 1e5 + (5e6 if n % 13 == 0 else 0),
                                    {"band": f"b{i}", "kind": kind}, ts))
    await store.write(batch)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def timed(evaluator: Evaluator, rng: random.Random, start_cycle: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for k in range(RUNS):
        cycle = start_cycle + k
        at = START + cycle * INTERVAL_S
        snap = snapshot(at, rng, cycle)
        t0, c0 = time.perf_counter(), time.process_time()
        obs = await evaluator.evaluate(snap, at)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert len(obs) == 48 * 10 + 4
    return wall, cpu


async def run(label: str, url: str) -> None:
    await upgrade(url)
    db = Database(make_engine(url))
    warm = 60  # 10 minutes of history in the window
    clock = ManualClock(START + warm * INTERVAL_S)
    store = MetricStore(db, clock, settle_s=0)
    await fill_store(store, clock.time())
    rules = parse_rules(rules_doc())
    results = {}
    for name, every in (("pure", 1e9), ("with forecast refresh", 0.0)):
        rng = random.Random(1)
        evaluator = Evaluator(rules, store=store, forecast_every_s=every)
        for cycle in range(warm):  # fill the window (and the forecasts' first fit)
            at = START + cycle * INTERVAL_S
            await evaluator.evaluate(snapshot(at, rng, cycle), at)
        results[name] = await timed(evaluator, rng, warm)
    await db.dispose()
    for name, (wall, cpu) in results.items():
        print(f"{label:10s} {name:22s} wall p50 {statistics.median(wall):6.2f} ms  p95 {pct(wall, 0.95):6.2f} ms"
              f"   cpu p50 {statistics.median(cpu):6.2f} ms  p95 {pct(cpu, 0.95):6.2f} ms")
    print(f"{'':10s} ({RUNS} cycles each, 50 rules, 200 series, 484 observations a cycle)")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db")
    async with scratch_postgres() as url:
        if url is not None:
            await run("postgresql", url)


if __name__ == "__main__":
    asyncio.run(main())
