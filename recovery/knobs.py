"""The controls the service turns by itself, in one registry: every automatic or manual change goes
through ``KnobRegistry.adjust`` and becomes an ``Action`` (what, why, before, after), so nothing is
adjusted without an account. An operator's value pins a knob: controllers leave it alone until it
is released (``/tune <knob> auto``).

    registry = KnobRegistry(clock)
    registry.register(Knob("fetch_concurrency", "count", 1, 32, limiter.limit, limiter.set_limit,
                           help="requests to the market in flight at once"))
    registry.adjust("fetch_concurrency", 12, controller="aimd", reason="p95 1.2 s, 0 drops")
    registry.adjust("fetch_concurrency", 40, controller="operator", reason="/tune", actor="ann")  # clamped to 32, pinned
    registry.adjust("fetch_concurrency", 4, controller="aimd", reason="...")   # None: pinned by ann

Listeners (the action ledger, the chat announcer) subscribe with ``on_action``; a listener that
raises is logged and never stops the adjustment.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from app.clock import Clock

log = logging.getLogger(__name__)

OPERATOR = "operator"
RELEASED = "back to automatic control"  # the reason of a release's action


@dataclass(frozen=True)
class Knob:
    """One control: its name (``fetch_concurrency``, ``timeout:tokens_batch``), its unit (as
    ``alerts.units`` writes them: ``s``, ``count``, ``ratio``, ``bytes``), the bounds it may move in,
    how to read and set the running value, and a line for /tune."""
    name: str
    unit: str
    minimum: float
    maximum: float
    get: Callable[[], float]
    set: Callable[[float], None]
    help: str = ""
    integer: bool = False

    def clamp(self, value: float) -> float:
        v = min(self.maximum, max(self.minimum, float(value)))
        return float(round(v)) if self.integer else v


@dataclass(frozen=True)
class Action:
    """One change of a knob (or one act without a knob, such as a memory cleanup: ``knob`` None)."""
    at: float
    controller: str            # "rto", "aimd", "breaker", "memory", "watchdog", "db_pool", "operator"
    knob: str | None
    before: float | None
    after: float | None
    reason: str                # the measurement that triggered it
    actor: str | None = None   # who, for an operator's change
    detail: str = ""           # e.g. "gc 12 MB, caches 30 MB, malloc_trim 8 MB"
    announce: bool = False     # the controller asks for it to be told in the chat (recovery.announce)


@dataclass
class _Pin:
    value: float
    actor: str | None
    at: float


@dataclass
class KnobRegistry:
    clock: Clock
    _knobs: dict[str, Knob] = field(default_factory=dict)
    _pins: dict[str, _Pin] = field(default_factory=dict)
    _listeners: list[Callable[[Action], None]] = field(default_factory=list)

    def register(self, knob: Knob) -> None:
        if knob.name in self._knobs:
            raise ValueError(f"knob {knob.name!r} registered twice")
        self._knobs[knob.name] = knob

    def knobs(self) -> list[Knob]:
        return sorted(self._knobs.values(), key=lambda k: k.name)

    def get(self, name: str) -> Knob | None:
        return self._knobs.get(name)

    def value(self, name: str) -> float:
        return self._knobs[name].get()

    def pinned(self, name: str) -> _Pin | None:
        return self._pins.get(name)

    def on_action(self, listener: Callable[[Action], None]) -> None:
        self._listeners.append(listener)

    def adjust(self, name: str, value: float, *, controller: str, reason: str,
               actor: str | None = None) -> float | None:
        """Set ``name`` to ``value`` clamped to its bounds; returns the value set, or None when the knob
        is pinned by an operator (and ``controller`` is not the operator) or nothing changed.
        An operator's change pins the knob."""
        knob = self._knobs.get(name)
        if knob is None:
            raise KeyError(name)
        if controller != OPERATOR and name in self._pins:
            return None
        new = knob.clamp(value)
        before = knob.get()
        if controller == OPERATOR:
            self._pins[name] = _Pin(new, actor, self.clock.time())
        if new == before:
            return None
        knob.set(new)
        self.record(Action(self.clock.time(), controller, name, before, new, reason, actor))
        return new

    def release(self, name: str, *, actor: str | None = None) -> bool:
        """Hand a pinned knob back to its controller; False when it was not pinned."""
        pin = self._pins.pop(name, None)
        if pin is None:
            return False
        v = self._knobs[name].get()
        self.record(Action(self.clock.time(), OPERATOR, name, v, v, RELEASED, actor))
        return True

    def restore_pin(self, name: str, value: float, actor: str | None, at: float) -> None:
        """Re-apply a pin persisted before a restart (no action recorded: it was recorded then)."""
        knob = self._knobs.get(name)
        if knob is None:
            log.warning("a pinned knob %r is no longer registered; ignored", name)
            return
        new = knob.clamp(value)
        knob.set(new)
        self._pins[name] = _Pin(new, actor, at)

    def record(self, action: Action) -> None:
        """Tell every listener about ``action`` (also for acts without a knob)."""
        for listener in list(self._listeners):
            try:
                listener(action)
            except Exception:   # a listener's failure never stops the control
                log.exception("action listener failed for %s", action)
