"""Circuit breakers for the market endpoints: stop calling an endpoint that is down, probe it, resume.

One ``CircuitBreaker`` per endpoint (``tokens_batch``, ``token_pairs``, ``token_profiles``), held by a
``BreakerBoard`` that the DexScreener client asks before every attempt::

    board = BreakerBoard(BreakerPolicy(), clock)
    permit = board.allow("tokens_batch")          # None: open (or a probe is already out): do not call
    ...send...
    board.record(permit, SUCCESS, latency_s=0.12)  # or FAILURE, or THROTTLED (a 429), or DROPPED
    board.state("tokens_batch")                   # "closed" | "half_open" | "open"
    board.on_transition(listener)                 # BreakerTransition(endpoint, before, after, reason, ...)

States, as resilience4j has them:

- **closed**: calls go; each outcome lands in a sliding window of the last ``window_s`` seconds.
  Once the window holds at least ``min_calls`` calls, a failure rate >= ``failure_rate`` or a
  slow-call rate (calls taking >= ``slow_call_s``) >= ``slow_rate`` opens the breaker. So does a
  run of ``consecutive_failures`` failures with no success between: the window still holds the
  successes from before an outage (at 5 requests/s, 50 % of a 30 s window takes 10 s, ~50 requests
  to a dead market), while 10 failures in a row take 2 s and almost never happen by chance at the
  30 % error rate the window is there to tolerate (0.3^10 ~ 6e-6 per call).
- **open**: nothing goes (``allow`` returns None) for a wait that doubles with every open in a row,
  from ``open_base_s`` up to ``open_max_s``, jittered (``app.backoff.Backoff``, the one backoff rule).
- **half-open**: once the wait is over, one probe at a time; ``half_open_successes`` (1) good probes in
  a row close it, one failed (or slow) probe opens it again with a longer wait. One good probe is
  enough by default: it is the same answer that ends ``market_api_down`` (the API's failing streak),
  so the breaker and the outage alert clear together, and a relapse reopens it after 10 failures.

A 429 is throttling, not failure: it is neither a success nor a failure here (the shared limiter
already pauses for its ``Retry-After``), and a throttled probe just frees the probe slot. Outcomes of
calls let through in an earlier state (a slow call that started before the breaker opened) are ignored.

Why hand-written: pybreaker (``fail_max`` consecutive failures, a fixed ``reset_timeout``) and purgatory
(a consecutive-failure ``threshold``, a fixed ``ttl``) have neither a failure-rate window with a minimum
number of calls, nor a slow-call rate, nor a growing open wait, nor a way to leave 429s out; wrapping
them would leave every one of those to us anyway. Time comes from the injected ``Clock`` (monotonic),
so tests drive every state with ``ManualClock``.
"""
from __future__ import annotations

import logging
import random as _random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from app.backoff import Backoff
from app.clock import SYSTEM_CLOCK, Clock
from app.settings import Settings

log = logging.getLogger(__name__)

State = Literal["closed", "half_open", "open"]
CLOSED: State = "closed"
HALF_OPEN: State = "half_open"
OPEN: State = "open"
#: the value of ``tokenwatch_circuit_state``
STATE_VALUES: dict[str, float] = {CLOSED: 0.0, HALF_OPEN: 1.0, OPEN: 2.0}

Outcome = Literal["success", "failure", "throttled", "dropped"]
SUCCESS: Outcome = "success"      # an answer (2xx, or a 4xx other than 429: the server works)
FAILURE: Outcome = "failure"      # 5xx, timeout, refused connection, junk body
THROTTLED: Outcome = "throttled"  # 429: throttling, never a failure
DROPPED: Outcome = "dropped"      # permitted but never completed (cancelled): no evidence either way


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and how long it stays open (``from_settings``: the ``BREAKER_*`` settings)."""
    window_s: float = 30.0
    min_calls: int = 10
    failure_rate: float = 0.5
    slow_call_s: float = 10.0
    slow_rate: float = 0.8
    open_base_s: float = 5.0
    open_max_s: float = 20.0
    half_open_successes: int = 1
    consecutive_failures: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> "BreakerPolicy":
        return cls(window_s=settings.breaker_window_s, min_calls=settings.breaker_min_calls,
                   failure_rate=settings.breaker_failure_rate, slow_call_s=settings.breaker_slow_call_s,
                   open_base_s=min(cls.open_base_s, settings.breaker_open_max_s),
                   open_max_s=settings.breaker_open_max_s)


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; hand it back with ``record``."""
    endpoint: str
    generation: int  # the breaker's state generation when the call was let through
    probe: bool


