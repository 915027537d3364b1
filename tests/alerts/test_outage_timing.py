"""A market API outage, measured the way the service measures it: ``ApiStats`` records each
attempt, ``ApiCollector`` turns it into samples every COLLECT_INTERVAL_S (10 s), the evaluator
observes, and ``fired`` applies ``for``/``keep_firing_for``. The shipped market_api_down rule
must fire within 90 s of the outage's start and clear within 30 s of recovery (the engine adds
its own debounce on top of neither), and a brief blip must not fire it.
"""
from __future__ import annotations

import pytest

from alerts.evaluate import Evaluator
from alerts.rules import load_rules
from app.clock import ManualClock
from monitoring.collectors.api import ApiCollector
from tests.alerts.scenario import Cycle, fired, make_snapshot
from tokens.api_stats import ApiStats

RULES = load_rules()
RULE = RULES["market_api_down"]


async def drive(clock: ManualClock, failing: "callable", seconds: float, request_every_s: float,
                outage_mode: str) -> list[Cycle]:
    """Requests every ``request_every_s`` (failing while ``failing(t)``), a collection every 10 s."""
    stats = ApiStats(clock=clock)
    collector = ApiCollector(stats.snapshot)
    evaluator = Evaluator(RULES)
    start = clock.time()
    cycles: list[Cycle] = []
    next_request = next_collect = 0.0
    step = 0.5
    t = 0.0
    while t <= seconds:
        if t >= next_request:
            if failing(t):
                if outage_mode == "timeout":
                    stats.record("tokens_batch", timeout=True)
                else:
                    stats.record("tokens_batch", latency_s=0.01, status=503)
            else:
                stats.record("tokens_batch", latency_s=0.05, status=200)
            next_request += request_every_s
        if t >= next_collect:
            now = clock.time()
            values = {(s.name, s.labels_key): s.value for s in await collector.collect(now)}
            cycles.append(Cycle(now, await evaluator.evaluate(make_snapshot(now, values), now)))
            next_collect += 10.0
        clock.advance(step)
        t = clock.time() - start
    return cycles


@pytest.mark.parametrize("mode,request_every_s", [("503", 2.0), ("503", 10.0), ("timeout", 10.0)])
async def test_outage_fires_within_90s_and_clears_within_30s(clock: ManualClock, mode: str,
                                                               request_every_s: float) -> None:
    start = clock.time()
    outage = (60.0, 360.0)
    cycles = await drive(clock, lambda t: outage[0] <= t < outage[1], 480, request_every_s, mode)
    times = fired(cycles, RULE)
    assert len(times) == 1, times
    fired_at, resolved_at = times[0]
    assert resolved_at is not None
    assert fired_at - (start + outage[0]) <= 90.0
    assert resolved_at - (start + outage[1]) <= 30.0
    first = next(o for c in cycles for o in c.of(RULE.name) if o.breached)
    assert RULE.summary.format_map(first.context).startswith("Market API down: every request to tokens_batch has failed for")


async def test_a_blip_of_failures_fires_nothing(clock: ManualClock) -> None:
    cycles = await drive(clock, lambda t: 60 <= t < 72, 300, 2.0, "503")
    assert fired(cycles, RULE) == []


async def test_one_request_failing_now_and_then_is_not_an_outage(clock: ManualClock) -> None:
    """A rarely used endpoint failing twice, minutes apart, with nothing in between."""
    cycles = await drive(clock, lambda t: t < 200, 600, 120.0, "503")
    assert fired(cycles, RULE) == []
