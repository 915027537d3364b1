"""The API rate limit shared through Redis by every process behind one egress address.

DexScreener limits each client IP address, so N tokenwatch processes behind one address must
together stay under one limit. ``SharedRateLimiter`` keeps the pacing of
``tokens.ratelimit.RateLimiter`` (GCRA / virtual scheduling: evenly spaced slots, a small burst,
a Retry-After pause) but holds its state in Redis, one key set per egress::

    limiter = SharedRateLimiter(redis, egress="office-nat", rate_per_min=297, burst=3, window_limit=300)
    await limiter.acquire()       # returns when this request may go, in every process's reckoning
    limiter.pause_for(30)         # a 429's Retry-After: every process behind the address pauses
    supervisor.add(LoopSpec("pipeline.shared_limit", limiter.run))   # membership heartbeat

``shared_api_limiter(settings, redis)`` builds it as the pipeline does (``REDIS_URL`` set).

Keys (``tokenwatch:limit:<EGRESS_ID>:...``): ``tat`` (the theoretical arrival time of the next
request), ``pause`` (pause-until of the last Retry-After), ``members`` (a sorted set of live
processes, scored by their last heartbeat). Two Lua scripts change them atomically, so two
processes never take one slot: ``reserve`` takes the next slot (like ``RateLimiter._reserve``)
and answers how long to wait for it; ``pause`` moves pause-until and the next slot behind a
Retry-After. Time is Redis's own (``TIME``) so hosts with skewed clocks agree; tests inject a
clock instead (``clock=ManualClock``), whose ``time()`` the scripts then use. Any 60 s window
holds at most ``floor(rate) + burst`` requests from all processes together, the rate capped so
that this stays under ``window_limit`` (the same caps as ``RateLimiter``). Each process passes the
newest ``tat`` it was answered as a floor, so a Redis that restarts empty (or is flushed) lets no
fresh burst through while the processes live.

Why not the ``limits`` library (evaluated first; it has a Redis moving window and an async API):
its strategies answer "allowed now or not" (``hit``/``test``) and never reserve a future slot, so
a waiting caller polls and all waiters go the moment the window frees: a moving window of 300/min
lets 300 requests out in one burst, which is what our smooth pacing avoids. It has no shared
pause for Retry-After, and its clock cannot be injected. The GCRA here is one key and ~15 lines of
Lua.

Redis unreachable: each process falls back to its share of the limit, a local ``RateLimiter`` at
``rate / members`` (members: the live processes of the egress at the last heartbeat, or
``CLUSTER_SIZE_HINT`` if Redis was never reached), and tries Redis again every ``retry_s``; it
rejoins as soon as Redis answers. Changes of state are logged once each. While some processes
have rejoined and others are still on their share (at most ``retry_s``), the total can exceed the
limit by those processes' shares for those seconds; a process cut off from a Redis the others still
reach takes its share on top of the shared limit (a partition, not an outage: ``EGRESS_ID`` per
address keeps the damage to that address).

``rate_per_min`` is this process's fair share (the egress rate / live members): what the
processor's backlog estimate, the concurrency ceiling (Little's law) and the cross-check budget
should size themselves by. ``total_rate_per_min`` is the egress's rate.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.clock import SYSTEM_CLOCK, Clock
from tokens.ratelimit import RateLimiter, Sleep, SlotWaiter

log = logging.getLogger(__name__)

KEY_PREFIX = "tokenwatch:limit"
MEMBER_HEARTBEAT_S = 5.0     # each process refreshes its membership this often
MEMBER_TTL_S = 15.0          # a member silent this long no longer counts (3 heartbeats)
RETRY_S = 5.0                # in fallback, try Redis again this often (the heartbeat also tries)
REDIS_TIMEOUT_S = 0.5        # a Redis call slower than this counts as Redis unreachable
UNREACHABLE = (RedisError, OSError, asyncio.TimeoutError)

# KEYS: tat, pause. ARGV: now ('' = Redis TIME), interval_s, burst, floor (the last tat this process saw,
# '' = none; at most 60 s ahead): a tat lost with a Redis restart or flush lets no fresh burst through.
# Returns {wait_s, pause_left_s, next_free_s, new_tat} as strings (Lua numbers would be truncated to integers).
RESERVE_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, math.min(tonumber(ARGV[4]) or 0, now + 60))
local paused = tonumber(redis.call('GET', KEYS[2])) or 0
local start = math.max(now, tat - (burst - 1) * interval, paused)
local new_tat = math.max(tat, start) + interval
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now + 60) * 1000))
return {string.format('%.6f', start - now), string.format('%.6f', math.max(0, paused - now)),
        string.format('%.6f', math.max(0, new_tat - (burst - 1) * interval - now)), string.format('%.6f', new_tat)}
"""

