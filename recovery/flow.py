"""The flow controller: the processor's in-flight limit (knob ``fetch_concurrency``) from the AIMD law
(``recovery.concurrency``) and its batch size (knob ``batch_size``) from ``recovery.batching``, both fed
by the processor's flow hook (``tokens.flow``).

Every finished batch is a sample for the law (which moves a float at once); the knob follows the law
at most once per ``min_interval_s`` (the processor runs about once a second), and only for a move that
matters: at least ``max(1, deadband x current)`` (10 %), so a limit hovering between 14 and 15 records
nothing, while a drop from 20 to 9 is one action with its reason. Everything goes through
``registry.adjust(controller="aimd", ...)``; a knob pinned by an operator is left alone, and the law
takes the pinned value as its own, so releasing the pin continues from there. The batch size moves
the same way, as ``controller="batch"``::

    controller = wire_flow(ctx.knobs, pipeline.processor)     # registers the knob, sets processor.flow
    controller.snapshot()      # {"limit": 14.6, "need": 11.7, "ceiling": 18, "hold_s": 2.4}
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from recovery.batching import BatchSizeLaw
from recovery.concurrency import AimdLimit
from recovery.knobs import Knob, KnobRegistry

log = logging.getLogger(__name__)

CONCURRENCY_KNOB = "fetch_concurrency"
BATCH_KNOB = "batch_size"
AIMD = "aimd"
BATCH = "batch"
SLOW_SHARE = 0.8  # an answer slower than this share of the timeout counts as a drop (about to time out)


class BatchSampleLike(Protocol):
    """What the controller reads of ``tokens.flow.BatchSample``."""

    @property
    def at(self) -> float: ...
    @property
    def tokens(self) -> int: ...
    @property
    def hold_s(self) -> float: ...
    @property
    def fetch_s(self) -> float: ...
    @property
    def ok(self) -> bool: ...
    @property
    def timeouts(self) -> int: ...
    @property
    def rate_limited(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def inflight(self) -> int: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def dropped(self) -> bool: ...


class RunSampleLike(Protocol):
    """What the controller reads of ``tokens.flow.RunSample``."""

    @property
    def at(self) -> float: ...
    @property
    def rate_per_s(self) -> float: ...
    @property
    def burst(self) -> int: ...
    @property
    def inflight(self) -> int: ...
    @property
    def fetch_age_s(self) -> float: ...


class FlowTarget(Protocol):
    """The processor, as the flow controller turns it."""

    def limit(self) -> int: ...
    def set_limit(self, value: int) -> None: ...
    def batch_size(self) -> int: ...
    def set_batch_size(self, value: int) -> None: ...


@dataclass
class _Window:
    """What happened since the last move of the knob, for the action's reason."""

    batches: int = 0
    drops: int = 0
    slow: int = 0
    failed: int = 0
    timeouts: int = 0
    max_inflight: int = 0
    max_fetch_s: float = 0.0

    def add(self, sample: "BatchSampleLike", slow: bool) -> None:
        self.batches += 1
        self.drops += int(sample.dropped)
        self.slow += int(slow and not sample.dropped)
        self.failed += int(not sample.ok)
        self.timeouts += int(sample.timeouts > 0)
        self.max_inflight = max(self.max_inflight, sample.inflight)
        self.max_fetch_s = max(self.max_fetch_s, sample.fetch_s)


def matters(current: float, target: float, deadband: float) -> bool:
    """A move worth an action: at least 1, and at least ``deadband`` of the current value."""
    return abs(target - current) >= max(1.0, deadband * abs(current))


