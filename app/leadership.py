"""Who is the leader: one process of several runs the singletons (Telegram polling, the alert
engine, the outbox sender, maintenance jobs); the others are hot standbys.

Three ``Leadership`` implementations, chosen by ``leadership_from_settings``:

* ``RedisLease`` (``REDIS_URL`` set): ``SET key owner NX PX ttl`` to acquire, a fencing token
  from ``INCR`` with every acquisition, renewal every ``LEADER_RENEW_S`` by compare-and-pexpire,
  release by compare-and-delete (all three are Lua scripts, so atomic);
* ``PgAdvisoryLease`` (no Redis, PostgreSQL): ``pg_try_advisory_lock`` on a dedicated connection
  kept open, a heartbeat query on it every ``LEADER_RENEW_S``; the fencing token comes from the
  sequence ``tokenwatch_leader_fence``. A holder whose connection has been silent for longer than
  the lease (a hung process keeps its socket and so its lock) is ended with
  ``pg_terminate_backend`` by the standby that wants the lock;
* ``SingleLeader`` (SQLite, one process): always the leader.

The rule that keeps a stale leader from acting: a holder counts itself the leader only until
the start of its last successful renewal + the lease (``LEADER_LEASE_S``), on the monotonic
clock. A process whose event loop hung past that (SIGSTOP, a blocking call) wakes up no longer
leader, whatever it believed, and must win the lock again::

    lease = RedisLease(redis_client, owner="host:123:ab12", ttl_s=10.0, clock=clock)
    await lease.step()          # acquire, or renew while held; True while this process leads
    lease.is_leader()           # False as soon as the lease could have run out
    lease.fence                 # the fencing token of the current acquisition (grows every time)
    await lease.release()       # a clean stop: a standby takes over at its next step

Redis unreachable (documented rule): the leader keeps going alone as long as the outage began
while its lease was still valid (it cannot renew, so it extends its own lease while it keeps
trying) and the process registry shows no other leader (``LeaderGate.rival``: a leader cut off
from a Redis the others still reach steps down when one of them takes over); standbys never
take over without Redis; when Redis answers again everybody rejoins (the
leader renews its key, or takes it back if Redis lost it). The ``redis_down`` alert fires
meanwhile. A leader that finds its lease already run out (it was hung) steps down even then.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any, Protocol

from app.clock import SYSTEM_CLOCK, Clock
from app.settings import Settings

log = logging.getLogger(__name__)

LEADER_KEY = "tokenwatch:leader"
FENCE_KEY = "tokenwatch:leader:fence"
# pg_try_advisory_lock(bigint) key: "tokw" (under 2**31, so pg_locks shows it as classid 0, objid KEY)
PG_LOCK_KEY = 0x746F6B77
PG_FENCE_SEQUENCE = "tokenwatch_leader_fence"
EVICT_WAIT_S = 2.0    # after ending a silent holder's session, how long to wait for its lock to go
EVICT_POLL_S = 0.05

# a key still naming this process (it stepped down after a hang, nobody took over) is taken again
_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local f = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3])
if f <= floor then f = floor + 1; redis.call('SET', KEYS[2], f) end
return f
"""
# 1: renewed; 2: the key was gone (Redis restarted empty) and is ours again; 0: someone else holds it
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]); return 1 end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local f = tonumber(redis.call('GET', KEYS[2]) or '0')
  if f < tonumber(ARGV[3]) then redis.call('SET', KEYS[2], ARGV[3]) end
  return 2
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def process_id() -> str:
    """This process's name in leases and the process registry: ``host:pid:random``."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Leadership(Protocol):
    """One way of electing the leader (see the module docstring)."""

    kind: str          # "redis", "postgres" or "single"
    owner: str         # this process (``process_id()``)
    fence: int | None  # the fencing token of the current (or last) acquisition
    reachable: bool    # False while the lock's backend (Redis, PostgreSQL) does not answer
    last_error: str | None

    def is_leader(self) -> bool:
        """True while this process holds a lease it can prove has not run out."""

    async def step(self) -> bool:
        """Renew (while held) or try to acquire; returns ``is_leader()``. Never raises."""

    async def release(self) -> None:
        """Give the lease up (a clean stop) and close the connection it used."""

    def abandon(self, why: str) -> None:
        """Stop counting itself the leader now (another process proved it leads); the next step
        may acquire again once the lock allows it."""


class _Lease:
    """What the leases share: the validity deadline on the monotonic clock."""

    kind = "?"

    def __init__(self, *, owner: str, ttl_s: float, clock: Clock) -> None:
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s!r}")
        self.owner = owner
        self.ttl_s = ttl_s
        self.clock = clock
        self.held = False
        self.fence: int | None = None
        self.valid_until = float("-inf")  # monotonic
        self.reachable = True
        self.last_error: str | None = None
        self.acquisitions = 0
        self.losses = 0

    def is_leader(self) -> bool:
        return self.held and self.clock.monotonic() < self.valid_until

    def _expired_while_held(self, now: float) -> bool:
        if self.held and now >= self.valid_until:
            self._lose("the lease ran out before it could be renewed (was the event loop blocked?)")
            return True
        return False

    def _won(self, fence: int, started: float) -> None:
        self.held, self.fence, self.valid_until = True, fence, started + self.ttl_s
        self.acquisitions += 1
        log.info("leadership (%s): %s is the leader, fencing token %d", self.kind, self.owner, fence)

    def _lose(self, why: str) -> None:
        if self.held:
            self.losses += 1
            log.warning("leadership (%s): %s is no longer the leader: %s", self.kind, self.owner, why)
        self.held, self.valid_until = False, float("-inf")

    def abandon(self, why: str) -> None:
        self._lose(why)

    def _unreachable(self, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"[:300]
        if self.reachable:
            log.warning("leadership (%s): the lock is unreachable (%s); %s", self.kind, error,
                        "the leader keeps going alone" if self.held else "this standby waits for it")
        self.reachable, self.last_error = False, error


class RedisLease(_Lease):
    """The Redis lease (module docstring). ``client`` is a ``redis.asyncio.Redis`` with socket
    timeouts shorter than the renewal interval (``redis_client_for_leases``)."""

    kind = "redis"

    def __init__(self, client: Any, *, owner: str, ttl_s: float, clock: Clock = SYSTEM_CLOCK,
                 key: str = LEADER_KEY, fence_key: str = FENCE_KEY, owns_client: bool = False) -> None:
        super().__init__(owner=owner, ttl_s=ttl_s, clock=clock)
        self.client = client
        self.key, self.fence_key = key, fence_key
        self.owns_client = owns_client
        self.hold_off_until = float("-inf")  # monotonic: no acquisition before (Redis just came back)
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl_s * 1000))

    async def step(self) -> bool:
        from redis.exceptions import RedisError

        started = self.clock.monotonic()
        if self._expired_while_held(started):
            return False   # step down first; the next step may win a new term (a new fencing token)
        try:
            if self.held:
                result = int(await self._renew(keys=[self.key, self.fence_key],
                                               args=[self.owner, self.ttl_ms, self.fence or 0]))
                if result == 0:
                    self._lose("another process holds the lock")
                else:
                    if result == 2:
                        log.warning("leadership (redis): the lock was gone (Redis restarted?); %s holds it again",
                                    self.owner)
                    self.valid_until = started + self.ttl_s
            elif not self.reachable:
                # Redis is back: the leader that went on alone takes its key back within one renewal;
                # a standby lets it, and tries to acquire only a lease later
                await self.client.ping()
                self.hold_off_until = started + self.ttl_s
            elif started >= self.hold_off_until:
                fence = int(await self._acquire(keys=[self.key, self.fence_key],
                                                args=[self.owner, self.ttl_ms, self.fence or 0]))
                if fence:
                    self._won(fence, started)
        except (RedisError, OSError) as exc:
            self._unreachable(exc)
            if self.held:  # the documented rule: the leader keeps going alone while Redis is away
                self.valid_until = max(self.valid_until, started + self.ttl_s)
            return self.is_leader()
        if not self.reachable:
            log.info("leadership (redis): the lock answers again (%s is %s)", self.owner,
                     "the leader" if self.held else "a standby")
        self.reachable, self.last_error = True, None
        return self.is_leader()

    async def release(self) -> None:
        from redis.exceptions import RedisError

        was = self.held
        self.held, self.valid_until = False, float("-inf")  # a release is no loss: counters unchanged
        try:
            if was:
                await self._release(keys=[self.key], args=[self.owner])
        except (RedisError, OSError) as exc:
            log.info("leadership (redis): could not release the lock (%s); it runs out by itself", exc)
        finally:
            if self.owns_client:
                await self.client.aclose()


def redis_client_for_leases(url: str, timeout_s: float) -> Any:
    """A Redis client whose calls give up after ``timeout_s`` (a renewal must never hang)."""
    import redis.asyncio as aioredis

    return aioredis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)


class PgAdvisoryLease(_Lease):
    """The PostgreSQL lease (module docstring): ``dsn`` is a plain asyncpg DSN (``postgresql://``)."""

    kind = "postgres"

    def __init__(self, dsn: str, *, owner: str, ttl_s: float, timeout_s: float, clock: Clock = SYSTEM_CLOCK,
                 lock_key: int = PG_LOCK_KEY) -> None:
        super().__init__(owner=owner, ttl_s=ttl_s, clock=clock)
        self.dsn = dsn
        self.timeout_s = timeout_s
        self.lock_key = lock_key
        self.conn: Any = None
        self.evicted = 0  # hung holders this process ended (pg_terminate_backend)

    async def step(self) -> bool:
        import asyncpg  # type: ignore[import-untyped]

        started = self.clock.monotonic()
        if self._expired_while_held(started):
            await self._close()  # the lock goes with the session
            return False
        try:
            if self.conn is None or self.conn.is_closed():
                self.held = False
                self.conn = await asyncpg.connect(self.dsn, timeout=self.timeout_s,
                                                  server_settings={"application_name": f"tokenwatch {self.owner}"[:63]})
            if self.held:
                await self.conn.fetchval("SELECT 1", timeout=self.timeout_s)  # the heartbeat
                self.valid_until = started + self.ttl_s
            elif await self._try_lock() or (await self._evict_silent_holder() and await self._try_lock(EVICT_WAIT_S)):
                await self.conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {PG_FENCE_SEQUENCE}", timeout=self.timeout_s)
                fence = await self.conn.fetchval(f"SELECT nextval('{PG_FENCE_SEQUENCE}')", timeout=self.timeout_s)
                self._won(int(fence), started)
        except (asyncpg.PostgresError, OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            self._unreachable(exc)
            self._lose("the connection holding the lock failed")
            await self._close()
            return False
        if not self.reachable:
            log.info("leadership (postgres): the database answers again")
        self.reachable, self.last_error = True, None
        return self.is_leader()

    async def _try_lock(self, wait_s: float = 0.0) -> bool:
        """``pg_try_advisory_lock``, tried again for up to ``wait_s`` (an ended holder's session
        takes a moment to go)."""
        loop = asyncio.get_running_loop()   # a real wait for a real session: not the injected clock
        deadline = loop.time() + wait_s
        while True:
            if await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key, timeout=self.timeout_s):
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(EVICT_POLL_S)

    async def _evict_silent_holder(self) -> bool:
        """End the session holding the lock if it has been silent for longer than the lease."""
        row = await self.conn.fetchrow(
            "SELECT a.pid, extract(epoch FROM clock_timestamp() - a.state_change) AS silent_s "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            self.lock_key, timeout=self.timeout_s)
        if row is None or row["silent_s"] is None or float(row["silent_s"]) <= self.ttl_s:
            return False
        log.warning("leadership (postgres): the leader's session (pid %s) has been silent for %.0fs, longer "
                    "than the %.0fs lease: ending it so a live process can lead", row["pid"], float(row["silent_s"]),
                    self.ttl_s)
        await self.conn.fetchval("SELECT pg_terminate_backend($1)", row["pid"], timeout=self.timeout_s)
        self.evicted += 1
        return True

    async def _close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=self.timeout_s)
            except Exception:  # noqa: BLE001 - a broken connection is dropped either way
                conn.terminate()

    async def release(self) -> None:
        self.held, self.valid_until = False, float("-inf")
        await self._close()  # closing the session releases the advisory lock


