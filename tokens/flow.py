"""What the processor tells a flow controller, and the hook it calls (tokens never imports recovery).

After every batch the processor hands a ``BatchSample`` to its ``FlowHook``; after every run a
``RunSample``. A controller (``recovery.flow.FlowController``, wired by the composition root)
turns them into the in-flight limit and the batch size, which it sets through the knob registry::

    processor.flow = controller            # anything with batch_done() and run_done()
    await processor.run_once()             # -> controller.batch_done(BatchSample(...)) per batch
                                           # -> controller.run_done(RunSample(...)) once per run

The request outcomes of a batch (429s, timeouts, 5xx) are counted where every attempt is already
recorded, ``ApiStats.record``, into the ``RequestTally`` of the task that made them
(``tokens.api_stats.tally_requests``), so the client needs no change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class BatchSample:
    """One finished batch."""

    at: float              # clock.monotonic() when it ended
    tokens: int
    hold_s: float          # how long it held its in-flight slot (fetch, retries, scoring, write)
    fetch_s: float         # the fetch alone, retries included
    ok: bool               # the batch request succeeded (after its retries)
    attempts: int          # HTTP attempts it made (batch request, retries, per-token fallbacks)
    rate_limited: int      # 429s among them
    timeouts: int
    errors: int            # 5xx, connection errors, unreadable bodies
    inflight: int          # batches in flight when it ended (itself included)
    timeout_s: float       # the batch request's timeout in force

    @property
    def dropped(self) -> bool:
        """A drop in the sense of concurrency limiters: a 429, a timeout or a server error."""
        return bool(self.rate_limited or self.timeouts or self.errors)


@dataclass(frozen=True)
class RunSample:
    """One run of the processor (about once per ``PROCESS_INTERVAL_S``)."""

    at: float              # clock.monotonic() at its end
    due: int               # tokens due when it began
    inflight: int          # batches in flight at its end
    limit: int             # the in-flight limit in force
    batch_size: int
    rate_per_s: float      # the request limiter's pace (the ceiling)
    burst: int             # requests the limiter lets go early after a gap
    slot_waits: int        # times the run waited for a free in-flight slot (the limit held it back)
    backlogged: bool       # more was due than the ceiling allows in one run
    fetch_age_s: float = 0.0   # median age of the batches still at the market (0: none); a lower bound
                               # on their hold time, seen before any of them answers


class FlowHook(Protocol):
    def batch_done(self, sample: BatchSample) -> None: ...
    def run_done(self, sample: RunSample) -> None: ...
