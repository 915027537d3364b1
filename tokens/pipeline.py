"""The token pipeline, assembled: HTTP session, limiters, client, discovery, processor, jobs.

    pipeline = Pipeline(settings, db, clock, dexscreener_base_url=url, pumpportal_ws_url=ws_url)
    await pipeline.start()                 # opens the session, builds the parts
    scheduler.add_all(pipeline.jobs())     # pipeline.process / .profiles / .archive / .retention
    supervisor.add_all(pipeline.loops())   # pipeline.discovery_ws: the websocket listener
    ...
    await pipeline.stop()

What monitoring reads: ``api_stats`` (``ApiStats``), ``stage_stats`` (``StageStats``),
``counters`` (``PipelineCounters``: garbage, duplicates, malformed_pairs, discovered, ...),
``listener.state``, ``limiter``, ``breakers`` (``BreakerBoard``: the circuit breaker of each
endpoint, on ``clock``). Request pacing always runs on real time (the limiters use
the system clock even when ``clock`` is a ``ManualClock``), as does the processor's run budget. What recovery turns: ``processor`` (``ConcurrencyControl``,
``BatchSizeControl``) and ``client`` (``TimeoutControl``).

A restart is a new ``Pipeline`` on the same database: the due queue is ``next_check_at``,
discovery is idempotent, so nothing is checked twice at once or inserted twice.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import aiohttp

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from app.memory import RECLAIMERS
from app.settings import Settings
from tokens.api_stats import ApiStats
from tokens.breaker import BreakerBoard, BreakerPolicy
from tokens.counters import PipelineCounters
from tokens.dexscreener import DexScreenerClient, EndpointTimeouts
from tokens.discovery_profiles import ProfilesPoller
from tokens.discovery_ws import MigrationListener
from tokens.intake import TokenIntake
from tokens.pool_cache import PoolCache
from tokens.processor import Processor
from tokens.ratelimit import Limiter, RateLimiter, Sleep
from tokens.shared_limit import SharedRateLimiter, limiter_redis, shared_api_limiter
from tokens.stage_stats import StageStats

if TYPE_CHECKING:  # pragma: no cover
    from app.scheduler import JobSpec
    from app.supervisor import LoopSpec

log = logging.getLogger(__name__)

PROFILES_HEADROOM = 0.9
API_BURST = 3  # requests that may go early after an idle gap; rate + burst <= the limit (api_limiter)
API_BURST_S = 0.2  # at high limits the burst covers this much of the pace (the gap between two processor runs)
ARCHIVE_INTERVAL_S = 60.0
POOL_CACHE_NAME = "tokens.pool_cache"  # its name among the memory reclaimers
RETENTION_INTERVAL_S = 3600.0


def api_burst(settings: Settings) -> int:
    """``API_BURST`` or ``API_BURST_S`` of the pace, whichever is more (local and shared limiters alike)."""
    return max(API_BURST, round(settings.api_rate_limit_per_min / 60.0 * API_BURST_S))


def api_limiter(settings: Settings, clock: Clock = SYSTEM_CLOCK, sleep: Sleep = asyncio.sleep) -> RateLimiter:
    """The DexScreener pair-endpoint limiter: ``API_RATE_LIMIT_PER_MIN x API_RATE_HEADROOM``, but
    never more than the limit in any 60 s window, burst included (even at headroom 1.0).

        api_limiter(Settings(api_rate_headroom=1.0)).rate_per_min   # 297.0 (297 + burst 3 = 300)
        api_limiter(Settings(api_rate_limit_per_min=3000)).burst     # 10: 0.2 s of a 2,910/min pace

    The burst is ``API_BURST`` or ``API_BURST_S`` of the pace, whichever is more, so the short gap
    between two processor runs costs no requests at a paid tier's limit either.
    """
    return RateLimiter(settings.effective_api_rate_per_min, burst=api_burst(settings), clock=clock, sleep=sleep,
                       window_limit=settings.api_rate_limit_per_min)


def profiles_limiter(settings: Settings, clock: Clock = SYSTEM_CLOCK, sleep: Sleep = asyncio.sleep) -> RateLimiter:
    """The ``/token-profiles`` limiter: 90 % of its own limit, never over it in any 60 s window."""
    return RateLimiter(settings.profiles_rate_limit_per_min * PROFILES_HEADROOM, burst=1, clock=clock,
                       sleep=sleep, window_limit=settings.profiles_rate_limit_per_min)


class Pipeline:
    """Owns every part of the token pipeline (see module docstring).

        async with Pipeline(settings, db, clock, url, ws_url) as pipeline:
            await pipeline.processor.run_once()
    """

    def __init__(self, settings: Settings, db: Database, clock: Clock = SYSTEM_CLOCK,
                 dexscreener_base_url: str | None = None, pumpportal_ws_url: str | None = None, *,
                 run_budget_s: float | None = None, listen: bool = True) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.dexscreener_base_url = dexscreener_base_url or settings.dexscreener_base_url
        self.pumpportal_ws_url = pumpportal_ws_url or settings.pumpportal_ws_url
        self.listen = listen
        self.api_stats = ApiStats(clock=clock)
        self.stage_stats = StageStats(clock)
        self.counters = PipelineCounters()
        # REDIS_URL set: the pair-endpoint limit is shared by every process behind EGRESS_ID
        # (tokens/shared_limit.py); without Redis, the local limiter (the embedded default).
        self.limiter_redis = limiter_redis(settings.redis_url) if settings.redis_url else None
        self.limiter: Limiter = (
            api_limiter(settings) if self.limiter_redis is None
            else shared_api_limiter(settings, self.limiter_redis, burst=api_burst(settings)))
        self.profiles_limiter = profiles_limiter(settings)
        self.timeouts = EndpointTimeouts(settings.api_timeout_s)
        self.breakers = BreakerBoard(BreakerPolicy.from_settings(settings), clock)
        self.intake = TokenIntake(db, clock, self.counters, self.stage_stats)
        self._run_budget_s = run_budget_s
        self.session: aiohttp.ClientSession | None = None
        self.client: DexScreenerClient | None = None
        self.pool_cache: PoolCache | None = None
        self.processor: Processor | None = None
        self.listener: MigrationListener | None = None
        self.profiles: ProfilesPoller | None = None
        self.started = False

    async def __aenter__(self) -> "Pipeline":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _build(self) -> None:
        connector = aiohttp.TCPConnector(limit=64, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": "tokenwatch/0.1"})
        # pools served stale while the market is slow or failing (RFC 5861); a memory cleanup may drop them
        cache = self.pool_cache = PoolCache(stale_if_error_s=self.settings.stale_data_s)
        RECLAIMERS.register(POOL_CACHE_NAME, cache.clear, size=lambda: len(cache), priority=70)
        self.client = DexScreenerClient(self.dexscreener_base_url, self.session, self.limiter, self.api_stats,
                                        self.timeouts, self.clock, profiles_limiter=self.profiles_limiter,
                                        breakers=self.breakers, cache=cache)
        self.processor = Processor(self.db, self.client, self.settings, self.clock, stages=self.stage_stats,
                                   counters=self.counters, run_budget_s=self._run_budget_s,
                                   lease_s=self.settings.check_lease_s)
        self.listener = MigrationListener(self.pumpportal_ws_url, self.session, self.intake,
                                          min_backoff_s=self.settings.ws_reconnect_min_s,
                                          max_backoff_s=self.settings.ws_reconnect_max_s, clock=self.clock)
        self.profiles = ProfilesPoller(self.client, self.intake, self.clock,
                                       interval_s=self.settings.profiles_poll_interval_s)

    async def start(self) -> None:
        """Open the HTTP session and build the parts (idempotent). The websocket listener runs
        under the supervisor (``loops()``), not here."""
        if self.started:
            return
        self._build()
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        RECLAIMERS.unregister(POOL_CACHE_NAME)
        if self.listener is not None:
            await self.listener.stop()
        if self.processor is not None:
            await self.processor.close()
        if self.session is not None:
            await self.session.close()
            await asyncio.sleep(0)  # let the connector close its transports
        if isinstance(self.limiter, SharedRateLimiter):
            await self.limiter.leave()
        if self.limiter_redis is not None:
            await self.limiter_redis.aclose()

    # --- jobs ---------------------------------------------------------------------------
    async def process(self) -> None:
        assert self.processor is not None, "Pipeline.start() first"
        await self.processor.run_once()

    async def poll_profiles(self) -> None:
        assert self.profiles is not None and self.listener is not None, "Pipeline.start() first"
        await self.listener.flush_pending()
        await self.profiles.poll_once()

    async def archive(self) -> None:
        assert self.processor is not None, "Pipeline.start() first"
        await self.processor.archive_expired()

    async def retention(self) -> None:
        assert self.processor is not None, "Pipeline.start() first"
        await self.processor.retention()

    def jobs(self) -> list["JobSpec"]:
        """The scheduler jobs of the pipeline, with stable ids."""
        from app.scheduler import JobSpec

        s = self.settings
        return [
            JobSpec("pipeline.process", self.process, interval_s=s.process_interval_s,
                    budget_s=max(30.0, s.api_timeout_s * 4)),
            JobSpec("pipeline.profiles", self.poll_profiles, interval_s=s.profiles_poll_interval_s,
                    budget_s=max(30.0, s.api_timeout_s * 4)),
            JobSpec("pipeline.archive", self.archive, interval_s=ARCHIVE_INTERVAL_S, budget_s=60.0,
                    tunable=(10.0, 3600.0)),
            JobSpec("pipeline.retention", self.retention, interval_s=RETENTION_INTERVAL_S, budget_s=300.0,
                    tunable=(60.0, 86400.0)),
        ]

    def loops(self) -> list["LoopSpec"]:
        """The supervised loops of the pipeline: the PumpPortal listener when ``listen``, and the
        shared limiter's membership heartbeat when ``REDIS_URL`` is set.

        The listener reconnects by itself with its own backoff and never returns; the
        supervisor restarts it if it ever ends and shows it in /jobs. No heartbeat budget: a
        quiet websocket (no migrations for a while) is not a hung one (aiohttp's ping/pong
        notices a dead connection)."""
        from app.supervisor import LoopSpec

        assert self.listener is not None, "Pipeline.start() first"
        loops: list[LoopSpec] = []
        if isinstance(self.limiter, SharedRateLimiter):  # membership of the egress (the fallback share)
            loops.append(LoopSpec("pipeline.shared_limit", self.limiter.run))
        if self.listen:
            loops.append(LoopSpec("pipeline.discovery_ws", self.listener.run))
        return loops

    def snapshot(self) -> dict:
        """A JSON-friendly summary for /status and debugging."""
        return {
            "counters": self.counters.as_dict(),
            "listener": None if self.listener is None else {
                "state": self.listener.state, "connects": self.listener.connects,
                "disconnects": self.listener.disconnects, "pending": len(self.listener.pending)},
            "limiter": {"rate_per_min": self.limiter.rate_per_min, "pauses": self.limiter.pauses,
                        **({"shared": self.limiter.snapshot()} if isinstance(self.limiter, SharedRateLimiter)
                           else {})},
            "breakers": self.breakers.states(),
            "processor": None if self.processor is None else {
                "concurrency": self.processor.limit(), "batch_size": self.processor.batch_size(),
                "last_run_checked": self.processor.last_run_checked,
                "batches_in_flight": self.processor.batches_in_flight,
                "max_batches_in_flight": self.processor.max_batches_in_flight,
                "backlogged": self.processor.backlogged, "cold_factor": self.processor.cold_factor(),
                "batches_overrun": self.processor.batches_overrun},
        }
