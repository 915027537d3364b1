"""Activation success rate and time to activation over a window.

Definitions (window = ``(now - window_s, now]``, usually ``activation_window_h`` hours):

- **token success rate**: of the tokens that *left* ``monitoring`` in the window (every
  transition ``from_status = 'monitoring'``), the share that went to ``active``. The rest
  were archived (timeout, low score, ...). ``None`` when no token left monitoring.
- **check pass rate**: of the checks made in the window on tokens in ``monitoring`` whose
  pool data was fetched and evaluated (``ok``), the share where every activation condition
  passed. Failed fetches are not counted here (they are failures of the pipeline, not of
  the token). ``None`` when there were no such checks. Counted from the per-minute counts
  (``tokens.check_rollup``), so the cost does not follow the check rate.
- **time to activation**: ``time_in_previous_s`` of the ``monitoring -> active`` transitions
  in the window, i.e. how long tokens spent in monitoring before activating; p50/p95 (nearest
  rank, computed in SQL: ``monitoring.pipeline.percentiles.distribution``) and max.

Usage::

    async with db.session() as s:
        rate = await activation_success(s, now, window_s=3600)
        tta = await time_to_activation(s, now, window_s=3600)
    rate.token_rate, rate.check_pass_rate, tta.p50, tta.p95
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from monitoring.pipeline.percentiles import Distribution, distribution
from monitoring.pipeline.sql import run
from tokens.check_rollup import window_counts


@dataclass(frozen=True)
class ActivationSuccess:
    """Counts behind the two rates; the rates are ``None`` when their denominator is 0."""

    window_s: float
    left_monitoring: int = 0
    activated: int = 0
    checks_evaluated: int = 0
    checks_passed: int = 0

    @property
    def token_rate(self) -> float | None:
        return self.activated / self.left_monitoring if self.left_monitoring else None

    @property
    def check_pass_rate(self) -> float | None:
        return self.checks_passed / self.checks_evaluated if self.checks_evaluated else None


_LEFT = text(
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN to_status = 'active' THEN 1 ELSE 0 END), 0) FROM transitions "
    "WHERE at > :since AND at <= :now AND from_status = 'monitoring'"
)
_TTA_WHERE = (
    "FROM transitions WHERE to_status = 'active' AND at > :since AND at <= :now "
    "AND from_status = 'monitoring' AND time_in_previous_s IS NOT NULL"
)


async def activation_success(session: AsyncSession, now: float, window_s: float = 3600.0) -> ActivationSuccess:
    """Token success rate and check pass rate over the window (see the module docstring)."""
    binds = {"since": now - window_s, "now": now}
    left, activated = (await run(session, _LEFT, binds)).one()
    # checks from the per-minute counts (tokens.check_rollup), not a scan of the window's checks
    counts = await window_counts(session, now - window_s, now, by=("ok", "passed"), status="monitoring")
    passed = counts.get((True, True), 0.0)
    evaluated = passed + counts.get((True, False), 0.0)
    return ActivationSuccess(float(window_s), int(left), int(activated), round(evaluated), round(passed))


async def time_to_activation(session: AsyncSession, now: float, window_s: float = 3600.0) -> Distribution:
    """p50/p95/max of time spent in monitoring by tokens activated in the window."""
    return await distribution(session, "time_in_previous_s", _TTA_WHERE, {"since": now - window_s, "now": now})
