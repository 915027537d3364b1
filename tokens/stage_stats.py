"""Per-stage timings and queue sizes of the pipeline, so monitoring can name a stalled
stage or the bottleneck.

Stages: ``discovery``, ``fetch``, ``scoring``, ``db_write``, ``scheduler``::

    stages = StageStats(clock)
    with stages.time("fetch"):
        await client.fetch_batch(mints)
    stages.set_queue("scheduler", due_count)
    snap = stages.snapshot()["fetch"]      # StageSnapshot(count, last_at, p50_s, p95_s, queue_size)
"""
from __future__ import annotations

import statistics
import time as _time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from app.clock import SYSTEM_CLOCK, Clock
from app.percentiles import percentile

STAGES = ("discovery", "fetch", "scoring", "db_write", "scheduler")
DURATION_SAMPLES = 500


@dataclass
class Stage:
    name: str
    count: int = 0
    last_at: float | None = None  # wall-clock epoch seconds of the last completed unit of work
    queue_size: int = 0
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=DURATION_SAMPLES))


@dataclass(frozen=True)
class StageSnapshot:
    name: str
    count: int
    last_at: float | None
    queue_size: int
    p50_s: float | None
    p95_s: float | None
    mean_s: float | None
    busy_s: float  # sum of the recent durations: where the time goes


class StageStats:
    """Counters per pipeline stage.

        stages = StageStats()
        stages.record("db_write", 0.004, items=30)
        stages.snapshot()["db_write"].count   # 30
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self.stages: dict[str, Stage] = {name: Stage(name) for name in STAGES}

    def _get(self, name: str) -> Stage:
        if name not in self.stages:
            self.stages[name] = Stage(name)
        return self.stages[name]

    def record(self, name: str, duration_s: float, *, items: int = 1) -> None:
        stage = self._get(name)
        stage.count += items
        stage.last_at = self._clock.time()
        stage.durations.append(max(0.0, duration_s))

    def set_queue(self, name: str, size: int) -> None:
        self._get(name).queue_size = max(0, int(size))

    @contextmanager
    def time(self, name: str, *, items: int = 1) -> Iterator[None]:
        start = _time.perf_counter()  # real durations even under a ManualClock
        try:
            yield
        finally:
            self.record(name, _time.perf_counter() - start, items=items)

    def snapshot(self) -> dict[str, StageSnapshot]:
        out: dict[str, StageSnapshot] = {}
        for name, s in self.stages.items():
            d = sorted(s.durations)
            out[name] = StageSnapshot(
                name=name, count=s.count, last_at=s.last_at, queue_size=s.queue_size,
                p50_s=percentile(d, 0.5), p95_s=percentile(d, 0.95),
                mean_s=statistics.fmean(d) if d else None, busy_s=sum(d),
            )
        return out
