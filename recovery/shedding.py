"""Load shedding: when the process's CPU stays high, check cold tokens less often, then poll
discovery's profiles less often; when it stays low, step back. A pure law and its controller.

The law (``LoadShedder``) has levels 0 (normal), 1 (cold checks stretched) and 2 (also profile
polls slowed). It climbs one level after CPU stayed over ``high`` (80 %) for more than ``hold_s``
(2 minutes) and steps down one level after it stayed under ``low`` (60 %) as long: two thresholds
and a hold time, so a spike or a reading between the two moves nothing (hysteresis). CPU is the
process's, as a share of ONE core (``tokenwatch_process_cpu_percent / 100``, monitoring's process
collector): one asyncio process can use about one core, so 80 % of it is a busy event loop
whatever the machine's core count.

    shedder = LoadShedder()
    shedder.observe(0.95, now=0.0); shedder.observe(0.95, now=121.0)    # -> 1 (entered)

The controller (``SheddingController``) turns each level into knob values through
``registry.adjust(controller="shed", ...)``: ``cold_interval_factor`` (1 -> 2) and
``profiles_poll_interval_s`` (x1 -> x3); each change is one Action with the reading that caused it.
It hears every monitoring snapshot (``coordinator.add_listener(controller.on_snapshot)``), or is
fed readings directly (``controller.observe(cpu, now)``; tests inject them).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from monitoring import metric_names as m
from monitoring.snapshot import MonitoringSnapshot
from recovery.knobs import Knob, KnobRegistry

log = logging.getLogger(__name__)

SHED = "shed"
COLD_KNOB = "cold_interval_factor"
PROFILES_KNOB = "profiles_poll_interval_s"
COLD_FACTOR_SHED = 2.0      # level >= 1: cold tokens checked half as often
PROFILES_FACTOR_SHED = 3.0  # level 2: profiles polled a third as often


@dataclass
class LoadShedder:
    high: float = 0.80
    low: float = 0.60
    hold_s: float = 120.0
    max_level: int = 2
    level: int = 0
    _high_since: float | None = field(default=None, repr=False)
    _low_since: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high:
            raise ValueError("need 0 <= low < high")

    @property
    def hot(self) -> bool:
        """CPU is over ``high`` at the last reading, or a level is shed: no time for optional work."""
        return self.level > 0 or self._high_since is not None

    def observe(self, cpu: float | None, now: float) -> int | None:
        """One CPU reading (share of one core) at ``now`` (seconds); the new level when it changed."""
        if cpu is None or cpu != cpu:  # no reading (the first collection has none): no evidence
            return None
        if cpu > self.high:
            self._low_since = None
            self._high_since = now if self._high_since is None else self._high_since
            if now - self._high_since > self.hold_s and self.level < self.max_level:
                self.level += 1
                self._high_since = now  # the next level needs another hold
                return self.level
        elif cpu < self.low:
            self._high_since = None
            self._low_since = now if self._low_since is None else self._low_since
            if now - self._low_since > self.hold_s and self.level > 0:
                self.level -= 1
                self._low_since = now
                return self.level
        else:  # between the thresholds: neither climbing nor stepping down
            self._high_since = self._low_since = None
        return None


class ColdChecks(Protocol):
    def cold_factor(self) -> float: ...
    def set_cold_factor(self, value: float) -> None: ...


class ProfilePolls(Protocol):
    interval_s: float

    def every_s(self) -> float: ...
    def set_every_s(self, seconds: float) -> None: ...


def register_shedding_knobs(knobs: KnobRegistry, cold: ColdChecks, profiles: ProfilePolls | None) -> None:
    knobs.register(Knob(COLD_KNOB, "ratio", 1.0, 4.0, cold.cold_factor, cold.set_cold_factor,
                        help="cold tokens are checked this many times less often (load shedding)"))
    if profiles is not None:
        base = profiles.interval_s
        knobs.register(Knob(PROFILES_KNOB, "s", base, base * 10, profiles.every_s, profiles.set_every_s,
                            help="seconds between polls of DexScreener's token profiles"))


class SheddingController:
    """Moves the shedding knobs with the law's level (see the module docstring).

        controller = SheddingController(knobs, profiles_base_s=10.0)
        controller.observe(0.93, now)        # or coordinator.add_listener(controller.on_snapshot)
    """

    def __init__(self, knobs: KnobRegistry, *, profiles_base_s: float | None, law: LoadShedder | None = None) -> None:
        self.knobs = knobs
        self.law = law or LoadShedder()
        self.profiles_base_s = profiles_base_s

    def on_snapshot(self, snap: MonitoringSnapshot) -> None:
        percent = snap.value(m.PROCESS_CPU_PERCENT)
        self.observe(None if percent is None else percent / 100.0, snap.at)

    def observe(self, cpu: float | None, now: float) -> int | None:
        level = self.law.observe(cpu, now)
        if level is None:
            return None
        assert cpu is not None
        verb = "over" if cpu > self.law.high else "under"
        edge = self.law.high if cpu > self.law.high else self.law.low
        reason = (f"CPU {cpu:.0%} of a core, {verb} {edge:.0%} for more than {self.law.hold_s:.0f} s: "
                  f"shedding level {level}")
        log.info("load shedding: level %d (CPU %.0f%% of a core)", level, cpu * 100)
        self.knobs.adjust(COLD_KNOB, COLD_FACTOR_SHED if level >= 1 else 1.0, controller=SHED, reason=reason)
        if self.profiles_base_s is not None and self.knobs.get(PROFILES_KNOB) is not None:
            every = self.profiles_base_s * (PROFILES_FACTOR_SHED if level >= 2 else 1.0)
            self.knobs.adjust(PROFILES_KNOB, every, controller=SHED, reason=reason)
        return level
