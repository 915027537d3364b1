"""Every preset over every range, from a crafted history on SQLite and PostgreSQL: a valid PNG
inside Telegram's photo limits, the expected series drawn, no warnings; the caption sums it up."""
from __future__ import annotations

import struct
import warnings
from datetime import datetime, timezone

import pytest

from app.clock import ManualClock
from bot.views.graph import graph_caption
from charts.data import ChartData, NotEnoughData, fetch_chart
from charts.presets import PRESETS, closest_names, get_preset, metric_preset
from charts.ranges import RANGES
from charts.render import render_chart
from delivery.html import MAX_CAPTION_LEN, to_plain, validate_html, visible_len
from monitoring import metric_names as m
from monitoring.sample import Sample
from monitoring.store import MetricStore
from tests.charts.history import craft_history, craft_incidents, craft_transitions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOW = 1_790_000_000.0

EXPECTED = {
    "processing": {"monitoring", "active", "due hot", "due cold", "hot p95", "cold p95", "pipeline stalled",
                   "trend due hot", "backlog limit"},
    "activation": {"tokens activated", "checks passed", "p50", "p95", "activated", "expired", "low_score"},
    "health": {"RSS", "effective limit", "80% of limit", "trend RSS", "CPU", "p95", "max", "100 ms"},
    "api": {"tokens p50", "tokens p95", "pairs p99", "tokens", "pairs", "tokens 429", "pairs timeouts",
            "pairs breaker open"},
    "flow": {"new->monitoring", "monitoring->active", "monitoring->archived", "active->archived"},
    "alerts": {"rule backlog_growing", "acknowledged", "maintenance"},
}
#: every metric picture shades the incident still open and the maintenance window of the last hour
SHADED = {"incident (warning)", "maintenance"}


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return width, height


class Settings:
    graph_backlog_limit = 500.0


async def test_every_preset_and_range_draws_its_series(db):
    clock = ManualClock(NOW)
    store = MetricStore(db, clock)
    await craft_history(store, NOW)
    await craft_transitions(db, NOW)
    await craft_incidents(db, NOW)
    assert set(EXPECTED) <= set(PRESETS)
    for name, preset in PRESETS.items():
        for span in RANGES:
            data = await fetch_chart(store, preset, span, NOW, settings=Settings())
            assert isinstance(data, ChartData), (name, span, data)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                picture = render_chart(data)
            width, height = png_size(picture.png)
            assert (width, height) == (picture.width, picture.height)
            assert len(picture.png) <= 10 * 1024 * 1024 and width + height <= 10_000
            assert max(width, height) / min(width, height) <= 20
            assert EXPECTED[name] <= set(picture.series), (name, span, sorted(picture.series))
            if preset.kind == "series":
                assert SHADED <= set(picture.series), (name, span, sorted(picture.series))
            caption = graph_caption(data)
            validate_html(caption)
            assert visible_len(caption) <= MAX_CAPTION_LEN
            assert preset.title in to_plain(caption)


async def test_ranges_read_the_right_rollup(sqlite_db):
    store = MetricStore(sqlite_db, ManualClock(NOW))
    await craft_history(store, NOW)
    health = get_preset("health")
    resolutions = {}
    for span in RANGES:
        data = await fetch_chart(store, health, span, NOW, settings=Settings())
        assert isinstance(data, ChartData)
        resolutions[span] = data.resolution
    assert resolutions == {"1h": 0, "6h": 60, "24h": 60, "7d": 3600}


async def test_caption_gives_now_min_max_trend_and_time_to_the_limit(sqlite_db):
    store = MetricStore(sqlite_db, ManualClock(NOW))
    await craft_history(store, NOW)
    data = await fetch_chart(store, get_preset("health"), "24h", NOW, settings=Settings())
    assert isinstance(data, ChartData)
    text = to_plain(graph_caption(data))
    memory = next(line for line in text.splitlines() if line.startswith("Memory"))
    # the synthetic RSS grows from 0.6 to 1.1 GiB over the week toward a 2 GiB limit
    assert "now 1.1" in memory and "min " in memory and "max " in memory
    assert "trend +" in memory and "effective limit in ~" in memory


async def test_too_short_history_says_how_much_there_is(sqlite_db):
    start = datetime(2026, 9, 21, 14, 2, 5, tzinfo=timezone.utc).timestamp()
    now = start + 120
    store = MetricStore(sqlite_db, ManualClock(now))
    await store.write([Sample(m.DB_PING_SECONDS, 0.01, ts=start + i * 10) for i in range(3)])
    data = await fetch_chart(store, metric_preset("tokenwatch_db_ping_seconds"), "1h", now)
    assert isinstance(data, NotEnoughData)
    assert data.message() == "not enough data yet: 3 points since 14:02 UTC"
    empty = await fetch_chart(store, get_preset("health"), "6h", now)
    assert isinstance(empty, NotEnoughData) and empty.message() == "not enough data yet: no points in this range"


