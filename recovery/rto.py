"""Adaptive request timeouts per market endpoint, as TCP's retransmission timer (RFC 6298).

The control law is pure (``RtoState``, ``on_sample``, ``on_expiry``, ``worth_adjusting``)::

    s = on_sample(RtoState(), 0.2, BOUNDS)        # first sample R: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
    s = on_sample(s, 0.3, BOUNDS)                 # RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|; SRTT = 7/8 SRTT + 1/8 R
    s = on_expiry(s, BOUNDS)                      # a timeout doubles RTO (kept until the next valid sample)

RTO is clamped to ``[min_s, max_s]`` (``RTO_MIN_S``, ``RTO_MAX_S``). Karn's rule is the client's part:
it reports only the latency of a request answered at its first attempt (``tokens.dexscreener``).

``RtoController`` is what the service wires into the DexScreener client (it implements the client's
``LatencyObserver``): it registers one knob ``timeout:<endpoint>`` per endpoint in the knob registry
and moves it only through ``registry.adjust(..., controller="rto")``, and only when the computed
value differs from the running one by more than ``CHANGE`` (20 %) or reaches a bound, so a steady
API makes no actions at all::

    rto = RtoController(knobs, client, ("tokens_batch", "token_pairs"), RtoBounds(1.0, 30.0))
    client.latency_observer = rto
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from recovery.controllers import TimeoutControl
from recovery.knobs import Knob, KnobRegistry

ALPHA = 1 / 8  # SRTT gain (RFC 6298 2.3)
BETA = 1 / 4   # RTTVAR gain
K = 4
CHANGE = 0.2   # a computed timeout this far (relative) from the running one is applied
CONTROLLER = "rto"


@dataclass(frozen=True)
class RtoBounds:
    min_s: float = 1.0
    max_s: float = 30.0

    def clamp(self, value: float) -> float:
        return min(self.max_s, max(self.min_s, value))


@dataclass(frozen=True)
class RtoState:
    """One endpoint's estimator: ``rto`` None until the first sample (the configured timeout stands)."""
    srtt: float | None = None
    rttvar: float | None = None
    rto: float | None = None
    backoffs: int = 0  # expiries since the last valid sample


def on_sample(state: RtoState, r: float, bounds: RtoBounds) -> RtoState:
    """A valid round-trip sample ``r`` seconds (RFC 6298 2.2 / 2.3)."""
    r = max(0.0, float(r))
    if state.srtt is None or state.rttvar is None:
        srtt, rttvar = r, r / 2
    else:
        rttvar = (1 - BETA) * state.rttvar + BETA * abs(state.srtt - r)
        srtt = (1 - ALPHA) * state.srtt + ALPHA * r
    return RtoState(srtt, rttvar, bounds.clamp(srtt + K * rttvar), 0)


def on_expiry(state: RtoState, bounds: RtoBounds, current_s: float) -> RtoState:
    """A request timed out: back off, ``RTO = 2 x RTO`` (from ``current_s`` before any sample), clamped."""
    base = state.rto if state.rto is not None else current_s
    return replace(state, rto=bounds.clamp(2 * base), backoffs=state.backoffs + 1)


def worth_adjusting(current_s: float, target_s: float, bounds: RtoBounds, change: float = CHANGE) -> bool:
    """Whether to turn the knob from ``current_s`` to ``target_s``: a move of more than ``change``
    (relative), or onto a bound it is not at yet. Small wobbles make no action."""
    if target_s == current_s:
        return False
    if target_s in (bounds.min_s, bounds.max_s):
        return True
    return abs(target_s - current_s) > change * current_s


class RtoController:
    """Turns ``timeout:<endpoint>`` knobs from latency samples and timeouts (see the module docstring)."""

    def __init__(self, knobs: KnobRegistry, timeouts: TimeoutControl, endpoints: Iterable[str],
                 bounds: RtoBounds, change: float = CHANGE) -> None:
        self.knobs = knobs
        self.bounds = bounds
        self.change = change
        self.states: dict[str, RtoState] = {}
        for ep in endpoints:
            self.states[ep] = RtoState()
            knobs.register(Knob(
                f"timeout:{ep}", "s", bounds.min_s, bounds.max_s,
                get=lambda ep=ep: timeouts.timeout_s(ep),  # type: ignore[misc]
                set=lambda v, ep=ep: timeouts.set_timeout_s(ep, v),  # type: ignore[misc]
                help=f"request timeout to {ep} (RFC 6298: SRTT + 4 RTTVAR)"))

    @staticmethod
    def knob(endpoint: str) -> str:
        return f"timeout:{endpoint}"

    def sample(self, endpoint: str, seconds: float) -> None:
        if endpoint not in self.states:
            return
        s = self.states[endpoint] = on_sample(self.states[endpoint], seconds, self.bounds)
        assert s.srtt is not None and s.rttvar is not None and s.rto is not None
        self._apply(endpoint, s.rto, f"SRTT {s.srtt * 1000:.0f} ms, RTTVAR {s.rttvar * 1000:.0f} ms "
                                     f"(last answer {seconds * 1000:.0f} ms)")

    def expired(self, endpoint: str, timeout_s: float) -> None:
        """A request that had ``timeout_s`` timed out. Requests that started before the last doubling
        (a shorter timeout) do not double it again: one backoff per round, like TCP's one timer."""
        if endpoint not in self.states:
            return
        current = self.knobs.value(self.knob(endpoint))
        if timeout_s < current:
            return
        s = self.states[endpoint] = on_expiry(self.states[endpoint], self.bounds, current)
        assert s.rto is not None
        self._apply(endpoint, s.rto, f"timed out after {current:g} s: doubled ({s.backoffs} in a row)")

    def _apply(self, endpoint: str, target: float, reason: str) -> None:
        name = self.knob(endpoint)
        if worth_adjusting(self.knobs.value(name), target, self.bounds, self.change):
            self.knobs.adjust(name, target, controller=CONTROLLER, reason=reason)
