"""The knob registry: bounds, pins by an operator, and one action per real change."""
from __future__ import annotations

from app.clock import ManualClock
from recovery.knobs import Action, Knob, KnobRegistry
from tests.recovery.knob_box import Box


def make() -> tuple[KnobRegistry, Box, list[Action]]:
    reg = KnobRegistry(ManualClock(1000.0))
    box = Box(4)
    reg.register(Knob("fetch_concurrency", "count", 1, 32, box.get, box.set, integer=True))
    seen: list[Action] = []
    reg.on_action(seen.append)
    return reg, box, seen


def test_a_change_is_clamped_and_accounted_once() -> None:
    reg, box, seen = make()
    assert reg.adjust("fetch_concurrency", 99.4, controller="aimd", reason="p95 0.4 s") == 32
    assert box.v == 32
    assert reg.adjust("fetch_concurrency", 40, controller="aimd", reason="again") is None   # no change
    assert [(a.controller, a.before, a.after, a.reason) for a in seen] == [("aimd", 4, 32, "p95 0.4 s")]


def test_an_operator_pins_a_knob_until_released() -> None:
    reg, box, seen = make()
    assert reg.adjust("fetch_concurrency", 8, controller="operator", reason="/tune", actor="ann") == 8
    assert reg.adjust("fetch_concurrency", 2, controller="aimd", reason="drops") is None
    assert box.v == 8 and reg.pinned("fetch_concurrency") is not None
    assert reg.release("fetch_concurrency", actor="ann")
    assert reg.adjust("fetch_concurrency", 2, controller="aimd", reason="drops") == 2
    assert [a.controller for a in seen] == ["operator", "operator", "aimd"]


def test_a_failing_listener_never_stops_the_control() -> None:
    reg, box, seen = make()

    def boom(action: Action) -> None:
        raise RuntimeError("ledger down")

    reg.on_action(boom)
    reg.on_action(seen.append)
    assert reg.adjust("fetch_concurrency", 6, controller="aimd", reason="x") == 6
    assert box.v == 6 and len(seen) == 2
