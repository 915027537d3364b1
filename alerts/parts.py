"""The alert layer's running parts, built by ``alerts.setup.build_alerts`` and held in
``ctx.alerts``. Each part contributes scheduler jobs and supervised loops; the composition root
registers them like every other part's::

    alerts = await build_alerts(ctx)
    ctx.scheduler.add_all(alerts.jobs()); ctx.supervisor.add_all(alerts.loops())
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.scheduler import JobSpec
from app.supervisor import LoopSpec
from alerts.api import ButtonFactory, DigestService, IncidentService, NO_BUTTONS, QuietService, TuningService
from alerts.rules import RuleSet


@dataclass
class Alerts:
    rules: RuleSet
    incidents: IncidentService | None = None   # the engine (alerts/engine.py)
    quiet: QuietService | None = None          # maintenance and silences (alerts/quiet.py)
    tuning: TuningService | None = None        # /tune (alerts/tuning.py)
    digest: DigestService | None = None        # digests (alerts/digest.py)
    buttons: ButtonFactory = NO_BUTTONS        # set by the bot (signed inline buttons)
    #: True on a process that is not the leader: monitoring's snapshots are not evaluated
    paused: bool = False
    _jobs: list[JobSpec] = field(default_factory=list)
    _loops: list[LoopSpec] = field(default_factory=list)
    _stoppers: list[Any] = field(default_factory=list)
    _reloaders: list[Any] = field(default_factory=list)

    def jobs(self) -> list[JobSpec]:
        return list(self._jobs)

    def loops(self) -> list[LoopSpec]:
        return list(self._loops)

    def pause(self) -> None:
        """Stop evaluating (this process no longer leads; another one alerts)."""
        self.paused = True

    async def resume(self) -> None:
        """Load the state the leader before this one left in the database (series, incidents,
        silences, tunings), then evaluate again: a process that takes over alerts from there."""
        for reload in self._reloaders:
            await reload()
        self.paused = False

    async def stop(self) -> None:
        for stop in reversed(self._stoppers):
            await stop()
