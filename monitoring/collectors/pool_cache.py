"""The market client's pool cache: what is served without, or instead of, a market answer.

    registry.register(PoolCacheCollector(lambda: pipeline.pool_cache))   # built when the pipeline starts
    # tokenwatch_pool_cache_entries 2950.0
    # tokenwatch_pool_cache_lifetime_seconds 30.0               (raised while the market's p95 > 2 s)
    # tokenwatch_pool_cache_served_total{kind="stale"} 412.0    (the market failed: judged on older pools)
"""
from __future__ import annotations

from collections.abc import Callable

from monitoring import metric_names as m
from monitoring.sample import Sample
from tokens.pool_cache import PoolCache


class PoolCacheCollector:
    """Collector ``pool_cache``: its size, the lifetime in force, and the checks it answered."""

    name = "pool_cache"

    def __init__(self, cache: Callable[[], PoolCache | None]) -> None:
        self.cache = cache

    async def collect(self, now: float) -> list[Sample]:
        cache = self.cache()
        if cache is None:      # the pipeline has not started
            return []
        return [Sample(m.POOL_CACHE_ENTRIES, float(len(cache))),
                Sample(m.POOL_CACHE_LIFETIME_SECONDS, cache.fresh_s()),
                Sample(m.POOL_CACHE_SERVED_TOTAL, float(cache.served_fresh), {"kind": "fresh"}),
                Sample(m.POOL_CACHE_SERVED_TOTAL, float(cache.served_stale), {"kind": "stale"})]
