"""Stuck tokens: in ``monitoring`` too long without a successful check, or failing.

A token is *stuck* when either

- it is in ``monitoring``, entered it more than ``stuck_after_s`` ago and has had no
  successful check in the last ``stuck_after_s`` (``last_success_at`` older, or NULL), or
- it is in ``monitoring`` or ``active`` and its pool data keeps failing to load:
  ``consecutive_failures`` (failed fetches in a row) ``>= stuck_failure_streak`` (an
  active token whose pool data cannot be fetched is as stuck as a monitored one; the
  time-based rule stays for ``monitoring`` only, since active tokens are not expected
  to move on), or
- it is in ``monitoring`` or ``active`` and quarantined (``quarantined_at`` set: its check results
  could not be written several times in a row, see ``tokens.repository``).

Each stuck token carries one reason, chosen in this order:

- ``quarantined:<reason>`` — quarantined; the reason is the stored write error;
- ``failing_checks:<detail>`` — the failure streak is reached; detail is the last check's
  error, else its primary failure code, else the token's last failure codes;
- ``never_checked`` — no check was ever made;
- ``no_successful_check`` — checked, but none succeeded within ``stuck_after_s``.

Usage::

    async with db.session() as s:
        page = await stuck_tokens(s, now, StuckParams.from_settings(settings), page=0, page_size=10)
    for item in page.items:
        print(item.mint, item.reason, item.stuck_for_s)
    page.total, page.pages

Ordered oldest first (``status_since``, then id); served by ``tokens(status, status_since)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from monitoring.pipeline.sql import run
from monitoring.pipeline.sql import sql_float as _opt

QUARANTINED = "quarantined"
NEVER_CHECKED = "never_checked"
NO_SUCCESSFUL_CHECK = "no_successful_check"
FAILING_CHECKS = "failing_checks"
DETAIL_MAX_CHARS = 80


@dataclass(frozen=True)
class StuckParams:
    """Thresholds. ``StuckParams.from_settings(settings)`` reads STUCK_AFTER_S and STUCK_FAILURE_STREAK."""

    stuck_after_s: float = 180.0
    failure_streak: int = 3

    @classmethod
    def from_settings(cls, settings: Any) -> "StuckParams":
        return cls(float(settings.stuck_after_s), int(settings.stuck_failure_streak))


@dataclass(frozen=True)
class StuckToken:
    token_id: int
    mint: str
    name: str | None
    symbol: str | None
    reason: str
    status_since: float
    stuck_for_s: float
    last_check_at: float | None
    last_success_at: float | None
    consecutive_failures: int
    status: str = "monitoring"  # "active" only for a failure streak or a quarantine
    quarantined_at: float | None = None


@dataclass(frozen=True)
class StuckPage:
    """One page of stuck tokens; ``total`` counts every stuck token."""

    items: list[StuckToken] = field(default_factory=list)
    total: int = 0
    page: int = 0
    page_size: int = 10

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size)) if self.page_size > 0 else 1

    @property
    def has_next(self) -> bool:
        return (self.page + 1) * self.page_size < self.total

    @property
    def has_prev(self) -> bool:
        return self.page > 0


_WHERE = (
    "FROM tokens WHERE (status = 'monitoring' "
    "AND status_since < :cutoff AND (last_success_at IS NULL OR last_success_at < :cutoff)) "
    "OR (status IN ('monitoring', 'active') AND consecutive_failures >= :streak) "
    "OR (status IN ('monitoring', 'active') AND quarantined_at IS NOT NULL)"
)
_COUNT = text(f"SELECT COUNT(*) {_WHERE}")
_PAGE = text(
    "SELECT id, mint, name, symbol, status_since, last_check_at, last_success_at, consecutive_failures, "
    f"check_count, last_failure_codes, status, quarantined_at, quarantine_reason {_WHERE} ORDER BY status_since, id LIMIT :limit OFFSET :offset"
)
_LAST_CHECKS = text(
    "SELECT c.token_id, c.error, c.primary_failure, c.failure_codes FROM checks c "
    "WHERE c.token_id IN :ids AND c.at = (SELECT MAX(c2.at) FROM checks c2 WHERE c2.token_id = c.token_id)"
).bindparams(bindparam("ids", expanding=True))


_BY_REASON = text(
    "SELECT CASE WHEN quarantined_at IS NOT NULL THEN 'quarantined' "
    "WHEN consecutive_failures >= :streak THEN 'failing_checks' "
    "WHEN last_check_at IS NULL AND COALESCE(check_count, 0) = 0 THEN 'never_checked' "
    f"ELSE 'no_successful_check' END AS reason, COUNT(*) {_WHERE} GROUP BY 1"
)


async def count_stuck_by_reason(session: AsyncSession, now: float, params: StuckParams | None = None) -> dict[str, int]:
    """How many tokens are stuck, by reason class (``quarantined``, ``failing_checks``,
    ``never_checked``, ``no_successful_check``: the part of :attr:`StuckToken.reason` before ``:``),
    largest first::

        await count_stuck_by_reason(session, now)   # {"failing_checks": 412, "never_checked": 88}
    """
    params = params or StuckParams()
    rows = (await run(session, _BY_REASON, _binds(now, params))).all()
    counts = {str(reason): int(n) for reason, n in rows if int(n) > 0}
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


async def count_stuck(session: AsyncSession, now: float, params: StuckParams | None = None) -> int:
    """How many tokens are stuck right now."""
    params = params or StuckParams()
    row = (await run(session, _COUNT, _binds(now, params))).one()
    return int(row[0])


async def stuck_tokens(
    session: AsyncSession, now: float, params: StuckParams | None = None, *, page: int = 0, page_size: int = 10
) -> StuckPage:
    """One page (0-based) of stuck tokens with their reasons, oldest first.

    A page past the end is clamped to the last page, so a stale "next" button still shows something.
    """
    params = params or StuckParams()
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    binds = _binds(now, params)
    total = int((await run(session, _COUNT, binds)).one()[0])
    last_page = max(0, math.ceil(total / page_size) - 1)
    page = min(max(0, int(page)), last_page)
    rows = (await run(session, _PAGE, {**binds, "limit": page_size, "offset": page * page_size})).all()
    last_checks: dict[int, tuple[str | None, str | None, str | None]] = {}
    failing_ids = [int(r[0]) for r in rows if int(r[7] or 0) >= params.failure_streak]
    if failing_ids:
        for token_id, error, primary, codes in (await run(session, _LAST_CHECKS, {"ids": failing_ids})).all():
            last_checks[int(token_id)] = (error, primary, codes)
    items = []
    for (tid, mint, name, symbol, since, last_check, last_success, failures, check_count, token_codes, status,
         quarantined_at, quarantine_reason) in rows:
        failures = int(failures or 0)
        if quarantined_at is not None:
            reason = f"{QUARANTINED}:{_detail(quarantine_reason, None, None, None)}"
        elif failures >= params.failure_streak:
            error, primary, codes = last_checks.get(int(tid), (None, None, None))
            reason = f"{FAILING_CHECKS}:{_detail(error, primary, codes, token_codes)}"
        elif last_check is None and not check_count:
            reason = NEVER_CHECKED
        else:
            reason = NO_SUCCESSFUL_CHECK
        items.append(
            StuckToken(int(tid), str(mint), name, symbol, reason, float(since), now - float(since),
                       _opt(last_check), _opt(last_success), failures, str(status), _opt(quarantined_at))
        )
    return StuckPage(items, total, page, page_size)


def _binds(now: float, params: StuckParams) -> dict[str, float | int]:
    return {"cutoff": now - params.stuck_after_s, "streak": params.failure_streak}


def _first_code(codes: str | None) -> str | None:
    if not codes:
        return None
    for part in str(codes).replace(";", ",").split(","):
        if part.strip():
            return part.strip()
    return None


def _detail(error: str | None, primary: str | None, codes: str | None, token_codes: str | None) -> str:
    for candidate in (error, primary, _first_code(codes), _first_code(token_codes)):
        if candidate and str(candidate).strip():
            one_line = " ".join(str(candidate).split())
            return one_line if len(one_line) <= DETAIL_MAX_CHARS else _cut_words(one_line, DETAIL_MAX_CHARS)
    return "unknown"


def _cut_words(text: str, n: int) -> str:
    """Cut at a word boundary (a number is never split), ending in ``…``; one long word is cut hard."""
    head = text[: n - 1]
    if not text[n - 1].isspace() and head.rfind(" ") > 0:
        head = head[: head.rfind(" ")]
    return head.rstrip(" ,;:([{-") + "…"
