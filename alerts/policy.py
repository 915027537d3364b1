"""The seams between the engine and the operators' controls (maintenance, silences, tuning).

The engine asks these before it notifies and while it evaluates; ``alerts/quiet.py`` and
``alerts/tuning.py`` implement them. The defaults (:data:`NEVER_MUTED`, :data:`FILE_THRESHOLDS`)
mute nothing and keep the file's thresholds, so the engine works on its own in tests.

    reason = await mutes.muted(rule, labels, severity, now)   # None, or "silence #3" / "maintenance"
    threshold = thresholds.threshold(rule)                    # the tuned or the file's threshold
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from alerts.rules import Rule


class MutePolicy(Protocol):
    async def muted(self, rule: Rule, labels: Mapping[str, str], now: float) -> str | None:
        """Why notifications for this series are muted now (a short plain text), or ``None``."""
        ...

    def in_maintenance(self, now: float) -> bool:
        """Whether a maintenance window is on (rules apply their ``maintenance`` relaxation)."""
        ...


class ThresholdSource(Protocol):
    def threshold(self, rule: Rule) -> float:
        """The threshold in force for ``rule`` (the newest unreverted tuning, else the file's)."""
        ...


class _NeverMuted:
    async def muted(self, rule: Rule, labels: Mapping[str, str], now: float) -> str | None:
        return None

    def in_maintenance(self, now: float) -> bool:
        return False


class _FileThresholds:
    def threshold(self, rule: Rule) -> float:
        return rule.threshold


NEVER_MUTED: MutePolicy = _NeverMuted()
FILE_THRESHOLDS: ThresholdSource = _FileThresholds()
