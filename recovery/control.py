"""The knobs from the chat: what /tune shows and does with the service's controls.

    controls = Controls(registry, ledger, clock)
    controls.knobs()                                        # [KnobView]: running value, bounds, pinned by
    await controls.recent(limit=5)                          # the last automatic actions (ActionView)
    await controls.set("fetch_concurrency", "8", "@ann")    # ControlResult(ok, changed, text)
    await controls.auto("fetch_concurrency", "@ann")        # back to automatic control
    await controls.revert(12, "@ann")                       # action #12's knob back to its value before

Every change goes through the registry as the ``operator`` controller (so it pins the knob and is
an Action in the ledger) and is flushed to the ledger before the answer: it survives a restart.
Bad input answers ``ok=False`` with one plain line and changes nothing. The caller checked rights.
"""
from __future__ import annotations

import asyncio
import difflib
import math
import re
from dataclasses import dataclass

from app.clock import Clock
from app.durations import parse_duration
from app.units import fmt_unit
from recovery.knobs import OPERATOR, Action, Knob, KnobRegistry
from recovery.ledger import ActionLedger
from recovery.ledger_queries import ActionView, get_action, recent_actions

AUTO = "auto"
_BYTES = {"b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3}
_BYTES_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]i?b|b)")


@dataclass(frozen=True)
class KnobView:
    name: str
    unit: str
    minimum: float
    maximum: float
    value: float | None          # None when reading it failed
    help: str
    pinned_value: float | None = None
    pinned_by: str | None = None
    pinned_at: float | None = None

    @property
    def pinned(self) -> bool:
        return self.pinned_value is not None

    def range(self) -> str:
        return f"{fmt_unit(self.minimum, self.unit)}–{fmt_unit(self.maximum, self.unit)}"


@dataclass(frozen=True)
class ControlResult:
    ok: bool          # the request was valid
    changed: bool     # something changed (False for a refusal, a double press, a stale button)
    text: str         # one plain-text line


def parse_value(raw: str, knob: Knob) -> float:
    """``raw`` as typed (``8``, ``2.5s``, ``500ms``, ``80%``, ``512MiB``) in ``knob``'s unit; ValueError."""
    text = raw.strip().lower()
    value: float
    try:
        if knob.unit == "s" and text.endswith("ms"):
            value = float(text[:-2]) / 1000.0
        elif knob.unit == "s":
            value = parse_duration(text, min_s=0.0)
        elif knob.unit in ("ratio", "percent") and text.endswith("%"):
            value = float(text[:-1]) / (100.0 if knob.unit == "ratio" else 1.0)
        elif knob.unit == "bytes" and (m := _BYTES_RE.fullmatch(text)):
            value = float(m.group(1)) * _BYTES[m.group(2)]
        else:
            value = float(text.replace(",", "")) if re.fullmatch(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?", text) else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{raw[:20]!r} is not a value for {knob.name} ({knob.unit or 'a number'})")
    if knob.integer and not float(value).is_integer():
        raise ValueError(f"{knob.name} takes whole numbers, not {raw[:20]!r}")
    return value