@dataclass(frozen=True)
class BreakerTransition:
    endpoint: str
    before: State
    after: State
    at: float            # clock.time()
    reason: str          # the measurement behind it ("12 of 14 calls failed in 30 s")
    open_for_s: float | None = None  # the wait before the next probe, when it opened


class _Call(NamedTuple):
    at: float
    failed: bool
    slow: bool


class CircuitBreaker:
    """One endpoint's breaker (see the module docstring).

        breaker = CircuitBreaker("tokens_batch", BreakerPolicy(min_calls=4), ManualClock())
        permit = breaker.allow(); breaker.record(permit, FAILURE)
    """

    def __init__(self, endpoint: str, policy: BreakerPolicy, clock: Clock = SYSTEM_CLOCK, *,
                 random: Callable[[], float] = _random.random,
                 notify: Callable[[BreakerTransition], None] | None = None) -> None:
        self.endpoint = endpoint
        self.policy = policy
        self.clock = clock
        self._backoff = Backoff(base_s=policy.open_base_s, max_s=policy.open_max_s, random=random)
        self._notify = notify
        self._state: State = CLOSED
        self._generation = 0
        self._calls: deque[_Call] = deque()
        self._open_until = 0.0
        self._opens_in_row = 0       # opens since the last close: the exponent of the wait
        self._probe_out = False
        self._probe_successes = 0
        self._failures_in_row = 0
        self.refused = 0             # calls not made because the breaker was open
        self.opened = 0              # times it opened (lifetime)

    # --- reading --------------------------------------------------------------------
    @property
    def state(self) -> State:
        """The state; an open breaker whose wait is over reads as half-open (its next call is a probe)."""
        if self._state == OPEN and self.clock.monotonic() >= self._open_until:
            return HALF_OPEN
        return self._state

    def retry_in_s(self) -> float:
        """Seconds until a call would be let through: 0 when closed or a probe may go now."""
        if self._state == OPEN:
            return max(0.0, self._open_until - self.clock.monotonic())
        return 0.0

    def admits(self) -> bool:
        """Whether ``allow`` would let a call through now (without taking the probe slot)."""
        if self._state == CLOSED:
            return True
        if self._state == OPEN and self.clock.monotonic() < self._open_until:
            return False
        return not self._probe_out

    def window(self) -> tuple[int, int, int]:
        """(calls, failed, slow) in the closed-state window."""
        self._prune(self.clock.monotonic())
        return (len(self._calls), sum(c.failed for c in self._calls), sum(c.slow for c in self._calls))

    # --- the calls -----------------------------------------------------------------
    def allow(self) -> Permit | None:
        """A permit for one call now, or None (open; or half-open with its probe already out)."""
        if self._state == CLOSED:
            return Permit(self.endpoint, self._generation, probe=False)
        if self._state == OPEN:
            if self.clock.monotonic() < self._open_until:
                self.refused += 1
                return None
            self._move(HALF_OPEN, "open wait over: probing")
        if self._probe_out:
            self.refused += 1
            return None
        self._probe_out = True
        return Permit(self.endpoint, self._generation, probe=True)

    def record(self, permit: Permit, outcome: Outcome, latency_s: float | None = None) -> None:
        """The outcome of a permitted call (``latency_s`` when it was answered)."""
        if permit.generation != self._generation:
            return  # let through in an earlier state: its news is stale
        slow = latency_s is not None and latency_s >= self.policy.slow_call_s
        if permit.probe:
            self._probe_out = False
            if outcome in (THROTTLED, DROPPED):
                return
            if outcome == FAILURE or slow:
                what = "failed" if outcome == FAILURE else f"took {latency_s:.1f}s"
                self._open(f"probe {what}")
                return
            self._probe_successes += 1
            if self._probe_successes >= self.policy.half_open_successes:
                self._opens_in_row = 0
                n = self._probe_successes
                self._move(CLOSED, "probe answered" if n == 1 else f"{n} probes answered")
            return
        if outcome in (THROTTLED, DROPPED) or self._state != CLOSED:
            return
        now = self.clock.monotonic()
        self._calls.append(_Call(now, outcome == FAILURE, slow))
        self._prune(now)
        self._failures_in_row = self._failures_in_row + 1 if outcome == FAILURE else 0
        if self._failures_in_row >= self.policy.consecutive_failures:
            self._open(f"{self._failures_in_row} calls in a row failed")
            return
        n = len(self._calls)
        if n < self.policy.min_calls:
            return
        failed = sum(c.failed for c in self._calls)
        slow_n = sum(c.slow for c in self._calls)
        window = f"{self.policy.window_s:g} s"
        if failed / n >= self.policy.failure_rate:
            self._open(f"{failed} of {n} calls failed in {window}")
        elif slow_n / n >= self.policy.slow_rate:
            self._open(f"{slow_n} of {n} calls slower than {self.policy.slow_call_s:g} s in {window}")

    # --- transitions ---------------------------------------------------------------------
    def _open(self, reason: str) -> None:
        wait = self._backoff.delay(self._opens_in_row)
        self._opens_in_row += 1
        self._open_until = self.clock.monotonic() + wait
        self.opened += 1
        self._move(OPEN, reason, open_for_s=wait)

    def _move(self, after: State, reason: str, open_for_s: float | None = None) -> None:
        before, self._state = self._state, after
        self._generation += 1
        self._calls.clear()
        self._probe_out = False
        self._probe_successes = 0
        self._failures_in_row = 0
        if before == CLOSED and after == OPEN:
            log.warning("circuit %s opened: %s; probing again in %.1fs", self.endpoint, reason, open_for_s or 0.0)
        elif after == CLOSED:
            log.info("circuit %s closed: %s", self.endpoint, reason)
        else:
            log.debug("circuit %s %s -> %s: %s", self.endpoint, before, after, reason)
        if self._notify is not None:
            self._notify(BreakerTransition(self.endpoint, before, after, self.clock.time(), reason, open_for_s))

    def _prune(self, now: float) -> None:
        cutoff = now - self.policy.window_s
        while self._calls and self._calls[0].at < cutoff:
            self._calls.popleft()


