"""Cached pool data lives longer while the market is slow (RFC 5861's stale-while-revalidate).

While the market's p95 latency (``tokenwatch_api_latency_p95_seconds{endpoint="tokens_batch"}``,
from each monitoring snapshot) is over ``SLOW_P95_S`` (2 s), the pool cache's lifetime (knob
``pool_cache_s``) rises to ``POOL_CACHE_SLOW_S``: a token due again inside it is judged on the pools
of its last check, marked with their age, and asks nothing of the market; the check after the
lifetime revalidates. When p95 is back under ``CALM_P95_S`` (1.5 s: hysteresis, no flapping at the
edge) the lifetime returns to 0 and every check asks the market again. Pinned by an operator
(``/tune pool_cache_s 20``), the knob is left alone. Timeouts rise on their own (``recovery.rto``).

    controller = CacheLifetimeController(knobs, slow_lifetime_s=30.0)
    register_cache_knob(knobs, pipeline.pool_cache, maximum_s=settings.stale_data_s)
    coordinator.add_listener(controller.on_snapshot)      # or controller.observe(p95_s)
"""
from __future__ import annotations

import logging

from monitoring import metric_names as m
from monitoring.snapshot import MonitoringSnapshot
from recovery.controllers import CacheLifetime
from recovery.knobs import Knob, KnobRegistry

log = logging.getLogger(__name__)

CACHE_KNOB = "pool_cache_s"
CONTROLLER = "cache"
SLOW_P95_S = 2.0   # over this p95, cached pools live longer
CALM_P95_S = 1.5   # under this p95, they are asked for at every check again
ENDPOINT = "tokens_batch"


def register_cache_knob(knobs: KnobRegistry, cache: CacheLifetime, *, maximum_s: float) -> None:
    knobs.register(Knob(CACHE_KNOB, "s", 0.0, maximum_s, cache.fresh_s, cache.set_fresh_s,
                        help="a token checked again within this is judged on its cached pools (0: always ask)"))


class CacheLifetimeController:
    """Moves ``pool_cache_s`` between 0 and ``slow_lifetime_s`` with the market's p95 (see above)."""

    def __init__(self, knobs: KnobRegistry, *, slow_lifetime_s: float) -> None:
        self.knobs = knobs
        self.slow_lifetime_s = slow_lifetime_s
        self.slow = False

    def on_snapshot(self, snap: MonitoringSnapshot) -> None:
        self.observe(snap.value(m.API_LATENCY_P95_SECONDS, {"endpoint": ENDPOINT}))

    def observe(self, p95_s: float | None) -> float | None:
        """Take one p95 reading; returns the new lifetime when it changed, else None."""
        if p95_s is None or self.knobs.get(CACHE_KNOB) is None:
            return None
        if not self.slow and p95_s > SLOW_P95_S:
            self.slow = True
            reason = f"market p95 {p95_s:.1f} s, over {SLOW_P95_S:g} s: cached pools live longer"
            return self.knobs.adjust(CACHE_KNOB, self.slow_lifetime_s, controller=CONTROLLER, reason=reason)
        if self.slow and p95_s < CALM_P95_S:
            self.slow = False
            reason = f"market p95 {p95_s:.1f} s, under {CALM_P95_S:g} s: every check asks the market again"
            return self.knobs.adjust(CACHE_KNOB, 0.0, controller=CONTROLLER, reason=reason)
        return None