class Controls:
    def __init__(self, registry: KnobRegistry, ledger: ActionLedger, clock: Clock) -> None:
        self.registry = registry
        self.ledger = ledger
        self.clock = clock
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ reading

    def knobs(self) -> list[KnobView]:
        views = []
        for k in self.registry.knobs():
            try:
                value: float | None = k.get()
            except Exception:  # noqa: BLE001 - one unreadable knob never hides the others
                value = None
            pin = self.registry.pinned(k.name)
            views.append(KnobView(k.name, k.unit, k.minimum, k.maximum, value, k.help,
                                  pin.value if pin else None, pin.actor if pin else None, pin.at if pin else None))
        return views

    def names(self) -> list[str]:
        return [k.name for k in self.registry.knobs()]

    def closest(self, name: str, n: int = 3) -> list[str]:
        """Names containing ``name``, then the most alike (``fetch_concurency`` -> ``fetch_concurrency``)."""
        names, wanted = self.names(), name.lower()
        found = [x for x in names if wanted in x] + difflib.get_close_matches(wanted, names, n=n, cutoff=0.5)
        return list(dict.fromkeys(found))[:n]

    async def recent(self, limit: int = 5) -> list[ActionView]:
        """The newest automatic actions (the ones Revert is for)."""
        return await recent_actions(self.ledger.db, limit=limit, automatic=True)

    def unknown(self, name: str) -> ControlResult:
        close = self.closest(name)
        hint = f"; did you mean {', '.join(close)}?" if close else "; /tune lists them"
        return ControlResult(False, False, f"No control named {name[:40]!r}{hint}")

    # ------------------------------------------------------------------ acting (as an operator)

    async def set(self, name: str, raw: str, actor: str) -> ControlResult:
        knob = self.registry.get(name)
        if knob is None:
            return self.unknown(name)
        if raw.strip().lower() == AUTO:
            return await self.auto(name, actor)
        running = fmt_unit(knob.get(), knob.unit)
        try:
            value = parse_value(raw, knob)
        except ValueError as exc:
            return ControlResult(False, False, f"{exc}; allowed {fmt_unit(knob.minimum, knob.unit)}–"
                                               f"{fmt_unit(knob.maximum, knob.unit)}, it stays at {running}.")
        if not knob.minimum <= value <= knob.maximum:
            return ControlResult(False, False, f"{fmt_unit(value, knob.unit)} is outside {name}'s range "
                                               f"{fmt_unit(knob.minimum, knob.unit)}–{fmt_unit(knob.maximum, knob.unit)}; "
                                               f"it stays at {running}.")
        async with self._lock:
            before = knob.get()
            set_to = self.registry.adjust(name, value, controller=OPERATOR, reason="set with /tune", actor=actor)
            if set_to is None:  # the value it already had: pinned there, recorded all the same
                self.registry.record(Action(self.clock.time(), OPERATOR, name, before, before,
                                            "pinned with /tune", actor))
            await self.ledger.flush()
        after = knob.get()
        if set_to is None:
            return ControlResult(True, True, f"{name} stays at {fmt_unit(after, knob.unit)}, now pinned by {actor}; "
                                             f"/tune {name} auto hands it back.")
        return ControlResult(True, True, f"{name} {fmt_unit(before, knob.unit)} → {fmt_unit(after, knob.unit)}, "
                                         f"pinned by {actor}; /tune {name} auto hands it back.")

    async def auto(self, name: str, actor: str) -> ControlResult:
        knob = self.registry.get(name)
        if knob is None:
            return self.unknown(name)
        async with self._lock:
            released = self.registry.release(name, actor=actor)
            if released:
                await self.ledger.flush()
        if not released:
            return ControlResult(True, False, f"{name} is already under automatic control.")
        return ControlResult(True, True, f"{name} is back under automatic control "
                                         f"(at {fmt_unit(knob.get(), knob.unit)} until its controller moves it).")

    async def revert(self, action_id: int, actor: str) -> ControlResult:
        async with self._lock:
            await self.ledger.flush()   # a revert pressed before its own record was written, or twice
            action = await get_action(self.ledger.db, action_id)
            if action is None:
                return ControlResult(False, False, f"No action #{action_id} in the ledger.")
            if action.reverted_at is not None:
                return ControlResult(True, False, f"Action #{action_id} was already reverted by "
                                                  f"{action.reverted_by or 'an operator'}.")
            knob = self.registry.get(action.knob) if action.knob is not None else None
            if not action.revertible or action.before is None or action.knob is None:
                return ControlResult(False, False, f"Action #{action_id} changed no knob; nothing to revert.")
            if knob is None:
                return ControlResult(False, False, f"{action.knob} is not a control of this process any more.")
            now_value = knob.get()
            if action.after is not None and not math.isclose(now_value, action.after, rel_tol=1e-9, abs_tol=1e-12):
                return ControlResult(True, False, f"{action.knob} has changed since #{action_id} (now "
                                                  f"{fmt_unit(now_value, knob.unit)}); set it with /tune {action.knob} <value>.")
            with self.ledger.reverting(action_id):
                self.registry.adjust(action.knob, action.before, controller=OPERATOR,
                                     reason=f"revert of #{action_id}", actor=actor)
            await self.ledger.flush()
        return ControlResult(True, True, f"{action.knob} back to {fmt_unit(knob.get(), knob.unit)} (#{action_id} "
                                         f"reverted), pinned by {actor}; /tune {action.knob} auto hands it back.")
