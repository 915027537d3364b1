"""The leases on real Redis and real PostgreSQL, with manual clocks for "how long is a lease
still valid here": one leader at a time, fencing tokens that only grow, a hung leader that never
acts on its stale lease, Redis going away and coming back, and the LeaderGate starting and
stopping the singletons with the lease."""
from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from app.clock import ManualClock
from app.leader_gate import LeaderGate
from app.leadership import FENCE_KEY, LEADER_KEY, PgAdvisoryLease, RedisLease, asyncpg_dsn
from app.scheduler import JobSpec, Scheduler
from app.settings import Settings
from app.supervisor import LoopSpec, Supervisor
from tests.redis_outage import OwnRedis

TTL_S = 10.0
DEADLINE_S = 30.0   # generous: a loaded machine is slow, never wrong


def lease(client, owner: str, clock: ManualClock, ttl_s: float = TTL_S) -> RedisLease:
    return RedisLease(client, owner=owner, ttl_s=ttl_s, clock=clock)


async def until(predicate, what: str, deadline_s: float = DEADLINE_S):
    end = time.monotonic() + deadline_s
    while True:
        result = await predicate()
        if result:
            return result
        assert time.monotonic() < end, f"{what}: not within {deadline_s:.0f}s"
        await asyncio.sleep(0.05)


# --- Redis -----------------------------------------------------------------------------------

async def test_one_leader_at_a_time_and_a_stale_lease_is_never_trusted(redis_client):
    ca, cb = ManualClock(), ManualClock()
    a, b = lease(redis_client, "a", ca), lease(redis_client, "b", cb)
    assert await a.step() and a.fence == 1
    assert not await b.step() and not b.is_leader()
    ca.advance(TTL_S / 3)
    assert await a.step()                           # renewed
    ca.advance(TTL_S - 0.001)
    assert a.is_leader()                            # still within start of the last renewal + ttl
    ca.advance(0.002)
    assert not a.is_leader()                        # hung past its lease: no longer leads, before asking Redis
    assert not await a.step()                       # and it steps down rather than renew a stale lease
    assert a.losses == 1


async def test_a_standby_takes_over_when_the_key_runs_out_with_a_larger_fencing_token(redis_client):
    ca, cb = ManualClock(), ManualClock()
    a, b = lease(redis_client, "a", ca, ttl_s=0.3), lease(redis_client, "b", cb, ttl_s=0.3)
    assert await a.step()
    first = a.fence
    assert await until(b.step, "b takes the expired key")        # a stopped renewing (killed)
    assert b.fence is not None and first is not None and b.fence > first
    assert await a.step() is False                                # a's clock never moved: Redis says no
    assert not a.is_leader() and b.is_leader()
    await a.release()                                             # compare-and-delete: b's key stays
    assert (await redis_client.get(LEADER_KEY)) == b"b"
    await b.release()
    assert await redis_client.get(LEADER_KEY) is None
    assert await a.step() and a.fence is not None and a.fence > b.fence


async def test_redis_emptied_under_a_valid_leader_keeps_it_leading_and_fences_growing(redis_client):
    ca, cb = ManualClock(), ManualClock()
    a, b = lease(redis_client, "a", ca), lease(redis_client, "b", cb)
    await redis_client.set(FENCE_KEY, 41)
    assert await a.step() and a.fence == 42
    await redis_client.delete(LEADER_KEY, FENCE_KEY)        # a Redis restarted without its data
    assert await a.step() and a.is_leader()                 # the key is taken back by the valid leader
    assert not await b.step()
    assert int(await redis_client.get(FENCE_KEY)) >= 42     # the next term's token is still larger
    await a.release()
    assert await b.step() and b.fence is not None and b.fence > 42


async def test_redis_unreachable_the_leader_keeps_going_standbys_wait_and_all_rejoin():
    server = OwnRedis()
    server.start()
    ca, cb = ManualClock(), ManualClock()
    clients = [aioredis.from_url(server.url, socket_connect_timeout=1, socket_timeout=1) for _ in range(2)]
    a, b = lease(clients[0], "a", ca), lease(clients[1], "b", cb)
    try:
        assert await a.step() and not await b.step()
        server.stop()
        for _ in range(5):                  # the outage lasts several leases
            ca.advance(TTL_S / 2)
            cb.advance(TTL_S / 2)
            assert await a.step(), "the leader keeps going alone while Redis is away"
            assert not await b.step(), "a standby never takes over without Redis"
        assert not a.reachable and not b.reachable and a.last_error
        server.start()                      # back, empty
        assert not await b.step() and b.reachable      # the standby reaches it first, and lets the leader
        assert not await b.step()                      # ... take its key back for a lease
        assert await a.step() and a.reachable
        assert (await clients[0].get(LEADER_KEY)) == b"a"
        cb.advance(TTL_S)
        assert not await b.step()                      # then it is a standby as before
    finally:
        for c in clients:
            await c.aclose()
        server.stop()


async def test_a_hung_leader_that_wakes_during_a_redis_outage_steps_down():
    server = OwnRedis()
    server.start()
    clock = ManualClock()
    client = aioredis.from_url(server.url, socket_connect_timeout=1, socket_timeout=1)
    a = lease(client, "a", clock)
    try:
        assert await a.step()
        server.stop()
        clock.advance(TTL_S + 1)             # it slept through its lease, then finds Redis away
        assert not await a.step() and not a.is_leader()
    finally:
        await client.aclose()
        server.stop()


