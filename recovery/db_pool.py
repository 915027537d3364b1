"""The PostgreSQL connection pool grows while waits persist and shrinks when idle, within bounds.

It reads what the ``db`` collector measures every cycle (``monitoring.host.db_pool``): the time
``engine.connect()`` waited for a connection (``tokenwatch_db_pool_acquire_seconds``), connections
in use and beyond the pool's size (``..._checked_out``, ``..._overflow``). The size is the knob
``db_pool_size`` (``DB_POOL_MIN`` - ``DB_POOL_MAX``); a change builds a new engine and disposes the
old one (``app.db.Database.resize_pool``: SQLAlchemy pools cannot be resized in place), applied by
the ``recovery.db_pool`` job, so an operator's ``/tune db_pool_size 12`` takes effect within a tick.

* grow by half (at least 1) when, for ``k`` readings in a row, a connection waited over
  ``wait_s`` or the pool ran over its size (overflow in use);
* shrink by a quarter (at least 1) when for ``idle_s`` at most a quarter of it was in use;
* at most one change per ``cooldown_s``.

    pool = PoolController(db, readings, knobs, clock, minimum=5, maximum=30)
    scheduler.add_all(pool.jobs())
    await pool.tick()          # one reading, perhaps a change (tests: ManualClock, injected readings)
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.scheduler import JobSpec
from recovery.knobs import Knob, KnobRegistry

log = logging.getLogger(__name__)

CONTROLLER = "db_pool"
KNOB = "db_pool_size"


@dataclass(frozen=True)
class PoolReading:
    acquire_s: float | None    # how long the last probe waited for a connection
    checked_out: float | None  # connections in use
    overflow: float | None     # connections open beyond the pool's size


Readings = Callable[[], PoolReading]


class PoolController:
    def __init__(self, db: Database, readings: Readings, knobs: KnobRegistry, clock: Clock = SYSTEM_CLOCK, *,
                 minimum: int = 5, maximum: int = 30, k: int = 3, wait_s: float = 0.05, idle_s: float = 600.0,
                 cooldown_s: float = 60.0, interval_s: float = 10.0) -> None:
        self.db, self.readings, self.knobs, self.clock = db, readings, knobs, clock
        self.minimum, self.maximum, self.k = minimum, maximum, k
        self.wait_s, self.idle_s, self.cooldown_s, self.interval_s = wait_s, idle_s, cooldown_s, interval_s
        self.target = db.pool_size or minimum
        self._waits = 0
        self._busy_at: float | None = None     # when more than a quarter of the pool was last in use
        self._changed_at: float | None = None
        knobs.register(Knob(KNOB, "count", minimum, maximum, lambda: float(self.target), self._set_target,
                            help="PostgreSQL connections the pool keeps (a change rebuilds the engine)",
                            integer=True))

    def _set_target(self, value: float) -> None:
        self.target = int(value)

    async def tick(self) -> None:
        """Apply a pending size (an operator's or our own), then read and perhaps change it."""
        await self._apply()
        now = self.clock.time()
        r = self.readings()
        size = self.target
        if self._busy_at is None:
            self._busy_at = now
        waited = (r.acquire_s is not None and r.acquire_s >= self.wait_s) or (r.overflow or 0) > 0
        self._waits = self._waits + 1 if waited else 0
        if (r.checked_out or 0) > size / 4 or waited:
            self._busy_at = now
        cooled = self._changed_at is None or now - self._changed_at >= self.cooldown_s
        if not cooled:
            return
        if self._waits >= self.k and size < self.maximum:
            reason = (f"connections waited {self._waits} readings in a row (last {r.acquire_s or 0:.3f}s, "
                      f"overflow {r.overflow or 0:.0f}, in use {r.checked_out or 0:.0f} of {size})")
            if self.knobs.adjust(KNOB, size + max(1, size // 2), controller=CONTROLLER, reason=reason) is not None:
                self._changed_at, self._waits = now, 0
        elif now - self._busy_at >= self.idle_s and size > self.minimum:
            reason = f"at most a quarter of {size} connections in use for {self.idle_s / 60:.0f} min"
            if self.knobs.adjust(KNOB, size - max(1, size // 4), controller=CONTROLLER, reason=reason) is not None:
                self._changed_at, self._busy_at = now, now
        await self._apply()

    async def _apply(self) -> None:
        if self.db.pool_size is not None and self.db.pool_size != self.target:
            await self.db.resize_pool(self.target)

    def jobs(self) -> list[JobSpec]:
        return [JobSpec("recovery.db_pool", self.tick, interval_s=self.interval_s, budget_s=30.0)]