async def test_hostile_label_values_are_drawn_and_escaped(sqlite_db):
    store = MetricStore(sqlite_db, ManualClock(NOW))
    evil = '<b>&"\u202e🚀' + "x" * 200
    await store.write([Sample(m.API_ERROR_RATE, 0.1 * i, {"endpoint": evil}, ts=NOW - 300 + i * 30)
                       for i in range(8)])
    data = await fetch_chart(store, metric_preset("api_error_rate"), "1h", NOW)
    assert isinstance(data, ChartData)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "glyph missing" warnings either
        picture = render_chart(data)
    assert picture.png[:8] == PNG_SIGNATURE
    caption = graph_caption(data)
    validate_html(caption)
    assert visible_len(caption) <= MAX_CAPTION_LEN


def test_unknown_names_get_the_closest_ones():
    assert "tokenwatch_process_resident_bytes" in closest_names("tokenwatch_memory_rss_bytes") or \
        any("memory" in n for n in closest_names("tokenwatch_memory_rss_bytes"))
    assert closest_names("helth")[0] == "health"
    assert metric_preset("tokenwatch_no_such_thing") is None
    assert metric_preset("db_ping_seconds").name == "tokenwatch_db_ping_seconds"


@pytest.mark.parametrize("name", sorted(m.METRICS))
def test_every_metric_name_makes_a_one_panel_preset(name):
    preset = metric_preset(name)
    assert preset is not None and len(preset.panels) == 1 and preset.panels[0].lines[0].metric == name


def test_picture_settings_fail_with_one_clear_line():
    from app.settings import SettingsError, load_settings

    for name, bad in (("dashboard_refresh_s", 1), ("graph_render_processes", 0), ("graph_render_queue", 0),
                      ("graph_backlog_limit", -5)):
        with pytest.raises(SettingsError, match=f"invalid setting {name.upper()}"):
            load_settings(_env_file=None, **{name: bad})


async def test_a_state_band_shades_each_state_of_each_series(sqlite_db):
    """The span source the ``api`` preset takes for circuit breakers: a 0/1/2 gauge per
    endpoint, shaded per state (1 half-open, 2 open) and named with its endpoint; closed is not
    shaded, and a state held for part of a rollup minute still shows."""
    from charts.data import fetch_window
    from charts.presets import Line, Panel, Preset, breaker_band

    gauge = "tokenwatch_test_breaker_state"  # any gauge of states works
    store = MetricStore(sqlite_db, ManualClock(NOW))
    t0 = NOW - 3 * 3600
    states = {"tokens": [0] * 60 + [2] * 20 + [1] * 5 + [0] * 95, "pairs": [0] * 180}
    # 10-second samples; pairs is open only 20 s of one minute late in the range
    await store.write([Sample(gauge, float(v), {"endpoint": ep}, ts=t0 + i * 60) for ep, vs in states.items()
                       for i, v in enumerate(vs)]
                      + [Sample(gauge, 0.0, {"endpoint": "pairs"}, ts=NOW - 130 + s) for s in (0, 10, 40, 50)]
                      + [Sample(gauge, 2.0, {"endpoint": "pairs"}, ts=NOW - 130 + s) for s in (20, 30)]
                      + [Sample(m.API_ERROR_RATE, 0.01, {"endpoint": "tokens"}, ts=t0 + i * 60) for i in range(180)])
    await store.rollup(NOW)
    preset = Preset("api-test", "API", "test", panels=(
        Panel("Error rate", "%", lines=(Line(m.API_ERROR_RATE, "{endpoint}", family={}, scale=100.0),),
              bands=(breaker_band(gauge),)),))
    data = await fetch_window(store, preset, NOW - 6 * 3600, NOW, range_name="6h")
    assert isinstance(data, ChartData) and data.resolution == 60
    spans = {(s.legend, s.colour): (round((s.start - t0) / 60), round((s.end - t0) / 60))
             for s in data.panels[0].spans}
    assert spans[("tokens breaker open", "tab:red")] == (60, 80)
    assert spans[("tokens breaker half-open", "tab:orange")] == (80, 85)
    assert ("pairs breaker open", "tab:red") in spans  # 20 s of a minute, at the end of the range
    assert not any("closed" in legend for legend, _c in spans)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        picture = render_chart(data)
    assert {"tokens breaker open", "tokens breaker half-open", "pairs breaker open"} <= set(picture.series)
