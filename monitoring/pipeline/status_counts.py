"""Tokens by status on every cycle without reading every token.

Archived tokens pile up (85 % of the tokens after a week) while the live ones stay few, and a
``COUNT(*) GROUP BY status`` reads them all on every cycle. Archiving is final and keeps the
token's ``status_since`` (``tokens.lifecycle.decide``), so the archived tokens up to a moment
never change: they are counted once an hour (``recount_every_s``), up to ``settle_s`` before the
count (a batch archiving a token commits after the moment it records), and each cycle adds only
those archived since, plus the live statuses, both ranges of ``ix_tokens_status_since``::

    counts = StatusCounts()                       # keep one per collector
    async with db.session() as s:
        await counts.read(s, now)                 # {"monitoring": 12, "active": 3, "archived": 85}
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import text

from monitoring.pipeline.sql import run
from tokens.models import ARCHIVED, STATUSES

RECOUNT_EVERY_S = 3600.0
SETTLE_S = 300.0

_LIVE = text("SELECT status, COUNT(*) FROM tokens WHERE status IN ('monitoring', 'active') GROUP BY status")
_ARCHIVED_UPTO = text("SELECT COUNT(*) FROM tokens WHERE status = 'archived' AND status_since <= :upto")
_ARCHIVED_AFTER = text("SELECT COUNT(*) FROM tokens WHERE status = 'archived' AND status_since > :upto")


class StatusCounts:
    """See the module docstring. ``read`` returns every status (0 when none)."""

    def __init__(self, recount_every_s: float = RECOUNT_EVERY_S, settle_s: float = SETTLE_S) -> None:
        self.recount_every_s = recount_every_s
        self.settle_s = settle_s
        self._base: int | None = None  # archived tokens with status_since <= self._upto
        self._upto = 0.0
        self._counted_at = 0.0

    async def read(self, session: Any, now: float) -> dict[str, int]:
        if self._base is None or not 0 <= now - self._counted_at < self.recount_every_s:
            upto = now - self.settle_s
            self._base = int((await run(session, _ARCHIVED_UPTO, {"upto": upto})).scalar() or 0)
            self._upto, self._counted_at = upto, now
        counts = {status: 0 for status in STATUSES}
        for status, n in (await run(session, _LIVE)).all():
            counts[str(status)] = int(n)
        recent = int((await run(session, _ARCHIVED_AFTER, {"upto": self._upto})).scalar() or 0)
        counts[ARCHIVED] = self._base + recent
        return counts


__all__ = ["RECOUNT_EVERY_S", "SETTLE_S", "StatusCounts"]
