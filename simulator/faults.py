"""Faults the local market can inject into its DexScreener endpoints and websocket.

One ``FaultController`` per market, changed from Python, from ``POST /admin/faults``
or from a scenario file. Every change is validated as a whole first, so a bad
request changes nothing and says which field is wrong::

    faults = FaultController(seed=1)
    faults.set(latency_ms=200, jitter_ms=50, error_rate=0.1, error_codes=[502, 503])
    faults.set(storm_s=30, storm_retry_after_s=5)   # every request 429 for 30 s
    faults.set(outage=True, outage_mode="503")       # everything 503 until outage=False
    faults.reset()

Fields (all optional in ``set``/``update``):

==========================  =====================================================
``latency_ms``/``jitter_ms``  added delay per response: fixed + uniform(0, jitter)
``error_rate``/``error_codes`` share of responses answered with one of the codes (429: with Retry-After 1 s)
``storm_s``/``storm_retry_after_s``  429 storm: every request 429 for ``storm_s`` s
``retry_after_form``          how 429s say when to retry: ``"seconds"`` (``Retry-After: 5``) or
                              ``"http_date"`` (``Retry-After: Wed, 21 Oct 2015 07:28:05 GMT``)
``malformed_rate``            share of 200 responses with truncated/broken JSON
``empty_rate``                share of 200 responses with an empty body
``hang_rate``                 share of requests never answered (until the client gives up)
``outage``/``outage_mode``    full outage: ``"refuse"`` (connections refused) or ``"503"``
``outage_s``                  end the outage by itself after this many seconds
==========================  =====================================================

Storm expiry runs on the injected clock (``ManualClock`` in tests); ``outage_s``
is handled by the market with a real timer.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from typing import Any, Callable, Literal

from app.clock import SYSTEM_CLOCK, Clock

ALLOWED_ERROR_CODES = frozenset({429, 500, 502, 503, 504, 520, 522})  # 429: throttled, with Retry-After: 1
OutageMode = Literal["refuse", "503"]
ResponseFault = Literal["hang", "error", "malformed", "empty"]
RetryAfterForm = Literal["seconds", "http_date"]


class FaultError(ValueError):
    """An invalid fault setting; the message names the field."""


@dataclass
class FaultState:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_codes: list[int] = field(default_factory=lambda: [500, 502, 503])
    storm_retry_after_s: int = 5
    storm_until: float | None = None  # clock.monotonic() when the storm ends
    retry_after_form: RetryAfterForm = "seconds"
    malformed_rate: float = 0.0
    empty_rate: float = 0.0
    hang_rate: float = 0.0
    outage: bool = False
    outage_mode: OutageMode = "503"


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise FaultError(f"{name} must be a number within [0, 1], got {value!r}")
    return float(value)


def _non_negative(name: str, value: Any, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= limit:
        raise FaultError(f"{name} must be a number within [0, {limit:g}], got {value!r}")
    return float(value)


class FaultController:
    """Holds the current faults and draws, per request, which one fires.

    Example::

        faults = FaultController(seed=3, clock=ManualClock())
        faults.update({"error_rate": 1.0, "error_codes": [503]})
        assert faults.draw_response_fault() == ("error", 503)
    """

    FIELDS = (
        "latency_ms", "jitter_ms", "error_rate", "error_codes", "storm_s", "storm_retry_after_s",
        "malformed_rate", "empty_rate", "hang_rate", "outage", "outage_mode", "outage_s", "retry_after_form",
    )

    def __init__(self, seed: int = 0, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.state = FaultState()
        self._rng = random.Random(f"faults:{seed}")
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    # -- changing ----------------------------------------------------------------
    def add_listener(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """``callback(changes)`` runs after every applied change (changes already validated)."""
        self._listeners.append(callback)

    def validate(self, changes: Any) -> dict[str, Any]:
        """Check a change set without applying it; returns it normalised."""
        if not isinstance(changes, dict):
            raise FaultError("faults must be a JSON object")
        unknown = sorted(set(changes) - set(self.FIELDS))
        if unknown:
            raise FaultError(f"unknown fault field(s): {', '.join(map(str, unknown))}; "
                             f"known: {', '.join(self.FIELDS)}")
        out: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("latency_ms", "jitter_ms"):
                out[key] = _non_negative(key, value, 600_000)
            elif key in ("error_rate", "malformed_rate", "empty_rate", "hang_rate"):
                out[key] = _rate(key, value)
            elif key == "error_codes":
                if (not isinstance(value, list) or not value
                        or any(isinstance(c, bool) or c not in ALLOWED_ERROR_CODES for c in value)):
                    raise FaultError(f"error_codes must be a non-empty list of "
                                     f"{sorted(ALLOWED_ERROR_CODES)}, got {value!r}")
                out[key] = [int(c) for c in value]
            elif key == "storm_s":
                out[key] = _non_negative(key, value, 86_400)
            elif key == "storm_retry_after_s":
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3600:
                    raise FaultError(f"storm_retry_after_s must be an integer within [0, 3600], got {value!r}")
                out[key] = value
            elif key == "outage":
                if not isinstance(value, bool):
                    raise FaultError(f"outage must be true or false, got {value!r}")
                out[key] = value
            elif key == "outage_mode":
                if value not in ("refuse", "503"):
                    raise FaultError(f"outage_mode must be \"refuse\" or \"503\", got {value!r}")
                out[key] = value
            elif key == "outage_s":
                out[key] = _non_negative(key, value, 86_400)
            elif key == "retry_after_form":
                if value not in ("seconds", "http_date"):
                    raise FaultError(f"retry_after_form must be \"seconds\" or \"http_date\", got {value!r}")
                out[key] = value
        return out

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate then apply ``changes`` atomically; returns the new snapshot."""
        clean = self.validate(changes)
        state = self.state
        for key, value in clean.items():
            if key == "storm_s":
                state.storm_until = self.clock.monotonic() + value if value > 0 else None
            elif key == "outage_s":
                continue  # a timer owned by the market
            else:
                setattr(state, key, value)
        if "outage_s" in clean and "outage" not in clean:
            clean["outage"] = state.outage = True
        for callback in list(self._listeners):
            callback(clean)
        return self.snapshot()

    def set(self, **changes: Any) -> dict[str, Any]:
        """Keyword form of ``update``."""
        return self.update(changes)

    def reset(self) -> dict[str, Any]:
        """Back to a healthy market (also ends storms and outages)."""
        was_out = self.state.outage
        self.state = FaultState()
        for callback in list(self._listeners):
            callback({"reset": True, "outage": False} if was_out else {"reset": True})
        return self.snapshot()

    # -- reading -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The current faults as JSON-able data (``storm_remaining_s`` instead of a deadline)."""
        data = asdict(self.state)
        until = data.pop("storm_until")
        data["storm_remaining_s"] = max(0.0, until - self.clock.monotonic()) if until else 0.0
        return data

    @property
    def outage(self) -> OutageMode | None:
        """The outage mode while there is one, else None."""
        return self.state.outage_mode if self.state.outage else None

    def storm_retry_after(self) -> int | None:
        """Retry-After seconds while a 429 storm lasts, else None."""
        until = self.state.storm_until
        if until is None:
            return None
        if self.clock.monotonic() >= until:
            self.state.storm_until = None
            return None
        return self.state.storm_retry_after_s

    def retry_after_header(self, seconds: float) -> str:
        """The ``Retry-After`` value for a 429 that wants ``seconds``, in the configured form
        (an HTTP date is rounded up to the next whole second, on the injected clock)."""
        if self.state.retry_after_form == "http_date":
            return formatdate(math.ceil(self.clock.time() + seconds), usegmt=True)
        return str(seconds)

    def latency_s(self) -> float:
        """The delay to add before this response."""
        state = self.state
        delay = state.latency_ms
        if state.jitter_ms:
            delay += self._rng.uniform(0.0, state.jitter_ms)
        return delay / 1000.0

    def malformed_body(self, body: bytes) -> bytes:
        """A body that claims to be JSON and is not: truncated, HTML, or broken syntax."""
        kind = self._rng.randrange(3)
        if kind == 0 and len(body) > 2:
            return body[: max(1, len(body) // 2)]
        if kind == 1:
            return b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
        return b'{"schemaVersion": "1.0.0", "pairs": [{"chainId": "solana",, NaN ]'

    def draw_response_fault(self) -> tuple[ResponseFault, int] | None:
        """Which response fault (if any) fires for this request: (kind, status)."""
        state = self.state
        if state.hang_rate and self._rng.random() < state.hang_rate:
            return ("hang", 0)
        if state.error_rate and self._rng.random() < state.error_rate:
            return ("error", self._rng.choice(state.error_codes))
        if state.malformed_rate and self._rng.random() < state.malformed_rate:
            return ("malformed", 200)
        if state.empty_rate and self._rng.random() < state.empty_rate:
            return ("empty", 200)
        return None
