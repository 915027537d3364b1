"""The collector registry: isolation, error counting, timeouts, bad samples, latest, jobs."""
from __future__ import annotations

import asyncio
import logging
import math

import pytest

from app.clock import ManualClock
from app.scheduler import JobSpec
from monitoring import metric_names as m
from monitoring.collector import CollectorRegistry
from monitoring.sample import Sample, canonical_labels, parse_labels
from monitoring.store import MetricStore


class Good:
    name = "good"

    def __init__(self) -> None:
        self.value = 1.0

    async def collect(self, now: float) -> list[Sample]:
        return [Sample("tokenwatch_good", self.value, {"kind": "a"})]


class Flaky:
    name = "flaky"

    def __init__(self) -> None:
        self.fail = True

    async def collect(self, now: float) -> list[Sample]:
        if self.fail:
            raise RuntimeError("upstream exploded <b>")
        return [Sample("tokenwatch_flaky", 2.0)]


class Hangs:
    name = "hangs"

    async def collect(self, now: float) -> list[Sample]:
        await asyncio.sleep(3600)
        return []


class Junk:
    name = "junk"

    async def collect(self, now: float) -> list[Sample]:
        return [Sample("tokenwatch_ok", 3.0), Sample("tokenwatch_nan", math.nan), "not a sample",
                Sample("tokenwatch_str", "12"), Sample("tokenwatch_long", 1.0, {"k": "v" * 300})]  # type: ignore[list-item]


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.latest_value(name, labels)


async def test_failing_collector_does_not_stop_others_and_is_counted(clock: ManualClock, caplog) -> None:
    registry = CollectorRegistry(clock=clock, collector_timeout_s=0.05)
    good, flaky = Good(), Flaky()
    for c in (good, flaky, Hangs()):
        registry.register(c)
    caplog.set_level(logging.INFO, logger="monitoring.collector")

    for _ in range(3):
        samples = await registry.collect_all(clock.time())
        clock.advance(10)
    assert any(s.name == "tokenwatch_good" for s in samples)
    assert _value(registry, "tokenwatch_good", kind="a") == 1.0
    assert _value(registry, m.COLLECTOR_ERRORS_TOTAL, collector="flaky") == 3.0
    assert _value(registry, m.COLLECTOR_ERRORS_TOTAL, collector="hangs") == 3.0
    assert _value(registry, m.COLLECTOR_ERRORS_TOTAL, collector="good") == 0.0
    assert _value(registry, m.COLLECTOR_UP, collector="flaky") == 0.0
    assert registry.states()["hangs"].last_error.startswith("timed out")
    # logged once per change of state, not once per failure
    failing = [r for r in caplog.records if "flaky failing" in r.getMessage()]
    assert len(failing) == 1

    flaky.fail = False
    await registry.collect_all(clock.time())
    assert _value(registry, "tokenwatch_flaky") == 2.0
    assert _value(registry, m.COLLECTOR_UP, collector="flaky") == 1.0
    assert any("flaky recovered" in r.getMessage() for r in caplog.records)


async def test_bad_samples_dropped_and_counted(clock: ManualClock) -> None:
    registry = CollectorRegistry(clock=clock)
    registry.register(Junk())
    samples = await registry.collect_all(clock.time())
    names = {s.name for s in samples}
    assert "tokenwatch_ok" in names and not names & {"tokenwatch_nan", "tokenwatch_str", "tokenwatch_long"}
    assert _value(registry, m.COLLECTOR_BAD_SAMPLES_TOTAL, collector="junk") == 4.0
    ok = next(s for s in samples if s.name == "tokenwatch_ok")
    assert ok.ts == clock.time()  # timestamp filled in at collection


async def test_duplicate_or_nameless_collectors_rejected(clock: ManualClock) -> None:
    registry = CollectorRegistry(clock=clock)
    registry.register(Good())
    with pytest.raises(ValueError):
        registry.register(Good())
    with pytest.raises(ValueError):
        registry.register(object())  # type: ignore[arg-type]


def test_canonical_labels_sorted_and_reversible() -> None:
    labels = {"z": "1", "a": "x,y=z\\", "m": "\u202e🚀<b>"}
    text = canonical_labels(labels)
    assert text.startswith("a=") and text.index("m=") < text.index("z=")
    assert parse_labels(text) == labels
    assert canonical_labels({}) == canonical_labels(None) == ""


async def test_jobs_and_run_collection_write_to_store(sqlite_db, clock: ManualClock) -> None:
    store = MetricStore(sqlite_db, clock)
    registry = CollectorRegistry(clock=clock, store=store, collect_interval_s=7)
    registry.register(Good())
    jobs = {j.id: j for j in registry.jobs()}
    assert set(jobs) == {"monitoring.collect", "monitoring.rollup", "monitoring.retention"}
    assert all(isinstance(j, JobSpec) for j in jobs.values())
    assert (jobs["monitoring.collect"].interval_s, jobs["monitoring.rollup"].interval_s,
            jobs["monitoring.retention"].interval_s) == (7, 60, 3600)

    await jobs["monitoring.collect"].func()
    point = await store.latest("tokenwatch_good", {"kind": "a"})
    assert point is not None and point.value == 1.0 and point.ts == clock.time()
    assert registry.last_collection_at == clock.time()
    clock.advance(120)
    await jobs["monitoring.rollup"].func()
    await jobs["monitoring.retention"].func()
    minutes = await store.query("tokenwatch_good", labels={"kind": "a"}, since=clock.time() - 300, resolution=60)
    assert [p.value for p in minutes] == [1.0]


async def test_store_outage_keeps_latest_and_counts(clock: ManualClock) -> None:
    class BrokenStore:
        async def write(self, samples):
            raise ConnectionError("db down")

    registry = CollectorRegistry(clock=clock, store=BrokenStore())  # type: ignore[arg-type]
    registry.register(Good())
    await registry.run_collection()
    await registry.run_collection()
    assert registry.store_write_errors == 2
    assert _value(registry, "tokenwatch_good", kind="a") == 1.0


from hypothesis import given, settings as hyp_settings, strategies as st  # noqa: E402


@hyp_settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=20), max_size=5))
def test_canonical_labels_round_trip_any_text(labels: dict[str, str]) -> None:
    assert parse_labels(canonical_labels(labels)) == labels


async def test_series_that_stop_reporting_leave_latest(clock: ManualClock) -> None:
    class PerToken:
        name = "per_token"
        mints = ["A", "B"]

        async def collect(self, now: float) -> list[Sample]:
            return [Sample("tokenwatch_token_score", 1.0, {"mint": mint}) for mint in self.mints]

    registry = CollectorRegistry(clock=clock, collect_interval_s=10, stale_after_s=60)
    collector = registry.register(PerToken())
    await registry.collect_all(clock.time())
    collector.mints = ["A"]  # B archived: it stops reporting
    for _ in range(7):
        clock.advance(10)
        await registry.collect_all(clock.time())
    assert registry.latest_value("tokenwatch_token_score", {"mint": "A"}) == 1.0
    assert registry.latest_value("tokenwatch_token_score", {"mint": "B"}) is None
