"""Log a repeating failure on change of state, not on every cycle (Home-Assistant style).

The first failure logs one WARNING with its reason; further failures are counted and logged
at DEBUG; the first success after failures logs one INFO with the count and the duration::

    fetching = FailureStreak(log, "fetching", unit="batches", clock=clock)
    fetching.failed("batch of 30 tokens failed: http_503: ...")   # WARNING (first)
    fetching.failed("batch of 30 tokens failed: http_503: ...")   # DEBUG (counted)
    fetching.succeeded()   # INFO "fetching recovered after 2 failed batches over 4s"
    fetching.total_failures  # 2 (lifetime, for metrics)

A failure that flips on and off (40% of answers throttled: fail, succeed, fail...) would log a
warning and a recovery for every flip. A streak that starts within ``report_every_s`` (60 s) of the
last reported one is counted, not logged (DEBUG, start and end); the next reported start says how
many came meanwhile ("; 37 more streaks since the last report").
"""
from __future__ import annotations

import logging
from typing import Any

from app.clock import SYSTEM_CLOCK, Clock

REPORT_EVERY_S = 60.0  # a streak starting sooner after the last reported one is counted, not logged


class FailureStreak:
    """Tracks one kind of repeating failure and logs only its start and its end.

        streak = FailureStreak(log, "token profiles", unit="polls")
        streak.failed("http_503: ...")
        streak.succeeded()          # "token profiles recovered after 1 failed polls over 0s"
    """

    def __init__(self, logger: logging.Logger, what: str, *, unit: str = "attempts",
                 clock: Clock = SYSTEM_CLOCK, report_every_s: float = REPORT_EVERY_S) -> None:
        self.logger = logger
        self.what = what
        self.unit = unit
        self.clock = clock
        self.report_every_s = report_every_s
        self.failures = 0  # in the current streak
        self.total_failures = 0
        self.since: float | None = None  # clock.monotonic() of the streak's first failure
        self.last_reason: str | None = None
        self._reported_at: float | None = None  # when a streak's start was last logged as WARNING
        self._reported = False                  # the current streak's start was logged
        self._unreported = 0                    # streaks since, counted but not logged

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, reason: str, *, extra: dict[str, Any] | None = None) -> bool:
        """Count one failure; returns True when this one started a streak (and was logged as WARNING)."""
        self.failures += 1
        self.total_failures += 1
        self.last_reason = reason
        if self.failures == 1:
            now = self.since = self.clock.monotonic()
            if self._reported_at is not None and now - self._reported_at < self.report_every_s:
                self._reported = False
                self._unreported += 1
                self.logger.debug("%s failing again: %s", self.what, reason, extra=extra)
                return False
            more = f"; {self._unreported} more streaks since the last report" if self._unreported else ""
            self._reported, self._reported_at, self._unreported = True, now, 0
            self.logger.warning("%s failing: %s (repeats are counted, logged once it recovers%s)",
                                self.what, reason, more, extra=extra)
            return True
        self.logger.debug("%s still failing (%d %s): %s", self.what, self.failures, self.unit, reason, extra=extra)
        return False

    def succeeded(self) -> bool:
        """End a streak, if any; returns True when a recovery was logged."""
        if not self.failures:
            return False
        elapsed = max(0.0, self.clock.monotonic() - (self.since if self.since is not None else self.clock.monotonic()))
        reported, self._reported = self._reported, False
        (self.logger.info if reported else self.logger.debug)(
            "%s recovered after %d failed %s over %.0fs", self.what, self.failures, self.unit, elapsed)
        self.failures = 0
        self.since = None
        return reported
