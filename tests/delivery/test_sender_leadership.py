"""Only the leader sends: the outbox sender asks the lease before every claim and every send, so a
process whose lease ran out (it hung, another took over) sends nothing more and leaves its rows
for the next leader. Real Redis lease (manual clock), real outbox, fake Bot API server."""
from __future__ import annotations

from app.clock import ManualClock
from app.leadership import RedisLease
from delivery.models import PENDING
from tests.bot.test_outbox import nothing_pending, outbox_world, running, until


async def test_a_sender_without_a_valid_lease_sends_nothing_and_the_next_leader_sends_it_once(db, redis_client):
    clock = ManualClock()
    lease = RedisLease(redis_client, owner="a", ttl_s=10.0, clock=clock)
    assert await lease.step()
    async with outbox_world(db) as (fake, outbox, sender):
        sender.may_send = lease.is_leader
        await outbox.enqueue(42, "while leading", key="k1")
        async with running(sender):
            await until(lambda: nothing_pending(outbox), timeout=30, what="sent by the leader")
            clock.advance(10.0)                    # hung past its lease: no longer provably the leader
            await outbox.enqueue(42, "after the lease ran out", key="k2")
            await outbox.enqueue(43, "another chat", key="k3")
            for _ in range(5):
                assert await sender.drain_once() == 0
        assert [m.text for m in fake.all_sent()] == ["while leading"]
        for key in ("k2", "k3"):
            row = await outbox.get(key)
            assert row is not None and row.status == PENDING and row.lease_owner is None   # free for the next leader
        other = ManualClock()
        successor = RedisLease(redis_client, owner="b", ttl_s=10.0, clock=other)
        await redis_client.delete("tokenwatch:leader")   # a's key ran out in Redis too
        assert await successor.step()
        sender.may_send = successor.is_leader            # (the next leader's sender, same database)
        async with running(sender):
            await until(lambda: nothing_pending(outbox), timeout=30, what="sent by the next leader")
        assert sorted(m.text for m in fake.all_sent()) == ["after the lease ran out", "another chat", "while leading"]
