"""The in-memory series window: aggregations, counter resets, bounds, seeding from the store."""
from __future__ import annotations

import pytest

from alerts.window import SeriesWindow
from app.clock import ManualClock
from app.db import Database
from monitoring import metric_names as m
from monitoring.sample import Sample
from monitoring.store import MetricStore
from tests.alerts.scenario import make_snapshot, series

T0 = 1_700_000_000.0
NAME = m.API_REQUESTS_TOTAL


def window_with(values: list[float], every_s: float = 10.0, span_s: float = 600.0) -> SeriesWindow:
    window = SeriesWindow({NAME}, span_s)
    for i, value in enumerate(values):
        window.observe(make_snapshot(T0 + i * every_s, {series(NAME, endpoint="a"): value}))
    return window


def agg(window: SeriesWindow, how: str, window_s: float, now: float, **kw) -> float | None:
    return window.get(NAME, {"endpoint": "a"}).aggregate(how, now=now, window_s=window_s, **kw)  # type: ignore[union-attr]


def test_last_avg_max_min_over_the_window() -> None:
    w = window_with([5, 1, 9, 3, 7])  # at T0 .. T0+40
    now = T0 + 40
    assert agg(w, "last", 0, now) == 7
    assert agg(w, "avg", 20, now) == pytest.approx((3 + 7 + 9) / 3)  # T0+20..T0+40
    assert agg(w, "max", 15, now) == 7 and agg(w, "max", 40, now) == 9
    assert agg(w, "min", 100, now) == 1


def test_rate_and_increase_survive_a_counter_reset() -> None:
    # a counter at 100 rising 10 per cycle, then the process restarts: 0, 10, 20
    w = window_with([100, 110, 120, 0, 10, 20])
    now = T0 + 50
    assert agg(w, "increase", 50, now) == 10 + 10 + 0 + 10 + 10  # the reset counts from 0
    assert agg(w, "rate", 50, now) == pytest.approx(40 / 50)
    assert agg(w, "increase", 0, now) == 0.0  # one point: nothing rose
    assert agg(w, "rate", 0, now) is None     # one point: no rate


def test_percentile_is_the_nearest_rank() -> None:
    w = window_with([float(v) for v in range(1, 21)])
    assert agg(w, "percentile", 1000, T0 + 190, quantile=0.95) == 19.0
    assert agg(w, "percentile", 1000, T0 + 190, quantile=0.5) == 10.0


def test_the_window_keeps_only_its_span_and_the_wanted_names() -> None:
    w = SeriesWindow({NAME}, span_s=60)
    for i in range(100):
        w.observe(make_snapshot(T0 + i * 10, {series(NAME, endpoint="a"): float(i),
                                              series(m.DB_UP): 1.0}))
    s = w.get(NAME, {"endpoint": "a"})
    assert s is not None and len(s.points) <= 8
    assert w.get(m.DB_UP) is None and len(w) == 1
    assert agg(w, "avg", 3600, T0 + 990) == pytest.approx(sum(range(93, 100)) / 7)


def test_a_stale_sample_repeated_by_the_snapshot_is_not_a_new_point() -> None:
    w = SeriesWindow({NAME}, span_s=600)
    for i in range(5):
        snap = make_snapshot(T0 + i * 10, {}, stale={series(NAME, endpoint="a"): T0})
        w.observe(snap)
    s = w.get(NAME, {"endpoint": "a"})
    assert s is not None and len(s.points) == 1


def test_matching_is_exact_on_a_subset_of_the_labels() -> None:
    w = SeriesWindow(None, span_s=60)
    w.observe(make_snapshot(T0, {series(NAME, endpoint="a", kind="x"): 1.0, series(NAME, endpoint="b"): 2.0,
                                 series(NAME, endpoint="ab"): 3.0}))
    assert sorted(s.labels["endpoint"] for s in w.matching(NAME, {})) == ["a", "ab", "b"]
    assert [s.labels["endpoint"] for s in w.matching(NAME, {"endpoint": "a"})] == ["a"]
    assert w.matching(NAME, {"endpoint": "a", "kind": "y"}) == []


def test_an_unknown_aggregation_is_refused() -> None:
    w = window_with([1.0])
    with pytest.raises(ValueError):
        agg(w, "median", 10, T0)


async def test_seeding_from_the_store_keeps_the_window_across_a_restart(db: Database, clock: ManualClock) -> None:
    store = MetricStore(db, clock, settle_s=0)
    await store.write([Sample(NAME, float(i), {"endpoint": "a"}, T0 + 10 * i) for i in range(60)]
                      + [Sample(NAME, 5.0, {"endpoint": "b"}, T0 + 10 * i) for i in range(60)]
                      + [Sample(m.DB_UP, 1.0, {}, T0 + 10 * i) for i in range(60)])
    now = T0 + 590
    w = SeriesWindow({NAME}, span_s=300)
    loaded = await w.seed(store, now)
    assert loaded == 2 * 31  # T0+290 .. T0+590, both endpoints; db_up is not wanted
    assert agg(w, "increase", 300, now) == 30.0
    # the live cycle after the restart continues the same series
    w.observe(make_snapshot(now + 10, {series(NAME, endpoint="a"): 0.0}))  # the counter restarted
    assert agg(w, "increase", 300, now + 10) == 29.0
