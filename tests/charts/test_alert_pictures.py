"""The alert engine's history in pictures, on SQLite and PostgreSQL: the ``alerts`` preset (a
timeline of firings by rule, acknowledgments marked, maintenance hatched) and incidents and
maintenance windows shaded on every metric picture, with captions that say so."""
from __future__ import annotations

import os
import pickle
import warnings

from alerts.history import alert_timeline
from alerts.models import AlertEvent, AlertIncident, AlertMaintenance
from app.clock import ManualClock
from bot.views.graph import graph_caption
from charts.alert_timeline import MAX_ROWS, timeline_data
from charts.data import ChartData, NotEnoughData, fetch_chart
from charts.presets import get_preset
from charts.ranges import RANGES
from charts.render import render_chart
from charts.spans import INCIDENT, MAINTENANCE
from delivery.html import MAX_CAPTION_LEN, to_plain, validate_html, visible_len
from monitoring.store import MetricStore
from tests.charts.history import craft_history, craft_incidents
from tests.charts.test_pictures import Settings, png_size

NOW = 1_790_000_000.0
M = 60.0
#: set to a directory to keep the pictures for a look (``ALERT_PICTURES_DIR=/tmp/pics``)
KEEP = os.environ.get("ALERT_PICTURES_DIR")


def keep(name: str, png: bytes) -> None:
    if KEEP:
        os.makedirs(KEEP, exist_ok=True)
        with open(os.path.join(KEEP, name), "wb") as fh:
            fh.write(png)


