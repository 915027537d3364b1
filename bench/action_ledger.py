"""The action ledger's cost: what a controller pays per adjustment (the registry's ``adjust`` with the
ledger's listener queueing the action), and how fast a flush writes a backlog, on SQLite and PostgreSQL.

    .venv/bin/python bench/action_ledger.py            # both databases (PostgreSQL on 127.0.0.1)

- ``adjust``: one ``KnobRegistry.adjust`` of a knob that changes each time, with the ledger
  subscribed (and without, for the listener's share), in microseconds, p50/p95 over 100,000 calls;
- ``flush``: 10,000 queued actions written by ``ActionLedger.flush`` (batches of 500), actions per second.

Aim: the hot path stays in the microseconds (no I/O); a flush keeps up with thousands of actions a second.
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.clock import ManualClock  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from bench.scratch_pg import scratch_postgres  # noqa: E402
from recovery.knobs import Knob, KnobRegistry  # noqa: E402
from recovery.ledger import ActionLedger  # noqa: E402

CALLS = 100_000
BACKLOG = 10_000


def registry(clock: ManualClock) -> tuple[KnobRegistry, list[float]]:
    box = [1.0]
    reg = KnobRegistry(clock)
    reg.register(Knob("fetch_concurrency", "count", 1, 64, lambda: box[0], lambda v: box.__setitem__(0, v),
                      integer=True))
    return reg, box


def adjust_us(reg: KnobRegistry) -> tuple[float, float]:
    times = []
    for i in range(CALLS):
        t0 = time.perf_counter_ns()
        reg.adjust("fetch_concurrency", 2 + i % 2, controller="aimd", reason="bench")
        times.append((time.perf_counter_ns() - t0) / 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


async def flush_rate(url: str) -> float:
    await upgrade(url)
    db = Database(make_engine(url))
    try:
        clock = ManualClock()
        reg, _ = registry(clock)
        ledger = ActionLedger(db, clock, reg, queue_max=BACKLOG * 2)
        for i in range(BACKLOG):
            reg.adjust("fetch_concurrency", 2 + i % 2, controller="aimd", reason="bench")
        t0 = time.perf_counter()
        written = await ledger.flush()
        return written / (time.perf_counter() - t0)
    finally:
        await db.dispose()


async def main() -> None:
    clock = ManualClock()
    bare, _ = registry(clock)
    p50, p95 = adjust_us(bare)
    print(f"adjust without the ledger: p50 {p50:.1f} µs, p95 {p95:.1f} µs")
    reg, _ = registry(clock)
    ActionLedger(None, clock, reg, queue_max=CALLS * 2)  # type: ignore[arg-type]  # never flushed here
    p50, p95 = adjust_us(reg)
    print(f"adjust with the ledger:    p50 {p50:.1f} µs, p95 {p95:.1f} µs")
    with tempfile.TemporaryDirectory() as tmp:
        rate = await flush_rate(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        print(f"flush {BACKLOG} actions, sqlite:     {rate:,.0f} actions/s")
    async with scratch_postgres() as url:
        if url is not None:
            rate = await flush_rate(url)
            print(f"flush {BACKLOG} actions, postgresql: {rate:,.0f} actions/s")


if __name__ == "__main__":
    asyncio.run(main())
