"""The watchdog's restart budget: each stuck job and hung loop is restarted at most N times an
hour, every restart is an Action, and when the budget is spent the watchdog leaves it and alerts.

The scheduler (``app.scheduler.Scheduler.cancel_overrunning``: a run past its budget, or one that
made ``WATCHDOG_MAX_SKIPS`` ticks in a row skip, "maximum number of running instances reached")
and the supervisor (``app.supervisor.Supervisor.check``: a loop whose heartbeat stopped) find what
is stuck; before restarting it they ask this gate::

    watchdog = Watchdog(clock, knobs, per_hour=settings.watchdog_restarts_per_hour)
    scheduler.restart_gate = supervisor.restart_gate = watchdog
    watchdog.allow("job", "pipeline.process", "over its 60s budget")   # True: restart (an Action)
    collectors.register(watchdog.collector())   # tokenwatch_watchdog_restarts_total, _gave_up

A refusal is logged once per hour-long streak; ``tokenwatch_watchdog_gave_up`` stays 1 while
refusals keep coming (the stuck part is asked about on every watchdog pass) and rule
``watchdog_gave_up`` alerts. Operators' restarts (/jobs, the alert button) do not pass the gate.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from app.clock import SYSTEM_CLOCK, Clock
from monitoring import metric_names as m
from monitoring.sample import Sample
from recovery.knobs import Action, KnobRegistry

log = logging.getLogger(__name__)

CONTROLLER = "watchdog"
HOUR_S = 3600.0
GAVE_UP_FRESH_S = 60.0   # a refusal this recent means "still stuck"


@dataclass
class _Budget:
    restarts: deque[float] = field(default_factory=deque)
    total: int = 0
    refused_at: float | None = None
    said: bool = False


class Watchdog:
    """Implements ``app.supervisor.RestartGate`` (see the module docstring)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, knobs: KnobRegistry | None = None, *, per_hour: int = 3) -> None:
        self.clock, self.knobs, self.per_hour = clock, knobs, per_hour
        self._budgets: dict[tuple[str, str], _Budget] = {}

    def allow(self, kind: str, name: str, reason: str) -> bool:
        now = self.clock.time()
        b = self._budgets.setdefault((kind, name), _Budget())
        while b.restarts and b.restarts[0] <= now - HOUR_S:
            b.restarts.popleft()
        if len(b.restarts) >= self.per_hour:
            b.refused_at = now
            if not b.said:
                b.said = True
                log.error("watchdog: %s %s is stuck again (%s) after %d restarts within the hour; left as it is",
                          kind, name, reason, len(b.restarts))
                self._record(reason, f"gave up on {kind} {name}: {len(b.restarts)} restarts within the hour")
            return False
        b.restarts.append(now)
        b.total += 1
        b.said = False
        b.refused_at = None
        self._record(reason, f"restarted {kind} {name} ({len(b.restarts)} of {self.per_hour} this hour)")
        return True

    def _record(self, reason: str, detail: str) -> None:
        if self.knobs is not None:
            self.knobs.record(Action(self.clock.time(), CONTROLLER, None, None, None, reason, detail=detail))

    def gave_up(self, kind: str, name: str) -> bool:
        b = self._budgets.get((kind, name))
        return b is not None and b.refused_at is not None and self.clock.time() - b.refused_at <= GAVE_UP_FRESH_S

    def samples(self) -> list[Sample]:
        out = []
        for (kind, name), b in sorted(self._budgets.items()):
            labels = {"kind": kind, "id": name}
            out.append(Sample(m.WATCHDOG_RESTARTS_TOTAL, float(b.total), labels))
            out.append(Sample(m.WATCHDOG_GAVE_UP, 1.0 if self.gave_up(kind, name) else 0.0, labels))
        return out

    def collector(self) -> WatchdogCollector:
        return WatchdogCollector(self)


class WatchdogCollector:
    """Collector ``watchdog``: restarts and gave-up state of every job and loop it restarted."""

    name = "watchdog"

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog

    async def collect(self, now: float) -> list[Sample]:
        return self.watchdog.samples()