@dataclass
class BreakerBoard:
    """The breakers of every market endpoint, created on first use, and who hears of their transitions.

        board = BreakerBoard(BreakerPolicy.from_settings(settings), clock)
        board.on_transition(lambda t: print(t.endpoint, t.after))
        board.states()     # {"tokens_batch": "closed", ...}
    """
    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    clock: Clock = SYSTEM_CLOCK
    random: Callable[[], float] = _random.random
    endpoints: tuple[str, ...] = ("tokens_batch", "token_pairs", "token_profiles")
    _breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    _listeners: list[Callable[[BreakerTransition], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in self.endpoints:
            self.get(name)

    def get(self, endpoint: str) -> CircuitBreaker:
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            breaker = self._breakers[endpoint] = CircuitBreaker(endpoint, self.policy, self.clock,
                                                                random=self.random, notify=self._tell)
        return breaker

    def on_transition(self, listener: Callable[[BreakerTransition], None]) -> None:
        self._listeners.append(listener)

    def allow(self, endpoint: str) -> Permit | None:
        return self.get(endpoint).allow()

    def record(self, permit: Permit, outcome: Outcome, latency_s: float | None = None) -> None:
        self.get(permit.endpoint).record(permit, outcome, latency_s)

    def admits(self, endpoint: str) -> bool:
        return self.get(endpoint).admits()

    def state(self, endpoint: str) -> State:
        return self.get(endpoint).state

    def states(self) -> dict[str, State]:
        return {name: b.state for name, b in sorted(self._breakers.items())}

    def _tell(self, transition: BreakerTransition) -> None:
        for listener in list(self._listeners):
            try:
                listener(transition)
            except Exception:  # a listener never breaks the client
                log.exception("breaker listener failed for %s", transition)
