"""SQLite's write turn (``app.db``): writers of one process take turns in the order they asked,
so a busy writer never starves another into "database is locked"."""
from __future__ import annotations

import asyncio

from sqlalchemy import text

from app.db import Database

WRITES = 60


async def _table(db: Database) -> None:
    async def create(session) -> None:
        await session.exec(text("CREATE TABLE IF NOT EXISTS turn_probe (id INTEGER PRIMARY KEY, writer TEXT)"))

    await db.run(create)


def _insert(writer: str):
    async def fn(session) -> None:
        await session.exec(text("INSERT INTO turn_probe (writer) VALUES (:w)"), params={"w": writer})
    return fn


async def test_a_read_then_write_beside_a_busy_writer_gets_its_turn_without_a_lock_error(sqlite_db: Database):
    db = sqlite_db
    await _table(db)
    written: list[str] = []

    async def busy() -> None:              # group commits, back to back, from three writer tasks
        for _ in range(WRITES // 3):
            await db.run(_insert("busy"))
            written.append("busy")

    async def read_then_write(session) -> int:   # a deferred transaction: reads first, then writes
        count = (await session.exec(text("SELECT count(*) FROM turn_probe"))).one()[0]
        await session.exec(text("INSERT INTO turn_probe (writer) VALUES ('other')"))
        return int(count)

    async def other() -> None:
        await asyncio.sleep(0)             # asks once the busy writer is under way
        await db.run(read_then_write)
        written.append("other")

    await asyncio.gather(busy(), busy(), busy(), other())
    assert db.transient_errors == 0        # no "database is locked", no retry
    # its turn came after the three writes asked before it, not after the busy writers' 60
    assert written.index("other") <= 3, written[:6]


async def test_a_run_inside_a_held_turn_does_not_wait_for_itself(sqlite_db: Database):
    db = sqlite_db
    await _table(db)
    async with db.turn():
        # in this task (not under wait_for, which in 3.11 runs it as a task of its own: another writer);
        # a deadlock here would end in the test's timeout
        await db.run(_insert("nested"))
    async def count(session) -> int:
        return int((await session.exec(text("SELECT count(*) FROM turn_probe WHERE writer = 'nested'"))).one()[0])
    assert await db.run(count, turn=False) == 1


async def test_a_task_started_while_holding_the_turn_waits_for_it(sqlite_db: Database):
    """A task (or a timer callback) started under the turn is another writer, not the holder: it must
    not write beside the holder's open transaction ("database is locked") but after it."""
    db = sqlite_db
    await _table(db)
    order: list[str] = []

    async def later() -> None:
        await db.run(_insert("child"))
        order.append("child")

    async with db.turn():
        child = asyncio.create_task(later())
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not child.done()                # waiting for the turn, not writing beside it
        await db.run(_insert("holder"))
        order.append("holder")
    await asyncio.wait_for(child, 10)
    assert order == ["holder", "child"] and db.transient_errors == 0
