"""/graph render time per preset, and event-loop lag while pictures render.

    .venv/bin/python bench/graph_render.py             # SQLite and PostgreSQL (127.0.0.1)
    .venv/bin/python bench/graph_render.py --picture docs/graph-health.png   # only the README's picture
    TEST_PG_ADMIN_DSN=postgresql://... .venv/bin/python bench/graph_render.py

Fills 24 hours of 10-second collections of every series the presets draw (charts.demo, ~45
series, ~390,000 raw rows, rolled up like the service does) and a day of alert history (40
incidents, 2 maintenance windows: every metric picture shades them), then for each preset over
24h (1-minute rollups, what /graph 24h reads) and 1h (raw) times the query (fetch_chart, on the
loop) and the drawing (in a RenderWorker process, as the service draws: render_chart plus
handing the data over and the PNG back) separately, RUNS times each: p50 and p95, and the
drawing's CPU time in its process (less sensitive to a loaded machine than wall time). Then it
draws 10 pictures at once through the RenderWorker (process pool, and a thread pool for
comparison) while a probe measures how late a 10 ms timer fires on the loop (max and p95 lag).
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

from sqlalchemy import text  # noqa: E402

from bench.scratch_pg import scratch_postgres  # noqa: E402
from app.clock import ManualClock  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from charts.data import ChartData, fetch_chart  # noqa: E402
from charts.demo import synthetic_samples, write_synthetic_alerts  # noqa: E402
from charts.presets import PRESETS  # noqa: E402
from charts.render import render_chart  # noqa: E402
from charts.worker import RenderWorker  # noqa: E402
from monitoring.store import MetricStore  # noqa: E402

RUNS = 20
NOW = 1_790_000_000.0 - (1_790_000_000.0 % 3600) + 1800


class _Settings:
    graph_backlog_limit = 500.0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def loop_lag_during(coro, tick_s: float = 0.01) -> tuple[object, float, float]:
    lags: list[float] = []
    stop = asyncio.Event()

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t0 = loop.time()
            await asyncio.sleep(tick_s)
            lags.append(max(0.0, loop.time() - t0 - tick_s))

    task = asyncio.create_task(probe())
    try:
        result = await coro
    finally:
        stop.set()
        await task
    return result, max(lags, default=0.0), p95(lags) if lags else 0.0


async def run(label: str, url: str, worker: RenderWorker) -> ChartData | None:
    await upgrade(url)
    db = Database(make_engine(url))
    store = MetricStore(db, ManualClock(NOW), raw_retention_h=24)
    samples = synthetic_samples(NOW, span_s=86400, step_s=10)
    t0 = time.perf_counter()
    for i in range(0, len(samples), 20_000):
        await store.write(samples[i:i + 20_000])
    await store.rollup(NOW)
    await write_synthetic_alerts(db, NOW, span_s=86400)  # the alerts preset and every picture's shading
    fill = time.perf_counter() - t0
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE metric_samples"))
    print(f"\n{label}: {len(samples):,} raw rows filled and rolled up in {fill:.1f}s")
    print(f"{'preset':12s} {'range':5s} {'query p50':>10s} {'query p95':>10s} {'draw p50':>9s} {'draw p95':>9s} "
          f"{'total p95':>10s} {'draw CPU p95':>12s}  points")
    sample_chart: ChartData | None = None
    for span in ("24h", "1h"):
        for name, preset in PRESETS.items():
            queries, draws, totals, cpu = [], [], [], []
            points = 0
            for _ in range(RUNS):
                t0 = time.perf_counter()
                data = await fetch_chart(store, preset, span, NOW, settings=_Settings())
                t1 = time.perf_counter()
                assert isinstance(data, ChartData), data
                picture = await worker.draw(data)
                cpu.append(picture.cpu_s)
                t2 = time.perf_counter()
                queries.append(t1 - t0)
                draws.append(t2 - t1)
                totals.append(t2 - t0)
                points = sum(len(s.ts) for p in data.panels for s in p.lines)
            if name == "api" and span == "24h" and isinstance(data, ChartData):
                sample_chart = data
            print(f"{name:12s} {span:5s} {statistics.median(queries) * 1000:8.0f}ms {p95(queries) * 1000:8.0f}ms "
                  f"{statistics.median(draws) * 1000:7.0f}ms {p95(draws) * 1000:7.0f}ms {p95(totals) * 1000:8.0f}ms"
                  f" {p95(cpu) * 1000:10.0f}ms  {points}")
    await db.dispose()
    return sample_chart


async def lag_while_rendering(chart: ChartData) -> None:
    print("\nloop lag while 10 pictures (api, 24h) render at once (10 ms probe timer):")
    for mode, workers in (("process", 1), ("process", 2), ("thread", 2)):
        worker = RenderWorker(processes=workers, max_queue=10, mode=mode)  # type: ignore[arg-type]
        await worker.start()
        t0 = time.perf_counter()
        _pics, lag_max, lag_p95 = await loop_lag_during(
            asyncio.gather(*(worker.render(chat, chart) for chat in range(10))))
        wall = time.perf_counter() - t0
        await worker.stop()
        print(f"  {mode:7s} x{workers}: 10 renders in {wall:.2f}s, loop lag max {lag_max * 1000:.0f}ms "
              f"p95 {lag_p95 * 1000:.0f}ms")


async def main() -> None:
    print(f"cpu cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    worker = RenderWorker(processes=1, max_queue=1)
    await worker.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            chart = await run("sqlite", f"sqlite+aiosqlite:///{tmp}/bench.db", worker)
        async with scratch_postgres() as pg_url:
            if pg_url is not None:
                await run("postgresql", pg_url, worker)
    finally:
        await worker.stop()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    if chart is not None:
        await lag_while_rendering(chart)


async def picture(path: str, preset: str = "health", span: str = "24h") -> None:
    """Write one preset's picture from the synthetic history (the one in docs/)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/pic.db"
        await upgrade(url)
        db = Database(make_engine(url))
        store = MetricStore(db, ManualClock(NOW), raw_retention_h=24)
        await store.write(synthetic_samples(NOW, span_s=86400, step_s=60))
        await store.rollup(NOW)
        await write_synthetic_alerts(db, NOW, span_s=86400)
        data = await fetch_chart(store, PRESETS[preset], span, NOW, settings=_Settings())
        assert isinstance(data, ChartData), data
        Path(path).write_bytes(render_chart(data).png)
        await db.dispose()
    print(f"wrote {path}")


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--picture":  # --picture PATH [PRESET]
        asyncio.run(picture(sys.argv[2], *sys.argv[3:4]))
    else:
        asyncio.run(main())
