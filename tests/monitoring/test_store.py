"""MetricStore on SQLite and PostgreSQL: write, rollup, retention, query (hand-computed figures)."""
from __future__ import annotations

import math

import pytest

from app.clock import ManualClock
from monitoring.sample import Sample
from monitoring.models import HOUR, MINUTE, RAW
from monitoring.store import MetricStore, Point

H = 1_699_999_200.0  # a whole hour: 472222 * 3600
NAME = "tokenwatch_test_gauge"


@pytest.fixture
def store(db, clock: ManualClock) -> MetricStore:
    clock.set(H)
    return MetricStore(db, clock, raw_retention_h=1.0, minute_retention_d=1.0, hour_retention_d=2.0, settle_s=5.0)


async def _seed(store: MetricStore) -> None:
    await store.write([
        # minute H: values 1, 2, 6  -> avg 3, min 1, max 6, count 3
        Sample(NAME, 1.0, ts=H + 0), Sample(NAME, 2.0, ts=H + 10), Sample(NAME, 6.0, ts=H + 20),
        # minute H+60: values 10, 20 -> avg 15, min 10, max 20, count 2
        Sample(NAME, 10.0, ts=H + 60), Sample(NAME, 20.0, ts=H + 70),
        # another series with labels must never mix with the unlabelled one
        Sample(NAME, 1000.0, {"endpoint": "tokens"}, ts=H + 5),
    ])


async def test_write_and_raw_query(store: MetricStore, clock: ManualClock) -> None:
    clock.set(H + 80)
    await _seed(store)
    points = await store.query(NAME, since=H, until=H + 80)
    assert [p.value for p in points] == [1.0, 2.0, 6.0, 10.0, 20.0]
    labelled = await store.query(NAME, labels={"endpoint": "tokens"}, since=H)
    assert labelled == [Point(H + 5, 1000.0, 1000.0, 1000.0)]
    latest = await store.latest(NAME)
    assert latest is not None and latest.ts == H + 70 and latest.value == 20.0
    assert await store.latest("tokenwatch_never_written") is None


async def test_write_drops_bad_samples_and_keeps_good(store: MetricStore, clock: ManualClock) -> None:
    written = await store.write([
        Sample(NAME, math.nan, ts=H), Sample(NAME, math.inf, ts=H), Sample("x" * 200, 1.0, ts=H),
        Sample(NAME, 7.0, {"name": "\u202e<b>evil</b>🚀" * 3}, ts=H), Sample(NAME, 8.0),
    ])
    assert written == 2
    assert store.rejected == 3
    points = await store.query(NAME, labels={"name": "\u202e<b>evil</b>🚀" * 3}, since=H - 1, until=H + 1)
    assert [p.value for p in points] == [7.0]
    assert (await store.latest(NAME)).value == 8.0  # ts taken from the clock


async def test_rollup_minutes_then_hour(store: MetricStore, clock: ManualClock) -> None:
    await _seed(store)
    clock.set(H + 125)  # minutes H and H+60 complete (+5 s settle), hour not complete
    written = await store.rollup(clock.time())
    assert written == {MINUTE: 3, HOUR: 0}  # 2 unlabelled minutes + 1 labelled minute
    minutes = await store.query(NAME, since=H, until=H + 120, resolution=MINUTE)
    assert minutes == [Point(H, 3.0, 1.0, 6.0), Point(H + 60, 15.0, 10.0, 20.0)]

    # rolling up again changes nothing (each bucket is rolled once)
    assert await store.rollup(clock.time()) == {MINUTE: 0, HOUR: 0}
    assert len(await store.query(NAME, since=H, until=H + 120, resolution=MINUTE)) == 2

    clock.set(H + 3600 + 10)
    assert (await store.rollup(clock.time()))[HOUR] == 2
    hours = await store.query(NAME, since=H, until=H + 3600, resolution=HOUR)
    # weighted average over 5 raw samples: (3*3 + 15*2) / 5 = 39 / 5 = 7.8; min 1, max 20
    assert len(hours) == 1
    assert hours[0].ts == H and hours[0].value == pytest.approx(7.8)
    assert (hours[0].min, hours[0].max) == (1.0, 20.0)


