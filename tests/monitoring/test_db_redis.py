"""DB pool and Redis collectors against real services, and against unreachable ones."""
from __future__ import annotations

import logging


from app.clock import ManualClock
from app.db import Database, make_engine
from monitoring import metric_names as m
from monitoring.host.db_pool import DbPoolCollector
from monitoring.host.redis_health import RedisCollector


def _values(samples) -> dict[str, float]:
    return {s.name: s.value for s in samples}


async def test_db_pool_collector_on_both_databases(db: Database, clock: ManualClock) -> None:
    collector = DbPoolCollector(db)
    values = _values(await collector.collect(clock.time()))
    assert values[m.DB_UP] == 1.0
    assert values[m.DB_PING_SECONDS] >= 0
    assert values[m.DB_POOL_CHECKOUTS_TOTAL] >= 1
    assert m.DB_POOL_SIZE in values and m.DB_POOL_CHECKED_OUT in values
    async with db.engine.connect():
        held = _values(await collector.collect(clock.time()))
    assert held[m.DB_POOL_CHECKED_OUT] >= 1  # the connection held above is counted
    collector.close()


async def test_db_down_reported_and_logged_once(clock: ManualClock, caplog) -> None:
    bad = Database(make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"), retries=0)
    caplog.set_level(logging.INFO, logger="monitoring.host.db_pool")
    try:
        collector = DbPoolCollector(bad, probe_timeout_s=5)
        for _ in range(3):
            assert _values(await collector.collect(clock.time()))[m.DB_UP] == 0.0
    finally:
        await bad.dispose()
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    assert collector.last_error


async def test_redis_up(redis_client, clock: ManualClock) -> None:
    values = _values(await RedisCollector(redis_client).collect(clock.time()))
    assert values[m.REDIS_UP] == 1.0 and values[m.REDIS_PING_SECONDS] >= 0


async def test_redis_down_then_state_logged_once(clock: ManualClock, caplog) -> None:
    assert RedisCollector.from_url(None) is None
    collector = RedisCollector.from_url("redis://127.0.0.1:1/0", timeout_s=1.0)
    caplog.set_level(logging.INFO, logger="monitoring.host.redis_health")
    try:
        for _ in range(2):
            assert _values(await collector.collect(clock.time())) == {m.REDIS_UP: 0.0}
    finally:
        await collector.close()
    assert len([r for r in caplog.records if "redis unreachable" in r.getMessage()]) == 1
