"""Predicted exhaustion from the metric store's history (Theil-Sen), on SQLite and PostgreSQL:
the message says when, the store is read at most once a minute, a start-up ramp is no trend."""
from __future__ import annotations

import time

from alerts.evaluate import Evaluator
from alerts.rules import load_rules
from app.clock import ManualClock
from app.db import Database
from monitoring import metric_names as m
from monitoring.sample import Sample
from monitoring.store import MetricStore
from tests.alerts.scenario import MIB, make_snapshot, series

RULES = load_rules()
MEM = RULES["memory_exhaustion_predicted"]
BACKLOG = RULES["backlog_exhaustion_predicted"]
LIMIT = 1024 * MIB


async def fill(store: MetricStore, start: float, seconds: float, value, every_s: float = 30.0) -> None:
    samples = []
    t = 0.0
    while t <= seconds:
        samples += [Sample(name, v, labels, start + t) for name, labels, v in value(t)]
        t += every_s
    await store.write(samples)


def memory(per_s: float, spike_every: int = 0):
    def value(t: float):
        resident = 400 * MIB + per_s * t
        if spike_every and int(t / 30) % spike_every == 0:
            resident += 300 * MIB  # garbage-collector spikes: Theil-Sen ignores them
        return [(m.PROCESS_RESIDENT_BYTES, {}, resident), (m.PROCESS_MEMORY_LIMIT_BYTES, {}, LIMIT)]
    return value


def now_values(store_value):
    return {series(name, **labels): v for name, labels, v in store_value}


async def test_a_steady_climb_predicts_when_memory_runs_out(db: Database, clock: ManualClock) -> None:
    start = clock.time()
    climb = 20 * MIB / 600  # 20 MiB per 10 minutes
    await fill(MetricStore(db, clock, settle_s=0), start, 7200, memory(climb, spike_every=7))
    clock.set(start + 7200)
    now = clock.time()
    evaluator = Evaluator(RULES, store=MetricStore(db, clock, settle_s=0))
    obs = [o for o in await evaluator.evaluate(make_snapshot(now, now_values(memory(climb)(7200))), now)
           if o.rule == MEM.name][0]
    # 640 MiB now (400 + 240), 384 MiB to go at 2 MiB/min: 192 minutes
    assert obs.value is not None and abs(obs.value - 192 * 60) < 5 * 60
    assert obs.breached  # within the 6 h threshold
    expected = time.strftime("%Y-%m-%d %H:%M", time.gmtime(now + obs.value))
    text = MEM.summary.format_map(obs.context)
    assert text.startswith("Memory will run out in 3h 1") or text.startswith("Memory will run out in 3h 0"), text
    assert f"(around {expected} UTC)" in text
    assert "640 MiB now, growing towards the limit 1 GiB" in text


async def test_the_store_is_read_at_most_once_a_minute(db: Database, clock: ManualClock) -> None:
    start = clock.time()
    await fill(MetricStore(db, clock, settle_s=0), start, 7200, memory(0.0))
    evaluator = Evaluator(RULES, store=MetricStore(db, clock, settle_s=0))
    for step in range(13):  # two minutes of 10 s cycles
        now = start + 7200 + 10 * step
        obs = await evaluator.evaluate(make_snapshot(now, now_values(memory(0.0)(7200))), now)
        flat = [o for o in obs if o.rule == MEM.name][0]
        assert flat.value is None and not flat.breached  # flat: nothing predicted
        assert flat.context["eta"] == "not predicted"
    assert evaluator.store_queries == 3  # at 0 s, 60 s and 120 s


async def test_a_short_history_is_not_a_trend(db: Database, clock: ManualClock) -> None:
    start = clock.time()
    await fill(MetricStore(db, clock, settle_s=0), start, 1800, memory(1 * MIB))  # 30 min of a fast ramp
    now = start + 1800
    evaluator = Evaluator(RULES, store=MetricStore(db, clock, settle_s=0))
    obs = [o for o in await evaluator.evaluate(make_snapshot(now, now_values(memory(1 * MIB)(1800))), now)
           if o.rule == MEM.name][0]
    assert obs.value is None and not obs.breached


async def test_a_growing_backlog_is_predicted_per_band(db: Database, clock: ManualClock) -> None:
    start = clock.time()

    def backlog(t: float):
        return [(m.DUE_TOKENS, {"band": "hot"}, 100 + t / 10), (m.DUE_TOKENS, {"band": "cold"}, 50.0)]

    await fill(MetricStore(db, clock, settle_s=0), start, 3600, backlog)
    now = start + 3600
    evaluator = Evaluator(RULES, store=MetricStore(db, clock, settle_s=0))
    obs = {o.labels["band"]: o for o in await evaluator.evaluate(make_snapshot(now, now_values(backlog(3600))), now)
           if o.rule == BACKLOG.name}
    assert obs["hot"].breached and abs((obs["hot"].value or 0) - 400) < 30  # 460 -> 500 at 6/min
    assert BACKLOG.summary.format_map(obs["hot"].context).startswith(
        "Backlog will reach 500 hot tokens in 6m ")
    assert not obs["cold"].breached
