"""Throughput: transitions and checks per minute (counts by status: ``tokens.queries.counts_by_status``).

Pure query functions over ``tokens``, ``transitions`` and ``checks``; each takes an
open session and ``now`` (epoch seconds) and returns plain data::

    async with db.session() as s:
        moves = await transitions_per_minute(s, now, 300)     # {("monitoring", "active"): 0.4, ...}
        checks = await checks_per_minute(s, now, 300)         # {"monitoring": 81.2, "active": 4.0}

A rate is ``count in (now - window_s, now] / (window_s / 60)``. Transitions are a range scan of
``transitions(at)``; checks are counted from the per-minute counts (``tokens.check_rollup``: the
minute holding ``now - window_s`` counts for its share of the window), never from ``checks``.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from monitoring.pipeline.sql import run
from tokens.check_rollup import window_counts


_TRANSITIONS = text(
    "SELECT from_status, to_status, COUNT(*) FROM transitions "
    "WHERE at > :since AND at <= :now GROUP BY from_status, to_status"
)

def _check_window(window_s: float) -> float:
    if not window_s > 0:
        raise ValueError(f"window_s must be positive, got {window_s!r}")
    return float(window_s)


async def transitions_per_minute(
    session: AsyncSession, now: float, window_s: float = 300.0
) -> dict[tuple[str | None, str], float]:
    """Transitions per minute by ``(from_status, to_status)`` over the last ``window_s``.

    ``from_status`` is ``None`` for a token's first transition (discovery).
    """
    minutes = _check_window(window_s) / 60.0
    rows = (await run(session, _TRANSITIONS, {"since": now - window_s, "now": now})).all()
    return {(frm, to): int(n) / minutes for frm, to, n in rows}


async def checks_per_minute(session: AsyncSession, now: float, window_s: float = 300.0) -> dict[str, float]:
    """Checks per minute by the token's status at check time, over the last ``window_s``."""
    minutes = _check_window(window_s) / 60.0
    counts = await window_counts(session, now - window_s, now, by=("status_at_check",))
    return {str(status): n / minutes for (status,), n in counts.items() if n > 0}


