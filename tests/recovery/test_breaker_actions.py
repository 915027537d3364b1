"""Breaker openings and closings land in the one action stream (controller "breaker", no knob); the
probes that fail in between do not (an outage is one "open" and one "closed")."""
from __future__ import annotations

from app.clock import ManualClock
from recovery.breaker_actions import BreakerActions
from recovery.knobs import Action, KnobRegistry
from tokens.breaker import FAILURE, SUCCESS, BreakerBoard, BreakerPolicy


def test_an_outage_is_one_open_and_one_close_action() -> None:
    clock = ManualClock()
    knobs = KnobRegistry(clock)
    seen: list[Action] = []
    knobs.on_action(seen.append)
    board = BreakerBoard(BreakerPolicy(min_calls=4), clock, random=lambda: 1.0)
    board.on_transition(BreakerActions(knobs))

    def call(outcome) -> None:
        permit = board.allow("tokens_batch")
        assert permit is not None
        board.record(permit, outcome, 0.1)

    for _ in range(4):
        call(FAILURE)
    for _ in range(3):  # three failed probes: reopened each time, no action
        clock.advance(board.get("tokens_batch").retry_in_s())
        call(FAILURE)
    clock.advance(board.get("tokens_batch").retry_in_s())
    call(SUCCESS)
    assert [(a.controller, a.knob, a.before, a.after, a.reason, a.detail) for a in seen] == [
        ("breaker", None, 0.0, 2.0, "4 of 4 calls failed in 30 s", "tokens_batch open; next probe in 5.0s"),
        ("breaker", None, 1.0, 0.0, "probe answered", "tokens_batch closed"),
    ]
