"""The process registry's heartbeat row, on both databases."""
from __future__ import annotations

import asyncio

from app.clock import ManualClock
from app.processes import ProcessRegistry


async def test_beats_at_once_write_one_row_with_the_latest_role(db):
    clock = ManualClock(1_700_000_000.0)
    role = ["standby"]
    registry = ProcessRegistry(db, clock, process_id="vm:1:ab", role=lambda: role[0], host="vm", pid=1)
    # the heartbeat job and a beat on a change of role, at the same moment, before any row exists
    await asyncio.gather(*(registry.beat() for _ in range(5)))
    role[0] = "leader"
    clock.advance(5.0)
    await asyncio.gather(registry.beat(), registry.heartbeat())
    views = await registry.read()
    assert [(v.id, v.role, v.heartbeat_at) for v in views] == [("vm:1:ab", "leader", clock.time())]
