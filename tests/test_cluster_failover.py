"""Two real ``tokenwatch run`` processes on one PostgreSQL and a Redis of the test's own, talking to
the fake Bot API server over HTTP: one leads (polls Telegram, sends), the other stands by.

In order, on the same two processes: Redis stops and starts again (the leader carries on alone,
the standby does not take over, both rejoin); the leader hangs (SIGSTOP) and the standby takes
over, and when the old leader wakes (SIGCONT) it steps down; the leader is killed (SIGKILL) and
the other takes over. Throughout, every command is answered exactly once: none lost, none twice.
The lease here is 5 s (renewal 1.5 s) to keep the file short; the takeover times are printed
(``bench/leader_failover.py`` measures them with the default 10 s lease).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest
import pytest_asyncio

from simulator.cluster import Cluster, Member
from simulator.telegram_api import FakeTelegram
from tests.redis_outage import OwnRedis

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

TOKEN = "123456:TEST-cluster"
ADMIN = 111
OPERATOR = 112      # asks /status in a chat of their own (ADMIN's chat counts the /start replies)
ALERT_CHAT = -100500
LEASE_S, RENEW_S = 5.0, 1.5
START_S = 120.0     # generous: two services importing everything on a loaded machine
WAIT_S = 60.0


@dataclass
class World:
    fake: FakeTelegram
    redis: OwnRedis
    cluster: Cluster
    asked: int = 0

    def replies(self) -> int:
        return len(self.fake.sent(ADMIN))

    async def ask(self, n: int) -> None:
        """Send ``n`` commands now (answered later, by whoever leads)."""
        for _ in range(n):
            self.fake.user_sends(ADMIN, ADMIN, "/start")
            self.asked += 1

    async def all_answered_once(self, what: str) -> float:
        """Wait until every command asked so far has its reply; then no reply more (a duplicate
        would come from the other process within a renewal). Returns when."""
        await self.cluster.wait_for(lambda: _ready(self.replies() >= self.asked), WAIT_S,
                                    f"{what}: {self.asked} commands answered (got {self.replies()})")
        answered = time.monotonic()
        await asyncio.sleep(RENEW_S)
        assert self.replies() == self.asked, f"{what}: {self.replies()} replies to {self.asked} commands"
        return answered


async def _ready(value: bool) -> bool:
    return value


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory, pg_template):
    from tests.conftest import PG_BASE_URL, _pg_admin
    import uuid

    name = f"tw_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    fake = FakeTelegram(enforce_limits=False)
    await fake.start()
    fake.add_bot(TOKEN, "tokenwatch_cluster_bot")
    fake.add_chat(ADMIN, "private")
    fake.add_chat(OPERATOR, "private")
    fake.add_chat(ALERT_CHAT, "supergroup", title="alerts", members=[ADMIN])
    redis = OwnRedis()
    redis.start()
    env = {"REDIS_URL": redis.url, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": fake.base_url,
           "TELEGRAM_ADMIN_IDS": f"{ADMIN},{OPERATOR}", "TELEGRAM_ALERT_CHAT_ID": str(ALERT_CHAT),
           "COMMAND_RATE_LIMIT_PER_MIN": "1000", "LEADER_LEASE_S": str(LEASE_S), "LEADER_RENEW_S": str(RENEW_S),
           "PROCESS_HEARTBEAT_S": "1", "GRAPH_RENDER_PROCESSES": "1", "SIM_MIGRATION_INTERVAL_S": "5"}
    cluster = Cluster(database_url=f"{PG_BASE_URL}/{name}", workdir=tmp_path_factory.mktemp("cluster"), env=env)
    try:
        await asyncio.gather(cluster.start("a"), cluster.start("b"))
        await cluster.wait_for(lambda: _two_up(cluster), START_S, "both processes up (one leader, one standby)")
        w = World(fake, redis, cluster)
        await w.ask(3)
        await w.all_answered_once("before any fault")
        yield w
    finally:
        await cluster.close()
        redis.stop()
        await fake.stop()
        try:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception:  # noqa: BLE001
            pass


async def _two_up(cluster: Cluster) -> bool:
    return sorted((await cluster.roles()).values()) == ["leader", "standby"]


async def leader_and_standby(cluster: Cluster) -> tuple[Member, Member]:
    leader = await cluster.wait_for_leader(WAIT_S)
    others = [m for m in cluster.members if m is not leader and m.proc.returncode is None]
    assert len(others) == 1
    return leader, others[0]


async def test_redis_stops_and_starts_again_and_the_service_carries_on(world: World):
    import redis.asyncio as aioredis

    cluster = world.cluster
    leader, standby = await leader_and_standby(cluster)
    world.redis.stop()
    try:
        await world.ask(3)
        await world.all_answered_once("Redis down: the leader keeps going alone")
        roles = await cluster.roles()
        assert roles.get(leader.pid) == "leader" and roles.get(standby.pid) == "standby", roles
        await asyncio.sleep(LEASE_S)      # longer than a lease without Redis: still no takeover
        roles = await cluster.roles()
        assert roles.get(leader.pid) == "leader" and roles.get(standby.pid) == "standby", roles
    finally:
        world.redis.start()               # back, empty
    client = aioredis.from_url(world.redis.url)
    try:
        holder = [r["id"] for r in await cluster.rows() if r["pid"] == leader.pid][0]

        async def key_back() -> bool:
            return (await client.get("tokenwatch:leader")) == holder.encode()

        await cluster.wait_for(key_back, WAIT_S, "the leader holds its Redis key again")
    finally:
        await client.aclose()
    await world.ask(3)
    await world.all_answered_once("after Redis came back")
    assert (await cluster.roles()).get(leader.pid) == "leader"


async def test_a_hung_leader_is_replaced_and_steps_down_when_it_wakes(world: World):
    cluster = world.cluster
    leader, standby = await leader_and_standby(cluster)
    hung_at = time.monotonic()
    leader.freeze()
    try:
        await world.ask(3)                # asked while nobody can answer
        new = await cluster.wait_for_leader(WAIT_S, not_pid=leader.pid)
        elected = time.monotonic() - hung_at
        assert new is standby
        answered = await world.all_answered_once("after the leader hung")
        print(f"\nSIGSTOP: standby leads {elected:.1f}s after the leader hung, the commands sent meanwhile "
              f"answered after {answered - hung_at:.1f}s (lease {LEASE_S:g}s, renewal {RENEW_S:g}s)")
    finally:
        leader.thaw()

    async def stepped_down() -> bool:
        return (await cluster.roles()).get(leader.pid) == "standby"

    await cluster.wait_for(stepped_down, WAIT_S, "the woken leader steps down")
    assert (await cluster.roles()).get(standby.pid) == "leader"
    await world.ask(3)
    await world.all_answered_once("after the old leader woke")


async def test_the_leader_killed_a_standby_takes_over_and_no_command_is_lost_or_answered_twice(world: World):
    cluster = world.cluster
    leader, standby = await leader_and_standby(cluster)
    fences = {r["pid"]: r["fence"] for r in await cluster.rows()}
    killed_at = time.monotonic()
    leader.kill()
    await world.ask(3)
    new = await cluster.wait_for_leader(WAIT_S, not_pid=leader.pid)
    elected = time.monotonic() - killed_at
    assert new is standby
    answered = await world.all_answered_once("after the leader was killed")
    print(f"\nSIGKILL: standby leads {elected:.1f}s after the kill, the commands sent meanwhile answered after "
          f"{answered - killed_at:.1f}s (lease {LEASE_S:g}s, renewal {RENEW_S:g}s)")
    new_fence = {r["pid"]: r["fence"] for r in await cluster.rows()}[new.pid]
    assert new_fence is not None and fences[leader.pid] is not None and new_fence > fences[leader.pid]

    # /status, answered once by the new leader, shows each process and the whole
    world.fake.user_sends(OPERATOR, OPERATOR, "/status")
    await cluster.wait_for(lambda: _ready(bool(world.fake.sent(OPERATOR))), WAIT_S, "the /status reply")
    await asyncio.sleep(RENEW_S)
    replies = world.fake.sent(OPERATOR)
    assert len(replies) == 1, [r.plain for r in replies]
    text = replies[0].plain
    assert "Processes" in text and "1 process up: 1 leader · 1 down" in text, text
    assert f"pid {new.pid}" in text and f"pid {leader.pid}" in text, text
    refused = [r for r in world.fake.refusals if not r.injected and r.method != "getupdates"]
    assert refused == [], refused
