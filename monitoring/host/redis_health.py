"""Redis reachability and PING latency (only when ``REDIS_URL`` is set).

    collector = RedisCollector.from_url(settings.redis_url)   # None when no URL is configured
    collector = RedisCollector(client=redis_client)           # an existing redis.asyncio client
    registry.register(collector)
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.clock import SYSTEM_CLOCK, Clock
from monitoring import metric_names as m
from monitoring.sample import Sample

log = logging.getLogger(__name__)


class RedisCollector:
    """Collector ``redis``: ``tokenwatch_redis_up`` 0/1 and ``tokenwatch_redis_ping_seconds``.

    Logs once when Redis becomes unreachable and once when it answers again.
    """

    name = "redis"

    def __init__(self, client: Any, clock: Clock = SYSTEM_CLOCK, *, timeout_s: float = 2.0,
                 owns_client: bool = False) -> None:
        self.client = client
        self.clock = clock
        self.timeout_s = timeout_s
        self.owns_client = owns_client
        self.up: bool | None = None
        self.last_error: str | None = None

    @classmethod
    def from_url(cls, url: str | None, clock: Clock = SYSTEM_CLOCK, *, timeout_s: float = 2.0) -> "RedisCollector | None":
        if not url:
            return None
        import redis.asyncio as aioredis

        client = aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        return cls(client, clock, timeout_s=timeout_s, owns_client=True)

    async def close(self) -> None:
        if self.owns_client:
            await self.client.aclose()

    async def collect(self, now: float) -> list[Sample]:
        started = self.clock.monotonic()
        try:
            await asyncio.wait_for(self.client.ping(), timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - timeouts, refused connections, protocol errors
            error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
            if self.up is not False:
                log.warning("redis unreachable: %s", error)
            self.up, self.last_error = False, error
            return [Sample(m.REDIS_UP, 0.0)]
        latency = max(0.0, self.clock.monotonic() - started)
        if self.up is False:
            log.info("redis reachable again")
        self.up, self.last_error = True, None
        return [Sample(m.REDIS_UP, 1.0), Sample(m.REDIS_PING_SECONDS, latency)]
