"""Retention: finished outbox rows (sent, dead, superseded) and their pictures are deleted after
``OUTBOX_RETENTION_H`` hours; pending rows never are. Runs as a scheduler job::

    retention = OutboxRetention(SenderQueries(db, clock), settings, clock)
    scheduler.add_all(retention.jobs())        # "delivery.prune", hourly
    await retention.prune()                    # -> rows deleted
"""
from __future__ import annotations

import logging

from app.clock import SYSTEM_CLOCK, Clock
from app.scheduler import JobSpec
from app.settings import Settings
from delivery.queries import SenderQueries

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0


class OutboxRetention:
    def __init__(self, rows: SenderQueries, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.rows = rows
        self.retention_s = settings.outbox_retention_h * 3600.0
        self.clock = clock
        self.pruned = 0

    async def prune(self) -> int:
        """Delete finished rows older than the retention period; return how many."""
        removed = await self.rows.prune_finished(self.clock.time() - self.retention_s)
        self.pruned += removed
        if removed:
            log.info("outbox retention: deleted %d finished message(s) older than %.0fh",
                     removed, self.retention_s / 3600)
        return removed

    def jobs(self) -> list[JobSpec]:
        return [JobSpec(id="delivery.prune", func=self.prune, interval_s=PRUNE_INTERVAL_S,
                        start_delay_s=60.0)]
