"""The most recent failed fetches (checks with ``ok`` false) within a window.

    async with db.session() as s:
        errors = await last_errors(s, now, window_s=3600, limit=3)
    errors[0].mint, errors[0].error, errors[0].at

Walks the failed checks' own index (``checks(at) WHERE NOT ok``, migration 0007) backwards from
now: the ok checks between failures are never read, so an hour without a failure costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from monitoring.pipeline.sql import run


@dataclass(frozen=True)
class CheckError:
    mint: str
    at: float
    error: str | None


_LAST_ERRORS = text(
    "SELECT t.mint, c.at, c.error FROM checks c JOIN tokens t ON t.id = c.token_id "
    "WHERE c.at > :since AND c.at <= :now AND NOT c.ok ORDER BY c.at DESC LIMIT :limit"
)


async def last_errors(session: AsyncSession, now: float, window_s: float = 3600.0, limit: int = 3) -> list[CheckError]:
    """Newest first; at most ``limit``."""
    rows = (await run(session, _LAST_ERRORS, {"since": now - window_s, "now": now, "limit": limit})).all()
    return [CheckError(str(mint), float(at), error) for mint, at, error in rows]
