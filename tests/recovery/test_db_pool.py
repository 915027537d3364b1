"""The PostgreSQL pool grows while connections wait and shrinks when idle, within its bounds, by
rebuilding the engine without dropping work in flight (real PostgreSQL; readings injected, ManualClock)."""
from __future__ import annotations

from sqlalchemy import text

from app.clock import ManualClock
from app.db import Database, make_engine
from monitoring.host.db_pool import DbPoolCollector
from recovery.db_pool import KNOB, PoolController, PoolReading
from recovery.knobs import Action, KnobRegistry
from recovery.slow_queries import SlowQueryLog


class Readings:
    def __init__(self) -> None:
        self.now = PoolReading(0.001, 1.0, 0.0)

    def __call__(self) -> PoolReading:
        return self.now


async def test_the_pool_grows_under_waits_shrinks_when_idle_and_keeps_work_in_flight(pg_url):
    db = Database(make_engine(pg_url, pool_size=10))
    clock = ManualClock(1_700_000_000.0)
    knobs = KnobRegistry(clock)
    actions: list[Action] = []
    knobs.on_action(actions.append)
    readings = Readings()
    collector = DbPoolCollector(db, clock=clock)
    slow = SlowQueryLog(db, threshold_s=0.0)
    pool = PoolController(db, readings, knobs, clock, minimum=5, maximum=20)
    try:
        async with db.session() as session:                   # a transaction open across the resize
            in_flight = await session.connection()
            await in_flight.execute(text("SELECT 1"))
            readings.now = PoolReading(0.2, 10.0, 3.0)        # connections wait, the pool overflows
            for _ in range(3):
                await pool.tick()
                clock.advance(10)
            assert db.pool_size == 15
            assert (await in_flight.execute(text("SELECT 2"))).scalar() == 2
            await session.commit()
        for _ in range(12):                                   # waits persist: grows again, after the cooldown
            await pool.tick()
            clock.advance(10)
        assert db.pool_size == 20                             # and no further than its maximum
        assert [(a.before, a.after) for a in actions] == [(10, 15), (15, 20)]
        assert all(a.controller == "db_pool" and a.knob == KNOB for a in actions)
        assert "waited 3 readings in a row" in actions[0].reason

        # the new engine is the one in use, and the listeners moved with it
        before_checkouts, before_slow = collector.checkouts, slow.slow_total
        async with db.session() as session:
            assert (await (await session.connection()).execute(text("SELECT 3"))).scalar() == 3
        assert collector.checkouts > before_checkouts and slow.slow_total > before_slow
        assert db.engine.sync_engine.pool.size() == 20  # type: ignore[attr-defined]

        readings.now = PoolReading(0.001, 1.0, 0.0)           # idle
        for _ in range(61):
            await pool.tick()
            clock.advance(10)
        assert db.pool_size == 15 and actions[-1].after == 15 and "quarter" in actions[-1].reason

        knobs.adjust(KNOB, 8, controller="operator", reason="/tune", actor="ann")   # an operator's value holds
        await pool.tick()
        assert db.pool_size == 8
        readings.now = PoolReading(0.3, 8.0, 5.0)
        for _ in range(10):
            await pool.tick()
            clock.advance(10)
        assert db.pool_size == 8
    finally:
        slow.close()
        collector.close()
        await db.dispose()


async def test_bounds_are_kept_whatever_is_asked(pg_url):
    db = Database(make_engine(pg_url, pool_size=10))
    knobs = KnobRegistry(ManualClock())
    pool = PoolController(db, Readings(), knobs, ManualClock(), minimum=5, maximum=20)
    try:
        knobs.adjust(KNOB, 500, controller="operator", reason="/tune")
        await pool.tick()
        assert db.pool_size == 20
    finally:
        await db.dispose()