# --- PostgreSQL ------------------------------------------------------------------------------

async def test_pg_advisory_lock_one_leader_fencing_grows_and_release_hands_over(pg_url):
    dsn = asyncpg_dsn(pg_url)
    ca, cb = ManualClock(), ManualClock()
    a = PgAdvisoryLease(dsn, owner="a", ttl_s=TTL_S, timeout_s=5, clock=ca)
    b = PgAdvisoryLease(dsn, owner="b", ttl_s=TTL_S, timeout_s=5, clock=cb)
    try:
        assert await a.step() and not await b.step()
        ca.advance(TTL_S / 3)
        assert await a.step()                    # the heartbeat renews
        first = a.fence
        await a.release()                        # the session ends: the lock goes with it
        assert await b.step() and b.fence is not None and first is not None and b.fence > first
        assert not await a.step()
    finally:
        await a.release()
        await b.release()


async def test_pg_a_silent_holder_is_ended_and_replaced_and_steps_down_when_it_wakes(pg_url):
    dsn = asyncpg_dsn(pg_url)
    ca, cb = ManualClock(), ManualClock()
    ttl = 1.0   # real seconds of silence on the holder's session before a standby ends it
    a = PgAdvisoryLease(dsn, owner="a", ttl_s=ttl, timeout_s=5, clock=ca)
    b = PgAdvisoryLease(dsn, owner="b", ttl_s=ttl, timeout_s=5, clock=cb)
    try:
        assert await a.step()
        assert not await b.step()                       # a's session just spoke: not silent yet
        assert await until(b.step, "b ends the silent holder and takes the lock")   # in the same step
        assert b.evicted == 1 and b.acquisitions == 1
        ca.advance(ttl + 0.1)                            # a wakes up past its lease
        assert not a.is_leader()
        assert not await a.step() and b.is_leader()
    finally:
        await a.release()
        await b.release()


# --- the gate --------------------------------------------------------------------------------

async def test_the_gate_starts_singletons_on_election_and_stops_them_at_once_when_the_lease_is_stale(redis_client):
    clock = ManualClock()
    settings = Settings(_env_file=None)
    scheduler, supervisor = Scheduler(settings, clock), Supervisor(clock, watchdog_interval_s=None)
    gate = LeaderGate(lease(redis_client, "a", clock), scheduler, supervisor, renew_s=TTL_S / 3, clock=clock)
    events: list[str] = []
    running = asyncio.Event()

    async def singleton_loop() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            events.append("loop stopped")

    async def job() -> None:
        return None

    async def elected() -> None:
        events.append("elected")

    async def deposed() -> None:
        events.append("deposed")

    gate.add(jobs=[JobSpec("alerts.tick", job, interval_s=60)], loops=[LoopSpec("bot.polling", singleton_loop)],
             on_elected=elected, on_deposed=deposed)
    await supervisor.start()
    try:
        assert gate.role == "standby" and scheduler.job_ids() == []
        assert await gate.step() and gate.role == "leader"
        await asyncio.wait_for(running.wait(), DEADLINE_S)
        assert scheduler.job_ids() == ["alerts.tick"] and supervisor.loop_ids() == ["bot.polling"]
        clock.advance(TTL_S)                       # hung past the lease
        assert not gate.is_leader()                # every part asking the gate stops at once
        assert not await gate.step()
        assert events == ["elected", "loop stopped", "deposed"]
        assert scheduler.job_ids() == [] and supervisor.loop_ids() == []
        assert gate.depositions == 1
        running.clear()
        assert await gate.step()                   # the key is still its own in Redis: it leads again
        await asyncio.wait_for(running.wait(), DEADLINE_S)
        assert gate.elections == 2
        await gate.stop()
        assert await redis_client.get(LEADER_KEY) is None   # released for a standby
        assert supervisor.loop_ids() == []
    finally:
        await supervisor.stop()
        await scheduler.shutdown()


@pytest.mark.parametrize("lease_s, renew_s", [(10.0, 6.0)])
def test_renewal_must_be_at_most_half_the_lease(lease_s, renew_s):
    from app.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="LEADER_RENEW_S"):
        load_settings(_env_file=None, leader_lease_s=lease_s, leader_renew_s=renew_s)


async def test_a_leader_cut_off_from_redis_steps_down_when_the_registry_shows_another_leader():
    server = OwnRedis()
    server.start()
    clock = ManualClock()
    client = aioredis.from_url(server.url, socket_connect_timeout=1, socket_timeout=1)
    settings = Settings(_env_file=None)
    scheduler, supervisor = Scheduler(settings, clock), Supervisor(clock, watchdog_interval_s=None)
    gate = LeaderGate(lease(client, "a", clock), scheduler, supervisor, renew_s=TTL_S / 3, clock=clock)
    others_lead = [False]
    gate.rival = lambda: others_lead[0]
    try:
        assert await gate.step()
        server.stop()
        assert await gate.step()             # alone without Redis, nobody else leads: it carries on
        others_lead[0] = True                # another process reached Redis and leads (its registry row)
        assert not await gate.step() and gate.role == "standby"
        assert not await gate.step()         # and stays down until Redis answers it again
    finally:
        await gate.stop()
        server.stop()
