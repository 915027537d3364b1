"""Retention: finished rows (sent, dead, superseded) and their pictures are deleted after
OUTBOX_RETENTION_H; pending rows never are, nor a row a pending edit still needs."""
from __future__ import annotations

from sqlmodel import select

import delivery
from app.clock import ManualClock
from app.settings import Settings
from delivery import Outbox
from delivery.models import OutboxMessage
from delivery.queries import SenderQueries
from delivery.retention import OutboxRetention


async def keys(db) -> set[str]:
    async def fetch(session):
        return set((await session.exec(select(OutboxMessage.idempotency_key))).all())

    return await db.run(fetch)


async def test_retention_prunes_finished_rows_and_keeps_pending(db):
    clock = ManualClock(1_000_000.0)
    settings = Settings(_env_file=None, outbox_retention_h=24)
    outbox = Outbox(db, clock)
    rows = SenderQueries(db, clock)

    async def row_id(key: str) -> int:
        found = await outbox.get(key)
        assert found is not None and found.id is not None
        return found.id

    await outbox.enqueue(42, "old chart", key="old-photo", photo=b"\x89PNG" * 1000)
    await outbox.enqueue(42, "old text", key="old-sent")
    await outbox.enqueue(42, "refused", key="old-dead")
    await outbox.enqueue(42, "still waiting", key="old-pending")  # Telegram away for a day
    await outbox.enqueue(42, "card", key="card")
    await outbox.enqueue_edit(42, target_key="card", text="card v2", key="card:2")
    await outbox.enqueue_edit(42, target_key="card", text="card v3", key="card:3")  # supersedes card:2
    for key in ("old-photo", "old-sent", "card"):
        await rows.mark_sent(await row_id(key), message_id=1, attempts=1, plain_fallback=False)
    await rows.mark_dead(await row_id("old-dead"), error="chat not found", attempts=1, plain_fallback=False)

    clock.advance(23 * 3600)
    await outbox.enqueue(42, "recent", key="recent-sent")
    await rows.mark_sent(await row_id("recent-sent"), message_id=2, attempts=1, plain_fallback=False)
    retention = OutboxRetention(rows, settings, clock)
    assert await retention.prune() == 0  # nothing is older than 24 h yet

    clock.advance(2 * 3600)
    assert await retention.prune() == 4
    assert await keys(db) == {"old-pending", "card", "card:3", "recent-sent"}
    # "card" is sent and old, but the pending edit card:3 still needs its message id

    clock.advance(48 * 3600)
    assert await retention.prune() == 1  # recent-sent; pending rows stay however old
    assert await keys(db) == {"old-pending", "card", "card:3"}
    assert retention.pruned == 5


def test_retention_is_a_scheduler_job_of_the_delivery_layer(sqlite_db):
    [job] = delivery.jobs(sqlite_db, Settings(_env_file=None))
    assert job.id == "delivery.prune" and job.interval_s == 3600
