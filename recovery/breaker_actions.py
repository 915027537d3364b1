"""Circuit breaker openings and closings as ``Action``s (no knob: a breaker is not turned, it trips).

The market client's breakers (``tokens.breaker``) tell their transitions to listeners; the service
hands them this one, so every opening and closing lands in the one action stream::

    pipeline.breakers.on_transition(BreakerActions(knobs))
    # Action(controller="breaker", knob=None, before=0.0, after=2.0,
    #        reason="10 of 10 calls failed in 30 s", detail="tokens_batch open; next probe in 2.0s")

Half-open probes that fail and reopen the breaker are not actions (one per probe would flood the
stream during an outage): an outage is one "open" and one "closed".
"""
from __future__ import annotations

from typing import Protocol

from recovery.knobs import Action, KnobRegistry

CONTROLLER = "breaker"
#: tokenwatch_circuit_state's values
STATE_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


class Transition(Protocol):
    """What a breaker reports (``tokens.breaker.BreakerTransition``)."""
    @property
    def endpoint(self) -> str: ...
    @property
    def before(self) -> str: ...
    @property
    def after(self) -> str: ...
    @property
    def at(self) -> float: ...
    @property
    def reason(self) -> str: ...
    @property
    def open_for_s(self) -> float | None: ...


class BreakerActions:
    """A breaker listener that records openings (from closed) and closings via ``knobs.record``."""

    def __init__(self, knobs: KnobRegistry) -> None:
        self.knobs = knobs

    def __call__(self, t: Transition) -> None:
        if t.after == "open" and t.before == "closed":
            detail = f"{t.endpoint} open; next probe in {t.open_for_s or 0.0:.1f}s"
        elif t.after == "closed":
            detail = f"{t.endpoint} closed"
        else:
            return
        self.knobs.record(Action(t.at, CONTROLLER, None, STATE_VALUES.get(t.before), STATE_VALUES.get(t.after),
                                 t.reason, detail=detail))