# KEYS: tat, pause. ARGV: now ('' = Redis TIME), seconds. Returns pause-until minus now.
PAUSE_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local untl = now + tonumber(ARGV[2])
local paused = tonumber(redis.call('GET', KEYS[2])) or 0
if untl > paused then
  redis.call('SET', KEYS[2], string.format('%.6f', untl), 'PX', math.ceil((untl - now + 60) * 1000))
  paused = untl
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if paused > tat then
  redis.call('SET', KEYS[1], string.format('%.6f', paused), 'PX', math.ceil((paused - now + 60) * 1000))
end
return string.format('%.6f', paused - now)
"""

# KEYS: members. ARGV: now ('' = Redis TIME), member, ttl_s. Returns the live member count.
HEARTBEAT_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 2000))
return redis.call('ZCARD', KEYS[1])
"""

SHARED, FALLBACK = "shared", "fallback"


def member_id() -> str:
    """This process in the member set: ``host:pid:random`` (a restarted process is a new member)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class SharedRateLimiter(SlotWaiter):
    """``RateLimiter``'s interface (``acquire``, ``pause_for``, ``delay``, ``rate_per_min``, ``burst``,
    ``set_rate_per_min``, ``pauses``...), paced in Redis for the whole egress (module docstring).

        limiter = SharedRateLimiter(redis, egress="default", rate_per_min=297, burst=3, window_limit=300)
        async with limiter:
            await session.get(url)
    """

    def __init__(self, redis: Redis, *, egress: str, rate_per_min: float, burst: int = 2,
                 window_limit: float | None = None, clock: Clock | None = None, sleep: Sleep = asyncio.sleep,
                 cluster_size_hint: int = 1, member: str | None = None, retry_s: float = RETRY_S,
                 member_ttl_s: float = MEMBER_TTL_S, heartbeat_s: float = MEMBER_HEARTBEAT_S) -> None:
        self.redis = redis
        self.egress = egress
        self.window_limit = window_limit
        # the caps (rate <= window_limit - burst) exactly as the local limiter computes them
        self._caps = RateLimiter(rate_per_min, burst=burst, window_limit=window_limit)
        self._shared_clock = clock          # None: Redis TIME
        self._clock: Clock = clock or SYSTEM_CLOCK
        self._sleep = sleep
        self.cluster_size_hint = max(1, int(cluster_size_hint))
        self.member = member or member_id()
        self.retry_s = retry_s
        self.member_ttl_s = member_ttl_s
        self.heartbeat_s = heartbeat_s
        prefix = f"{KEY_PREFIX}:{egress}"
        self.keys = (f"{prefix}:tat", f"{prefix}:pause")
        self.members_key = f"{prefix}:members"
        self._reserve = redis.register_script(RESERVE_LUA)
        self._pause = redis.register_script(PAUSE_LUA)
        self._heartbeat = redis.register_script(HEARTBEAT_LUA)
        self.state = SHARED
        self.members: int | None = None     # live processes of this egress at the last heartbeat
        self._retry_at = 0.0
        self._paused_until = 0.0            # local monotonic
        self._next_free = 0.0               # local monotonic estimate of the next free slot (for delay())
        self._last_tat: str | bytes = ""    # the newest tat Redis answered (the scripts' time base)
        self._fallback: RateLimiter | None = None
        self._fallback_key: tuple[int, float] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.acquired = 0
        self.waited_s = 0.0
        self.pauses = 0
        self.shared_pauses = 0              # pauses learnt from another process's 429
        self.state_changes = 0

    # --- what the pipeline reads -------------------------------------------------------------
    @property
    def total_rate_per_min(self) -> float:
        """The egress's rate, shared by every process behind the address."""
        return self._caps.rate_per_min

    @property
    def share(self) -> int:
        """How many processes the limit is split between: live members, else the hint."""
        return max(1, self.members if self.members is not None else self.cluster_size_hint)

    @property
    def rate_per_min(self) -> float:
        """This process's fair share of the egress rate (see the module docstring)."""
        return self.total_rate_per_min / self.share

    @property
    def burst(self) -> int:
        return self._caps.burst

    @property
    def _interval(self) -> float:
        return 60.0 / self._caps.rate_per_min

    def set_rate_per_min(self, rate_per_min: float) -> None:
        """Change the egress's pace (capped so that ``window_limit`` still holds)."""
        self._caps.set_rate_per_min(rate_per_min)

    def _now_arg(self) -> str:
        return "" if self._shared_clock is None else repr(self._shared_clock.time())

    # --- states ------------------------------------------------------------------------------
    def _lost(self, exc: BaseException) -> None:
        self._retry_at = self._clock.monotonic() + self.retry_s
        if self.state != FALLBACK:
            self.state = FALLBACK
            self.state_changes += 1
            log.warning("shared API limit: Redis unreachable (%s: %s); this process falls back to its share, "
                        "%.0f requests/min (1 of %d processes behind egress %r), and retries Redis every %.0fs",
                        type(exc).__name__, str(exc)[:200], self.rate_per_min, self.share, self.egress, self.retry_s)

    def _joined(self) -> None:
        if self.state != SHARED:
            self.state = SHARED
            self.state_changes += 1
            log.warning("shared API limit: Redis reachable again; sharing egress %r's %.0f requests/min with the "
                        "other processes", self.egress, self.total_rate_per_min)

    def fallback_limiter(self) -> RateLimiter:
        """The local limiter at this process's share (rebuilt when the share or the rate changes)."""
        key = (self.share, self.total_rate_per_min)
        if self._fallback is None or self._fallback_key != key:
            n, rate = key
            window = None if self.window_limit is None else max(1.0, self.window_limit / n)
            limiter = RateLimiter(rate / n, burst=self._caps.burst, clock=self._clock, sleep=self._sleep,
                                  window_limit=window)
            if self._paused_until > self._clock.monotonic():
                limiter.pause_until(self._paused_until)
            self._fallback, self._fallback_key = limiter, key
        return self._fallback

    # --- the limiter -------------------------------------------------------------------------
    def pause_until(self, monotonic_t: float) -> None:
        """Hold every request of every process until ``monotonic_t`` (this process's monotonic clock)."""
        self.pause_for(monotonic_t - self._clock.monotonic())

    def pause_for(self, seconds: float) -> None:
        """Hold every request behind this egress for ``seconds`` (a 429's Retry-After): at once here,
        and in the other processes as soon as Redis has it (their next slot comes after it)."""
        seconds = max(0.0, seconds)
        until = self._clock.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1
        if self._fallback is not None:
            self._fallback.pause_until(until)
        if self.state == SHARED:
            task = asyncio.get_running_loop().create_task(self._share_pause(seconds))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait until the pauses this process set have reached Redis."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _share_pause(self, seconds: float) -> None:
        try:
            await self._pause(keys=list(self.keys), args=[self._now_arg(), repr(seconds)])
        except UNREACHABLE as exc:
            self._lost(exc)

    def delay(self) -> float:
        """Seconds a request made now would wait, as far as this process knows (without reserving)."""
        if self.state == FALLBACK:
            return self.fallback_limiter().delay()
        now = self._clock.monotonic()
        return max(0.0, self._next_free - now, self._paused_until - now)

    async def acquire(self) -> None:
        while True:
            if self.state == FALLBACK and self._clock.monotonic() < self._retry_at:
                await self.fallback_limiter().acquire()
                self.acquired += 1
                return
            try:
                wait_s, pause_left, next_free, self._last_tat = await self._reserve(
                    keys=list(self.keys), args=[self._now_arg(), repr(self._interval), self._caps.burst, self._last_tat])
            except UNREACHABLE as exc:
                self._lost(exc)
                continue
            self._joined()
            now = self._clock.monotonic()
            wait, left = float(wait_s), float(pause_left)
            self._next_free = now + float(next_free)
            if left > 0 and now + left > self._paused_until + 1e-3:   # another process's 429
                self._paused_until = now + left
                self.shared_pauses += 1
            if await self._wait_for_slot(wait):
                return

    # --- membership --------------------------------------------------------------------------
    async def heartbeat(self) -> int | None:
        """Refresh this process's membership; returns the live members (None: Redis unreachable).
        A heartbeat that reaches Redis ends a fallback at once."""
        try:
            count = int(await self._heartbeat(keys=[self.members_key],
                                              args=[self._now_arg(), self.member, repr(self.member_ttl_s)]))
        except UNREACHABLE as exc:
            self._lost(exc)
            return None
        if count != self.members:
            log.info("shared API limit: %d process(es) behind egress %r, %.0f requests/min each",
                     count, self.egress, self.total_rate_per_min / max(1, count))
        self.members = count
        self._joined()
        return count

    async def run(self) -> None:
        """The membership loop (a supervised loop): heartbeat every ``heartbeat_s``."""
        while True:
            await self.heartbeat()
            await asyncio.sleep(self.heartbeat_s)

    async def leave(self) -> None:
        """Leave the member set (on a clean stop), so the others' shares grow at once."""
        for task in list(self._tasks):
            task.cancel()
        try:
            await self.redis.zrem(self.members_key, self.member)
        except UNREACHABLE:
            pass

    def snapshot(self) -> dict:
        return {"state": self.state, "egress": self.egress, "members": self.members, "share": self.share,
                "total_rate_per_min": self.total_rate_per_min, "rate_per_min": self.rate_per_min,
                "pauses": self.pauses, "shared_pauses": self.shared_pauses}


def shared_api_limiter(settings: Any, redis: Redis, *, clock: Clock | None = None,
                       sleep: Sleep = asyncio.sleep, burst: int) -> SharedRateLimiter:
    """The DexScreener pair-endpoint limiter shared by every process behind ``EGRESS_ID``:
    ``API_RATE_LIMIT_PER_MIN x API_RATE_HEADROOM`` for the whole egress, never over the limit in
    any 60 s window (burst included), whatever the number of processes."""
    return SharedRateLimiter(redis, egress=settings.egress_id, rate_per_min=settings.effective_api_rate_per_min,
                             burst=burst, window_limit=settings.api_rate_limit_per_min, clock=clock, sleep=sleep,
                             cluster_size_hint=settings.cluster_size_hint)


def limiter_redis(url: str) -> Redis:
    """A Redis client for the limiter: short timeouts and no retries, so an unreachable Redis
    means the fallback share within ``REDIS_TIMEOUT_S`` instead of a stalled request."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S,
                          retry=Retry(NoBackoff(), 0), retry_on_timeout=False)


__all__ = ["SharedRateLimiter", "shared_api_limiter", "limiter_redis", "SHARED", "FALLBACK"]