def check_picture(data: ChartData) -> tuple[bytes, list[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        picture = render_chart(pickle.loads(pickle.dumps(data)))  # as the worker process gets it
    width, height = png_size(picture.png)
    assert 400 <= width <= 2000 and 300 <= height <= 4000 and width + height <= 10_000
    assert len(picture.png) < 1_000_000
    caption = graph_caption(data)
    validate_html(caption)
    assert visible_len(caption) <= MAX_CAPTION_LEN
    return picture.png, picture.series


async def test_the_timeline_reads_firings_acks_incidents_and_maintenance(db):
    ids = await craft_incidents(db, NOW)
    tl = await alert_timeline(db, NOW - 120 * M, NOW)
    firings = {(f.rule, f.severity, f.start, f.end, f.ongoing, f.incident_id) for f in tl.firings}
    assert firings == {
        # began before the range (its incident was open at the start): clipped to the range
        ("db_slow", "warning", NOW - 120 * M, NOW - 110 * M, False, ids["C"]),
        ("market_api_down", "critical", NOW - 100 * M, NOW - 70 * M, False, ids["A"]),
        ("api_slow", "warning", NOW - 95 * M, NOW - 70 * M, False, ids["A"]),
        ("backlog_growing", "warning", NOW - 30 * M, NOW, True, ids["B"]),
    }
    assert [(a.at, a.incident_id, a.actor) for a in tl.acks] == [(NOW - 90 * M, ids["A"], "Ann"),
                                                                  (NOW - 20 * M, ids["B"], "Bob")]
    assert {(i.incident_id, i.severity, i.start, i.end, i.ongoing) for i in tl.incidents} == {
        (ids["C"], "warning", NOW - 120 * M, NOW - 110 * M, False),
        (ids["A"], "critical", NOW - 100 * M, NOW - 70 * M, False),
        (ids["B"], "warning", NOW - 30 * M, NOW, True)}
    # ended early: the window lasts until it was ended, not until it was planned to
    assert [(w.start, w.end, w.ongoing, w.reason) for w in tl.maintenance] == [
        (NOW - 60 * M, NOW - 40 * M, False, "db upgrade")]

    data = timeline_data(tl)
    assert data is not None
    # the critical rule on top, then by time firing
    assert data.rows == ["market_api_down", "backlog_growing", "api_slow", "db_slow"]
    assert [(data.rows[b.row], b.severity, b.ongoing) for b in data.bars] == [
        ("market_api_down", "critical", False), ("backlog_growing", "warning", True),
        ("api_slow", "warning", False), ("db_slow", "warning", False)]
    # Ann acknowledged incident A: both of its rules get the mark
    assert [(a.at, [data.rows[r] for r in a.rows]) for a in data.acks] == [
        (NOW - 90 * M, ["market_api_down", "api_slow"]), (NOW - 20 * M, ["backlog_growing"])]
    assert (data.incidents, data.incidents_by_severity, data.ongoing_incidents, data.acknowledged_incidents) == (
        3, {"critical": 1, "warning": 2}, 1, 2)

    # the last hour: only what overlaps it
    hour = await alert_timeline(db, NOW - 60 * M, NOW)
    assert [f.rule for f in hour.firings] == ["backlog_growing"]
    assert [i.incident_id for i in hour.incidents] == [ids["B"]]
    assert [(w.start, w.end) for w in hour.maintenance] == [(NOW - 60 * M, NOW - 40 * M)]


async def test_the_alerts_preset_draws_every_range_with_a_caption(db):
    store = MetricStore(db, ManualClock(NOW))
    await craft_incidents(db, NOW)
    preset = get_preset("alerts")
    assert preset is not None and preset.kind == "alerts"
    for span in RANGES:
        data = await fetch_chart(store, preset, span, NOW)
        assert isinstance(data, ChartData) and data.timeline is not None, (span, data)
        png, series = check_picture(data)
        keep(f"alerts-{span}.png", png)
        assert {"rule backlog_growing", "acknowledged", "maintenance"} <= set(series), (span, series)
        text = to_plain(graph_caption(data))
        assert text.startswith(f"Alerts · last {span}")
        assert "backlog_growing warning: fired 1×" in text
        assert "maintenance: 1 window, 20m 00s" in text
        if span != "1h":
            assert {"rule market_api_down", "rule api_slow", "rule db_slow"} <= set(series)
            assert "3 incidents (1 critical, 2 warning), 1 still open; 2 acknowledged" in text
            assert "market_api_down critical: fired 1×, 30m 00s firing" in text
        else:
            assert "rule market_api_down" not in series
            assert "1 incident (1 warning), 1 still open; 1 acknowledged" in text


async def test_metric_pictures_shade_incidents_and_maintenance(db):
    store = MetricStore(db, ManualClock(NOW))
    await craft_history(store, NOW)
    await craft_incidents(db, NOW)
    data = await fetch_chart(store, get_preset("health"), "6h", NOW, settings=Settings())
    assert isinstance(data, ChartData)
    spans = sorted((s.kind, s.severity, s.start, round(s.end)) for s in data.spans)
    assert spans == [
        (INCIDENT, "critical", NOW - 100 * M, NOW - 70 * M),
        (INCIDENT, "warning", NOW - 180 * M, NOW - 110 * M),
        (INCIDENT, "warning", NOW - 30 * M, NOW),
        (MAINTENANCE, None, NOW - 60 * M, NOW - 40 * M),
    ]
    png, series = check_picture(data)
    keep("health-6h.png", png)
    # every panel is shaded (three panels, each with both incident colours and the window)
    assert series.count("incident (critical)") == 3 and series.count("maintenance") == 3
    text = to_plain(graph_caption(data))
    assert text.splitlines()[-1] == ("shaded: 3 incidents (1 critical, 2 warning), 1 open; "
                                     "maintenance 20m 00s (hatched) · /graph alerts")
    # a range with none of them: no shading, no mention
    quiet = await fetch_chart(store, get_preset("health"), "1h", NOW - 4 * 3600, settings=Settings())
    assert isinstance(quiet, ChartData) and quiet.spans == [] and "shaded" not in to_plain(graph_caption(quiet))


async def test_an_empty_range_says_no_incidents_instead_of_drawing(db):
    store = MetricStore(db, ManualClock(NOW))
    preset = get_preset("alerts")
    empty = await fetch_chart(store, preset, "24h", NOW)
    assert isinstance(empty, NotEnoughData) and empty.message() == "no incidents in this range"
    async with db.session() as session:
        session.add(AlertMaintenance(started_at=NOW - 3600, ends_at=NOW + 3600, reason="upgrade"))
        await session.commit()
    only_maintenance = await fetch_chart(store, preset, "6h", NOW)
    assert isinstance(only_maintenance, NotEnoughData)
    assert only_maintenance.message() == "no incidents in this range (1 maintenance window)"


async def test_many_rules_and_hostile_names_stay_readable_and_escaped(sqlite_db):
    store = MetricStore(sqlite_db, ManualClock(NOW))
    evil = '<b>&"\u202e🚀' + "x" * 80
    async with sqlite_db.session() as session:
        incident = AlertIncident(group_key="g", title=evil, severity="info", opened_at=NOW - 3000)
        session.add(incident)
        await session.flush()
        for i in range(MAX_ROWS + 6):
            rule = f"{evil}{i}" if i % 2 else f"rule_{i:02d}"
            session.add(AlertEvent(kind="fired", at=NOW - 3000 + i * 60, rule=rule, fingerprint=f"fp{i}",
                                   incident_id=incident.id))
            session.add(AlertEvent(kind="resolved", at=NOW - 2000 + i * 60, rule=rule, fingerprint=f"fp{i}",
                                   incident_id=incident.id))
        session.add(AlertEvent(kind="ack", at=NOW - 2500, incident_id=incident.id, actor=evil))
        await session.commit()
    data = await fetch_chart(store, get_preset("alerts"), "1h", NOW)
    assert isinstance(data, ChartData) and data.timeline is not None
    assert len(data.timeline.rows) == MAX_ROWS and data.timeline.hidden_rules == 6
    png, series = check_picture(data)
    keep("alerts-many.png", png)
    caption = graph_caption(data)
    assert "&lt;b&gt;&amp;" in caption and "<b>&" not in caption  # the names arrive escaped
    # the acknowledgment is marked on the rows firing when it came, not on every row of the incident
    [ack] = data.timeline.acks
    assert 0 < len(ack.rows) < MAX_ROWS


def test_only_the_stretch_still_firing_is_marked_ongoing():
    from alerts.history import AlertTimeline, FiringSpan

    firings = [FiringSpan("api_slow", "fp1", 1, "warning", 100.0, 200.0, False),
               FiringSpan("api_slow", "fp1", 2, "warning", 500.0, 1000.0, True)]
    data = timeline_data(AlertTimeline(0.0, 1000.0, firings, [], [], []))
    assert data is not None
    assert [(b.start, b.end, b.ongoing) for b in data.bars] == [(100.0, 200.0, False), (500.0, 1000.0, True)]


def shaded_runs(png: bytes, *, tint: int = 12) -> int:
    """The most separate stretches tinted red (red above green by ``tint``) along any one row."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red = (rgb[:, :, 0] - rgb[:, :, 1]) >= tint
    starts = red[:, 1:] & ~red[:, :-1]
    return int((starts.sum(axis=1) + red[:, 0]).max())


async def test_two_hundred_incidents_are_each_shaded(sqlite_db):
    """A week with 200 critical incidents (24 minutes each, 26 apart): every one is shaded on
    the picture, each a stretch of its own (about 2 pixels wide, gaps about 2 pixels)."""
    from monitoring import metric_names as mn
    from monitoring.sample import Sample

    store = MetricStore(sqlite_db, ManualClock(NOW))
    start = NOW - 7 * 86400
    # a flat, low line: the middle of the panel is free for the shading
    await store.write([Sample(mn.DB_PING_SECONDS, 0.01, ts=start + i * 3600) for i in range(7 * 24)])
    await store.rollup(NOW)
    async with sqlite_db.session() as session:
        for i in range(200):
            opened = start + 1800 + i * 50 * M
            session.add(AlertIncident(group_key=f"g{i}", title=f"incident {i}", severity="critical",
                                      status="resolved", opened_at=opened, resolved_at=opened + 24 * M))
        await session.commit()
    from charts.presets import metric_preset

    data = await fetch_chart(store, metric_preset("db_ping_seconds"), "7d", NOW)
    assert isinstance(data, ChartData)
    assert len(data.spans) == 200 and data.shading.incidents == 200
    png, series = check_picture(data)
    keep("200-incidents.png", png)
    assert "incident (critical)" in series
    assert shaded_runs(png) == 200
