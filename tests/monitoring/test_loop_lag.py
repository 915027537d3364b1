"""LoopLagMonitor notices a deliberately blocked event loop."""
from __future__ import annotations

import asyncio
import time

from monitoring import metric_names as m
from monitoring.host.loop_lag import LoopLagMonitor


async def test_blocked_loop_shows_as_lag() -> None:
    monitor = LoopLagMonitor(interval_s=0.02)
    monitor.start()
    try:
        await asyncio.sleep(0.1)
        time.sleep(0.2)  # block the loop on purpose
        await asyncio.sleep(0.1)
    finally:
        await monitor.stop()
    assert monitor.max_s >= 0.1
    samples = {s.name: s.value for s in await monitor.collect(0.0)}
    assert samples[m.LOOP_LAG_MAX_SECONDS] >= 0.1
    assert not monitor.running


async def test_percentile_over_recorded_lags() -> None:
    monitor = LoopLagMonitor(interval_s=1.0, warn_lag_s=10)
    assert await monitor.collect(0.0) == []
    for lag in [0.0] * 95 + [1.0] * 5:
        monitor.record(lag)
    assert monitor.p95_s == 0.0 and monitor.max_s == 1.0
    monitor.record(-0.5)  # a clock that woke early is no lag
    assert monitor.last_s == 0.0
