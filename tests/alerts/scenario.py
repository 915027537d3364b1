"""Crafted snapshot sequences for the rule tests: a healthy service, plus what a test overrides.

    run = Run(Evaluator(load_rules()))
    cycles = await run.for_minutes(30, lambda t: {series(m.DB_UP): 0.0} if t > 60 else {})
    fired(cycles, rules["database_down"])      # [(fire_at, resolve_at | None), ...]

``fired`` applies a rule's ``for`` and ``keep_firing_for`` to its observations, as the engine
does, so a test can say "this sequence fires that rule" rather than "one cycle breached".
"""
from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from alerts.evaluate import Evaluator
from alerts.observation import Observation
from alerts.rules import Rule
from monitoring import metric_names as m
from monitoring.pipeline.activation import ActivationSuccess
from monitoring.pipeline.lag import LagReport
from monitoring.pipeline.percentiles import Distribution
from monitoring.pipeline.snapshot import PipelineSnapshot
from monitoring.pipeline.stages import BottleneckReport, StallReport
from monitoring.sample import Sample, canonical_labels
from monitoring.snapshot import MonitoringSnapshot

START = 1_700_000_000.0
INTERVAL_S = 10.0
MIB = 1024.0 ** 2
ENDPOINTS = ("tokens_batch", "token_pairs", "token_profiles")
JOBS = ("monitoring.collect", "pipeline.process")

Key = tuple[str, str]


def series(name: str, **labels: str) -> Key:
    return (name, canonical_labels(labels))