class FlowController:
    """Implements ``tokens.flow.FlowHook`` (see the module docstring).

        controller = FlowController(knobs, rate_per_s=lambda: 4.85)
        controller.batch_done(sample); controller.run_done(run)
    """

    def __init__(self, knobs: KnobRegistry, *, law: AimdLimit | None = None, batch_law: BatchSizeLaw | None = None,
                 min_interval_s: float = 1.0, deadband: float = 0.1, slow_share: float = SLOW_SHARE) -> None:
        self.knobs = knobs
        self.law = law or AimdLimit(initial=knobs.value(CONCURRENCY_KNOB))
        self.batch_law = batch_law or BatchSizeLaw(initial=knobs.value(BATCH_KNOB))
        self.min_interval_s = min_interval_s
        self.deadband = deadband
        self.slow_share = slow_share
        self._rate_per_s = 0.0
        self._burst = 0
        self._last_move_at: dict[str, float] = {}
        self._window = _Window()  # since the last move of the concurrency knob
        self._batch_window = _Window()  # since the last move of the batch size

    def batch_done(self, sample: BatchSampleLike) -> None:
        slow = sample.ok and sample.fetch_s > self.slow_share * sample.timeout_s
        self._window.add(sample, slow)
        self._batch_window.add(sample, slow)
        drops = sample.rate_limited + sample.timeouts + sample.errors
        self.law.update(inflight=sample.inflight, dropped=drops, slow=slow, hold_s=sample.hold_s,
                        rate_per_s=self._rate_per_s, burst=self._burst)
        self.batch_law.update(ok=sample.ok, timed_out=sample.timeouts > 0, fetch_s=sample.fetch_s,
                              timeout_s=sample.timeout_s)

    def run_done(self, sample: RunSampleLike) -> None:
        self._rate_per_s, self._burst = sample.rate_per_s, sample.burst
        self.law.observe_waiting(sample.fetch_age_s, inflight=sample.inflight, rate_per_s=sample.rate_per_s,
                                 burst=sample.burst)
        if self._move(CONCURRENCY_KNOB, self.law.limit, self.law.reset, AIMD, self._reason, sample.at):
            self._window = _Window()
        if self._move(BATCH_KNOB, self.batch_law.size, self.batch_law.reset, BATCH, self._batch_reason, sample.at):
            self._batch_window = _Window()

    def _move(self, name: str, value: float, reset: Callable[[float], None], controller: str,
              reason: Callable[[], str], at: float) -> bool:
        """Set knob ``name`` to the law's ``value`` if the move matters and the last one is old enough."""
        last = self._last_move_at.get(name)
        if last is not None and at - last < self.min_interval_s:
            return False
        current = self.knobs.value(name)
        if self.knobs.pinned(name) is not None:
            reset(current)  # the operator's value is the law's, until released
            return False
        target = float(math.floor(value + 0.5))
        if not matters(current, target, self.deadband):
            return False
        self._last_move_at[name] = at
        return self.knobs.adjust(name, target, controller=controller, reason=reason()) is not None

    def _batch_reason(self) -> str:
        w = self._batch_window
        return (f"{w.failed} failed, {w.timeouts} timed out, {w.slow} slow in {w.batches} batches; "
                f"slowest answer {w.max_fetch_s:.2g} s")

    def _reason(self) -> str:
        w = self._window
        need = self.law.need(self._rate_per_s)
        parts = [f"{w.drops} drops, {w.slow} slow in {w.batches} batches", f"up to {w.max_inflight} in flight"]
        if need is not None and self.law.hold_s is not None:
            parts.append(f"batch {self.law.hold_s:.2g} s x {self._rate_per_s * 60:.0f}/min "
                         f"= {need:.1f} needed in flight")
        return "; ".join(parts)

    def snapshot(self) -> dict:
        return {"limit": round(self.law.limit, 2), "batch_size": round(self.batch_law.size, 2),
                "need": self.law.need(self._rate_per_s),
                "ceiling": self.law.ceiling(self._rate_per_s, self._burst) if self._rate_per_s else None,
                "hold_s": self.law.hold_s}


def register_flow_knobs(knobs: KnobRegistry, target: FlowTarget, *, maximum: int = 64) -> None:
    """The knobs the flow controller turns (the operator may pin them with /tune)."""
    knobs.register(Knob(CONCURRENCY_KNOB, "count", 1, maximum, target.limit,
                        lambda v: target.set_limit(int(v)), integer=True,
                        help="market requests (batches) in flight at once"))
    knobs.register(Knob(BATCH_KNOB, "count", 1, 30, target.batch_size,
                        lambda v: target.set_batch_size(int(v)), integer=True,
                        help="tokens per market request"))


def wire_flow(knobs: KnobRegistry, target: FlowTarget, **kwargs: object) -> FlowController:
    """Register the flow knobs on ``knobs`` and return the controller; the caller sets
    ``processor.flow = controller`` (the composition root does, in ``recovery.setup``)."""
    register_flow_knobs(knobs, target)
    return FlowController(knobs, **kwargs)  # type: ignore[arg-type]
