"""Event-loop lag: how late a timed sleep wakes up. A blocked loop shows up here first.

    monitor = LoopLagMonitor(interval_s=0.5)
    supervisor.add(monitor.loop_spec())   # in a service: supervised, beats every interval
    monitor.start()                    # standalone (tests): a bare task inside the running loop
    ...
    monitor.last_s, monitor.max_s, monitor.p95_s
    registry.register(monitor)         # it is also a collector ("loop_lag")
    await monitor.stop()
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from app.clock import SYSTEM_CLOCK, Clock
from app.percentiles import percentile
from app.supervisor import LoopSpec, beat
from monitoring import metric_names as m
from monitoring.sample import Sample

log = logging.getLogger(__name__)

HEARTBEAT_BUDGET_S = 30.0  # the probe beats every interval; silent this long means it is stuck


class LoopLagMonitor:
    """Measures scheduled-sleep vs actual wake-up in a background task; keeps a window of lags.

    ``clock`` must advance in real time (it measures the real loop), so tests use the system clock
    and block the loop on purpose.
    """

    name = "loop_lag"

    def __init__(self, interval_s: float = 0.5, clock: Clock = SYSTEM_CLOCK, *, window: int = 240,
                 warn_lag_s: float = 1.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.interval_s = interval_s
        self.clock = clock
        self.warn_lag_s = warn_lag_s
        self._lags: deque[float] = deque(maxlen=window)
        self._task: asyncio.Task[None] | None = None
        self._lagging = False
        self.last_s = 0.0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def record(self, lag_s: float) -> None:
        """Add one measured lag (seconds); logs once when lag crosses ``warn_lag_s`` and once when it clears."""
        lag_s = max(0.0, lag_s)
        self.last_s = lag_s
        self._lags.append(lag_s)
        if lag_s >= self.warn_lag_s and not self._lagging:
            self._lagging = True
            log.warning("event loop lag %.3fs (blocked loop?)", lag_s)
        elif lag_s < self.warn_lag_s / 2 and self._lagging:
            self._lagging = False
            log.info("event loop lag back to %.3fs", lag_s)

    @property
    def max_s(self) -> float:
        return max(self._lags, default=0.0)

    @property
    def p95_s(self) -> float:
        return percentile(sorted(self._lags), 0.95) or 0.0

    async def run(self) -> None:
        """Measure until cancelled: the loop body (supervised in a service, see ``loop_spec``)."""
        while True:
            beat()
            started = self.clock.monotonic()
            await asyncio.sleep(self.interval_s)
            self.record(self.clock.monotonic() - started - self.interval_s)

    def loop_spec(self, loop_id: str = "monitoring.loop_lag") -> LoopSpec:
        """The probe as a supervised loop (restarted if it dies, cancelled if it stops beating)."""
        return LoopSpec(loop_id, self.run, heartbeat_budget_s=max(HEARTBEAT_BUDGET_S, 10 * self.interval_s))

    def start(self) -> None:
        """Start measuring as a bare task (idempotent; standalone use and tests); needs a running loop."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="loop-lag-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def collect(self, now: float) -> list[Sample]:
        if not self._lags:
            return []
        return [
            Sample(m.LOOP_LAG_SECONDS, self.last_s),
            Sample(m.LOOP_LAG_MAX_SECONDS, self.max_s),
            Sample(m.LOOP_LAG_P95_SECONDS, self.p95_s),
        ]