class SingleLeader:
    """One process (SQLite, or nothing to share): always the leader, fencing token 1."""

    kind = "single"

    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner or process_id()
        self.fence: int | None = 1
        self.reachable = True
        self.last_error: str | None = None
        self.acquisitions = 1
        self.losses = 0

    def is_leader(self) -> bool:
        return True

    async def step(self) -> bool:
        return True

    async def release(self) -> None:
        return None

    def abandon(self, why: str) -> None:
        return None


def asyncpg_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://u@h/db`` -> ``postgresql://u@h/db`` (what asyncpg.connect takes)."""
    return "postgresql://" + database_url.split("://", 1)[1]


def leadership_from_settings(settings: Settings, owner: str, clock: Clock = SYSTEM_CLOCK) -> Leadership:
    """Redis when ``REDIS_URL`` is set, else a PostgreSQL advisory lock, else (SQLite) one leader."""
    timeout = settings.leader_renew_s
    if settings.redis_url:
        return RedisLease(redis_client_for_leases(settings.redis_url, timeout), owner=owner,
                          ttl_s=settings.leader_lease_s, clock=clock, owns_client=True)
    if not settings.is_sqlite:
        return PgAdvisoryLease(asyncpg_dsn(settings.database_url), owner=owner, ttl_s=settings.leader_lease_s,
                               timeout_s=timeout, clock=clock)
    return SingleLeader(owner)