def healthy(t: float, rng: random.Random) -> dict[Key, float]:
    """One cycle of a healthy service ``t`` seconds into the run (small seeded noise)."""
    jitter = rng.uniform
    out: dict[Key, float] = {}
    for endpoint in ENDPOINTS:
        out[series(m.API_FAILING_SECONDS, endpoint=endpoint)] = 0.0
        out[series(m.CIRCUIT_STATE, endpoint=endpoint)] = 0.0
        out[series(m.API_ERROR_RATE, endpoint=endpoint)] = jitter(0.0, 0.03)
        out[series(m.API_RATE_LIMITED_TOTAL, endpoint=endpoint)] = float(int(t // 600))  # one 429 every 10 min
        out[series(m.API_LATENCY_P95_SECONDS, endpoint=endpoint)] = jitter(0.05, 0.6)
    out[series(m.DISCOVERY_SILENCE_SECONDS, source="pumpportal")] = jitter(0.0, 9.0)
    out[series(m.PIPELINE_STALLED)] = 0.0
    out[series(m.DUE_TOKENS, band="hot")] = float(rng.randint(0, 40))
    out[series(m.DUE_TOKENS, band="cold")] = float(rng.randint(0, 80))
    out[series(m.STUCK_TOKENS)] = float(rng.randint(0, 4))
    out[series(m.ACTIVATION_SUCCESS_RATE)] = jitter(0.2, 0.4)
    out[series(m.PROCESS_MEMORY_SHARE)] = jitter(0.25, 0.35)
    out[series(m.PROCESS_RESIDENT_BYTES)] = 300 * MIB + jitter(-5, 5) * MIB
    out[series(m.PROCESS_MEMORY_LIMIT_BYTES)] = 1024 * MIB
    out[series(m.MEMORY_LEAK_BYTES_PER_MINUTE)] = 0.0
    out[series(m.PROCESS_CPU_PERCENT)] = jitter(5.0, 60.0)
    out[series(m.LOOP_LAG_P95_SECONDS)] = jitter(0.001, 0.05)
    out[series(m.DB_UP)] = 1.0
    out[series(m.DB_PING_SECONDS)] = jitter(0.001, 0.02)
    out[series(m.REDIS_UP)] = 1.0
    for job in JOBS:
        out[series(m.JOB_ERRORS_TOTAL, job=job)] = 0.0
        out[series(m.JOB_TIMEOUTS_TOTAL, job=job)] = 0.0
    out[series(m.WATCHDOG_GAVE_UP, kind="job", id="pipeline.process")] = 0.0
    out[series(m.TELEGRAM_OUTAGE_SECONDS)] = 0.0
    out[series(m.TELEGRAM_UNAUTHORIZED)] = 0.0
    out[series(m.OUTBOX_OLDEST_PENDING_SECONDS)] = jitter(0.0, 3.0)
    return out


def pipeline_snapshot(now: float, *, stalled: bool = False, stage: str | None = None, reason: str | None = None,
                      silent_for_s: float | None = None, stuck: int = 0,
                      stuck_by_reason: Mapping[str, int] | None = None) -> PipelineSnapshot:
    """A pipeline snapshot with the stall evidence and stuck counts a test sets."""
    stall = StallReport(stalled, 30.0, silent_for_s=silent_for_s, stage=stage, stage_reason=reason)
    return PipelineSnapshot(now, {"monitoring": 10, "active": 3}, {}, {}, LagReport(), stuck,
                            ActivationSuccess(3600.0), Distribution(), now - 5, [], stall,
                            BottleneckReport(None, None), stuck_by_reason=dict(stuck_by_reason or {}))


def make_snapshot(at: float, values: Mapping[Key, float], cycle: int = 0,
                  pipeline: PipelineSnapshot | None = None, stale: Mapping[Key, float] | None = None) -> MonitoringSnapshot:
    """A snapshot whose samples are ``values`` (taken at ``at``) plus ``stale`` ones (taken earlier)."""
    samples: dict[Key, Sample] = {}
    for (name, key), value in values.items():
        samples[(name, key)] = Sample(name, value, _labels(key), at)
    for (name, key), ts in (stale or {}).items():
        samples[(name, key)] = Sample(name, 0.0, _labels(key), ts)
    return MonitoringSnapshot(at=at, cycle=cycle, rate_window_s=60.0, collect_interval_s=INTERVAL_S,
                              samples=samples, pipeline=pipeline)


def _labels(key: str) -> dict[str, str]:
    from monitoring.sample import parse_labels

    return parse_labels(key)


Overrides = Callable[[float], Mapping[Key, float]]


@dataclass
class Cycle:
    at: float
    observations: list[Observation]

    def of(self, rule: str) -> list[Observation]:
        return [o for o in self.observations if o.rule == rule]


class Run:
    """Feeds an evaluator one snapshot per ``INTERVAL_S`` from ``start``."""

    def __init__(self, evaluator: Evaluator, *, start: float = START, seed: int = 7) -> None:
        self.evaluator = evaluator
        self.start = start
        self.now = start
        self.cycle = 0
        self.rng = random.Random(seed)

    async def step(self, overrides: Overrides | None = None,
                   pipeline: Callable[[float], PipelineSnapshot | None] | None = None) -> Cycle:
        t = self.now - self.start
        values = healthy(t, self.rng)
        if overrides is not None:
            values.update(overrides(t))
        snap = make_snapshot(self.now, values, self.cycle, pipeline(self.now) if pipeline else None)
        cycle = Cycle(self.now, await self.evaluator.evaluate(snap, self.now))
        self.now += INTERVAL_S
        self.cycle += 1
        return cycle

    async def for_minutes(self, minutes: float, overrides: Overrides | None = None,
                          pipeline: Callable[[float], PipelineSnapshot | None] | None = None) -> list[Cycle]:
        return [await self.step(overrides, pipeline) for _ in range(int(minutes * 60 / INTERVAL_S))]


def fired(cycles: list[Cycle], rule: Rule) -> list[tuple[float, float | None]]:
    """``(fired_at, resolved_at)`` of every time ``rule`` fired on any series, applying ``for``
    (breached that long) and ``keep_firing_for`` (clear that long), as the engine does."""
    pending: dict[str, float] = {}
    firing: dict[str, int] = {}  # fingerprint -> index in out
    clear_since: dict[str, float] = {}
    out: list[tuple[float, float | None]] = []
    for cycle in cycles:
        for obs in cycle.of(rule.name):
            fp = obs.fingerprint
            if obs.breached:
                clear_since.pop(fp, None)
                if fp not in firing:
                    since = pending.setdefault(fp, cycle.at)
                    if cycle.at - since >= rule.for_s:
                        firing[fp] = len(out)
                        out.append((cycle.at, None))
                        pending.pop(fp, None)
                continue
            pending.pop(fp, None)
            if fp in firing:
                since = clear_since.setdefault(fp, cycle.at)
                if cycle.at - since >= rule.keep_firing_for_s:
                    index = firing.pop(fp)
                    out[index] = (out[index][0], cycle.at)
                    clear_since.pop(fp, None)
    return out
