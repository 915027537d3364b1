"""Knobs for the controls the pipeline offers today: the per-endpoint API timeouts and the batch size.

    register_api_timeouts(registry, pipeline.timeouts)       # timeout:tokens_batch, timeout:token_pairs, ...
    register_batch_size(registry, pipeline.processor)        # batch_size

Each is one small function so that another controller's registration of the same knob (the RTO
timer registers the timeouts too) merges as one call.
"""
from __future__ import annotations

from collections.abc import Iterable

from recovery.controllers import BatchSizeControl, TimeoutControl
from recovery.knobs import Knob, KnobRegistry

API_ENDPOINTS = ("tokens_batch", "token_pairs", "token_profiles")  # tokens.dexscreener's endpoint names
TIMEOUT_MIN_S = 0.5
TIMEOUT_MAX_S = 30.0


def timeout_knob(endpoint: str) -> str:
    return f"timeout:{endpoint}"


def register_api_timeouts(knobs: KnobRegistry, timeouts: TimeoutControl, endpoints: Iterable[str] = API_ENDPOINTS,
                          *, min_s: float = TIMEOUT_MIN_S, max_s: float = TIMEOUT_MAX_S) -> list[str]:
    """One ``timeout:<endpoint>`` knob (seconds) per endpoint; returns their names."""
    names = []
    for endpoint in endpoints:
        def get(e: str = endpoint) -> float:
            return timeouts.timeout_s(e)

        def set_(value: float, e: str = endpoint) -> None:
            timeouts.set_timeout_s(e, value)

        name = timeout_knob(endpoint)
        knobs.register(Knob(name, "s", min_s, max_s, get, set_,
                            help=f"how long a request to {endpoint} may take before it counts as a timeout"))
        names.append(name)
    return names


def register_batch_size(knobs: KnobRegistry, batches: BatchSizeControl, *, maximum: int = 30) -> str:
    """``batch_size``: tokens asked for in one market request (1..30, the market's own limit)."""
    knobs.register(Knob("batch_size", "count", 1, maximum, lambda: float(batches.batch_size()),
                        lambda v: batches.set_batch_size(int(v)), help="tokens fetched in one market request",
                        integer=True))
    return "batch_size"