async def test_query_fills_tail_not_yet_rolled_up(store: MetricStore, clock: ManualClock) -> None:
    await _seed(store)
    clock.set(H + 65)  # minute H complete? No: H+60 - 5 settle < H+60 -> only minute H-60 .. nothing
    await store.rollup(clock.time())
    clock.set(H + 90)
    points = await store.query(NAME, since=H, until=H + 120, resolution=MINUTE)
    # nothing rolled up yet: both minutes come from raw samples aggregated on the fly
    assert points == [Point(H, 3.0, 1.0, 6.0), Point(H + 60, 15.0, 10.0, 20.0)]


async def test_retention_per_resolution(store: MetricStore, clock: ManualClock) -> None:
    await _seed(store)
    clock.set(H + 125)
    await store.rollup(clock.time())
    clock.set(H + 3600 + 15)
    deleted = await store.apply_retention(clock.time())
    # raw cutoff: now - 1 h = H + 15, below the rolled-up mark (H + 120): raw rows at H+0, H+5, H+10 go
    assert deleted == {RAW: 3, MINUTE: 0, HOUR: 0}
    assert [p.value for p in await store.query(NAME, since=H, until=H + 100, resolution=RAW)] == [6.0, 10.0, 20.0]

    clock.set(H + 86400 + 61)  # 1-minute retention 1 day: minutes H and H+60 are gone
    deleted = await store.apply_retention(clock.time())
    assert deleted[MINUTE] == 3


async def test_retention_keeps_raw_rows_not_rolled_up(store: MetricStore, clock: ManualClock) -> None:
    await _seed(store)
    clock.set(H + 125)
    await store.rollup(clock.time())  # rolled up to H + 120
    await store.write([Sample(NAME, 99.0, ts=H + 130)])
    clock.set(H + 2 * 3600)  # raw retention 1 h would drop H+130, but it is not rolled up yet
    await store.apply_retention(clock.time())
    points = await store.query(NAME, since=H + 100, until=H + 200, resolution=RAW)
    assert [p.value for p in points] == [99.0]


async def test_resolution_chosen_from_span(store: MetricStore, clock: ManualClock) -> None:
    now = H + 10 * 86400
    clock.set(now)
    assert store.pick_resolution(now - 600, now) == RAW
    assert store.pick_resolution(now - 5 * 3600, now) == MINUTE
    assert store.pick_resolution(now - 1.5 * 86400, now) == HOUR  # beyond 1 day of minute retention
    assert store.pick_resolution(now - 7 * 86400, now) == HOUR


async def test_write_200_samples_is_one_transaction(store: MetricStore, clock: ManualClock) -> None:
    samples = [Sample(f"tokenwatch_bulk_{i % 20}", float(i), {"i": str(i)}, ts=H) for i in range(200)]
    assert await store.write(samples) == 200
    assert (await store.latest("tokenwatch_bulk_3", {"i": "183"})).value == 183.0


async def test_query_many_reads_several_series_like_one_query_each(store: MetricStore, clock: ManualClock) -> None:
    """/graph's per-endpoint lines come from one query_many; each series matches its own query,
    in raw and in minute resolution (rolled-up rows plus the on-the-fly tail), series never mixed."""
    await _seed(store)
    await store.write([Sample(NAME, 2000.0, {"endpoint": "tokens"}, ts=H + 65),
                       Sample(NAME, 7.0, {"endpoint": "pairs"}, ts=H + 15)])
    clock.set(H + 130)
    await store.rollup(clock.time())  # minute H rolled up; minute H+60 only raw (tail)
    label_sets = [{}, {"endpoint": "tokens"}, {"endpoint": "pairs"}, {"endpoint": "none-yet"}]
    for resolution in (RAW, MINUTE):
        many = await store.query_many(NAME, label_sets, since=H, until=H + 180, resolution=resolution)
        for labels in label_sets:
            one = await store.query(NAME, labels=labels or None, since=H, until=H + 180, resolution=resolution)
            key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            assert many[key] == one
    minute = await store.query_many(NAME, label_sets, since=H, until=H + 180, resolution=MINUTE)
    assert minute[""] == [Point(H, 3.0, 1.0, 6.0), Point(H + 60, 15.0, 10.0, 20.0)]
    assert minute["endpoint=tokens"] == [Point(H, 1000.0, 1000.0, 1000.0), Point(H + 60, 2000.0, 2000.0, 2000.0)]
    assert minute["endpoint=none-yet"] == []
