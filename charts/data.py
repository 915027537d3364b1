"""What a picture shows, read from the metric store: plain, picklable data for the renderer.

    data = await fetch_chart(store, get_preset("health"), "6h", now, settings=settings)
    if isinstance(data, NotEnoughData):
        print(data.message())            # 'not enough data yet: 3 points since 14:02 UTC'
    else:
        data.panels[0].lines[0].name     # 'RSS'

Everything is read through ``MetricStore.query_many`` / ``query`` / ``latest`` (the store picks
raw, 1-minute or 1-hour rows for the span; one read per metric and panel, every label set of a
family in that read); the flow preset also reads
``charts.flow.transition_counts``. Alert history comes through ``alerts.history``
(``charts.alert_timeline``): the ``alerts`` preset's timeline, and on every metric picture the
incidents and maintenance windows of the range (``ChartData.spans``, shaded on every panel)::

    data.spans          # [Span(kind="incident", severity="critical"), Span(kind="maintenance"), ...]
    data.shading        # ShadingSummary: incidents by severity, maintenance windows (the caption)
"""
from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from charts.alert_timeline import ShadingSummary, TimelineData, fetch_shading, fetch_timeline
from charts.flow import FlowData, fetch_flow
from charts.presets import Band, Level, Line, Panel, Preset
from charts.ranges import RANGES
from charts.spans import Span, merge_spans
from monitoring.sample import canonical_labels, parse_labels
from monitoring.trend import theil_sen, time_to_reach
from monitoring.store import MetricStore, Point

#: A picture needs at least this many points on some line.
MIN_POINTS = 5
#: The trend is drawn this far past the end of the range (a share of the range).
FORECAST_SHARE = 0.25


@dataclass
class SeriesData:
    name: str
    ts: list[float]
    values: list[float]


@dataclass
class TrendData:
    line: str
    ts: list[float]           # [start, end of forecast]
    values: list[float]
    slope_per_h: float
    limit: float | None = None
    limit_legend: str | None = None
    eta_s: float | None = None  # seconds until the trend reaches the limit (0: already there)


@dataclass
class PanelData:
    title: str
    unit: str
    lines: list[SeriesData]
    stacked: bool = False
    thresholds: list[tuple[float, str]] = field(default_factory=list)
    trend: TrendData | None = None
    spans: list[Span] = field(default_factory=list)


@dataclass
class KeyFigure:
    """The numbers a caption sums up for one line."""

    panel: str
    line: str
    unit: str
    now: float
    low: float
    high: float
    slope_per_h: float | None = None
    eta_s: float | None = None
    limit_legend: str | None = None


@dataclass
class ChartData:
    name: str
    title: str
    range_name: str
    since: float
    until: float
    resolution: int
    panels: list[PanelData] = field(default_factory=list)
    flow: FlowData | None = None
    key: list[KeyFigure] = field(default_factory=list)
    timeline: TimelineData | None = None       # the ``alerts`` preset
    spans: list[Span] = field(default_factory=list)  # incidents and maintenance, shaded on every panel
    shading: ShadingSummary = field(default_factory=ShadingSummary)


@dataclass
class NotEnoughData:
    name: str
    range_name: str
    points: int
    first_ts: float | None
    text: str | None = None  # said instead of the points count (the ``alerts`` preset)

    def message(self) -> str:
        if self.text is not None:
            return self.text
        if not self.points or self.first_ts is None:
            return "not enough data yet: no points in this range"
        when = datetime.fromtimestamp(self.first_ts, tz=timezone.utc).strftime("%H:%M UTC")
        return f"not enough data yet: {self.points} point{'s' if self.points != 1 else ''} since {when}"


# --- reading --------------------------------------------------------------------------------
def _legend(line: Line, labels: dict[str, str]) -> str:
    if line.legend == "{*}":
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or line.metric.removeprefix("tokenwatch_")
    if "quantile" in labels:  # "0.95" -> "95", so "{endpoint} p{quantile}" reads "tokens p95"
        labels = {**labels, "quantile": f"{float(labels['quantile']) * 100:g}" if _is_float(labels["quantile"])
                  else labels["quantile"]}
    try:
        return line.legend.format(**labels)
    except (KeyError, IndexError, ValueError):
        return line.legend


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _increase_per_minute(ts: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    """A cumulative counter as its increase per minute between points (a reset counts from 0)."""
    out_t: list[float] = []
    out_v: list[float] = []
    for i in range(1, len(ts)):
        dt = ts[i] - ts[i - 1]
        if dt <= 0:
            continue
        delta = values[i] - values[i - 1]
        if delta < 0:  # restarted: the counter began again at 0
            delta = values[i]
        out_t.append(ts[i])
        out_v.append(delta / dt * 60.0)
    return out_t, out_v


def _matches(labels: dict[str, str], family: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in family.items())


async def _read_metric(store: MetricStore, metric: str, lines: dict[int, Line], since: float, until: float,
                       resolution: int) -> dict[int, list[SeriesData]]:
    """Every line of one metric (by its index in the panel) in one store read: a family's label
    sets are the series with points in the range (one statement, no listing of label sets first;
    a series without points in the range would draw nothing anyway)."""
    every = any(line.family is not None for line in lines.values())
    fixed = [dict(line.labels or {}) for line in lines.values() if line.family is None]
    found = await store.query_many(metric, None if every else fixed, since=since, until=until,
                                   resolution=resolution)
    out: dict[int, list[SeriesData]] = {}
    for index, line in lines.items():
        if line.family is not None:
            family = line.family
            picked = [(labels, found[key]) for key in found if _matches(labels := parse_labels(key), family)]
        else:
            labels = dict(line.labels or {})
            picked = [(labels, found.get(canonical_labels(labels), []))]
        out[index] = []
        for labels, points in picked:
            ts = [p.ts for p in points]
            values = [p.value * line.scale for p in points]
            if line.counter:
                ts, values = _increase_per_minute(ts, values)
            out[index].append(SeriesData(_legend(line, labels), ts, values))
    return out


class _Latest:
    """``MetricStore.latest`` once per metric for one picture (several levels read one limit)."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self._found: dict[str, asyncio.Future[Point | None]] = {}

    async def get(self, metric: str) -> Point | None:
        if metric not in self._found:
            self._found[metric] = asyncio.ensure_future(self.store.latest(metric))
        return await self._found[metric]


async def _level(latest: _Latest, level: Level, settings: Any) -> float | None:
    base: float | None = level.value
    if level.setting is not None:
        raw = getattr(settings, level.setting, None) if settings is not None else None
        base = float(raw) if raw is not None else None
    elif level.metric is not None:
        point = await latest.get(level.metric)
        base = point.value if point is not None else None
    if base is None or not math.isfinite(base):
        return None
    return base * level.share


def _spans(ts: list[float], states: list[tuple[str, str | None] | None], step: float) -> list[Span]:
    """Stretches of equal state (``(legend, colour)``; None is not shaded) as spans; a stretch
    ends where the next state begins, or one ``step`` after its last point at the end."""
    spans: list[Span] = []
    start: float | None = None
    current: tuple[str, str | None] | None = None
    for i, (t, state) in enumerate(zip(ts, states)):
        if state != current:
            if current is not None and start is not None:
                spans.append(Span(start, t, current[0], colour=current[1]))
            start, current = t, state
        if i == len(ts) - 1 and current is not None and start is not None:
            spans.append(Span(start, t + step, current[0], colour=current[1]))
    return spans


async def _read_band(store: MetricStore, band: Band, since: float, until: float, resolution: int) -> list[Span]:
    if band.family is not None:
        found = await store.query_many(band.metric, None, since=since, until=until, resolution=resolution)
        series = [(labels, found[key]) for key in found if _matches(labels := parse_labels(key), band.family)]
    else:
        series = [(dict(band.labels or {}), await store.query(band.metric, labels=band.labels, since=since,
                                                               until=until, resolution=resolution))]
    step = max(resolution, 10)
    spans: list[Span] = []
    for labels, points in series:
        if band.states is None:
            legend = _legend(Line(band.metric, band.legend), labels)
            marks: list[tuple[str, str | None] | None] = [(legend, None) if p.value >= 0.5 else None for p in points]
        else:
            named = {round(v): (_legend(Line(band.metric, band.legend), {**labels, "state": name}), colour)
                     for v, (name, colour) in band.states.items()}
            marks = [named.get(round(p.max)) for p in points]  # the worst state of the bucket
        spans += _spans([p.ts for p in points], marks, step)
    return merge_spans(spans)


async def _read_panel(store: MetricStore, panel: Panel, since: float, until: float, resolution: int,
                      settings: Any, latest: _Latest) -> PanelData:
    by_metric: dict[str, dict[int, Line]] = {}
    for index, line in enumerate(panel.lines):
        by_metric.setdefault(line.metric, {})[index] = line
    read: dict[int, list[SeriesData]] = {}
    for metric, lines in by_metric.items():
        read |= await _read_metric(store, metric, lines, since, until, resolution)
    lines_read = [series for index in range(len(panel.lines)) for series in read[index]]
    thresholds = []
    for level in panel.thresholds:
        value = await _level(latest, level, settings)
        if value is not None:
            thresholds.append((value, level.legend))
    spans: list[Span] = []
    for band in panel.bands:
        spans += await _read_band(store, band, since, until, resolution)
    data = PanelData(panel.title, panel.unit, lines_read, panel.stacked, thresholds, spans=spans)
    target = next((s for s in lines_read if s.name == panel.trend), None) if panel.trend else None
    if target is not None and len(target.ts) >= MIN_POINTS:
        fit = theil_sen(target.ts, target.values)
        if fit is not None:
            end = until + FORECAST_SHARE * (until - since)
            limit = await _level(latest, panel.limit, settings) if panel.limit is not None else None
            eta = (time_to_reach(fit, now=target.ts[-1], current=target.values[-1], limit=limit)
                   if limit is not None else None)
            data.trend = TrendData(target.name, [target.ts[0], end], [fit.at(target.ts[0]), fit.at(end)],
                                   fit.slope * 3600.0, limit, panel.limit.legend if panel.limit else None, eta)
            if limit is not None:
                data.thresholds.append((limit, panel.limit.legend if panel.limit else "limit"))
    return data


def _key_figures(panels: list[PanelData]) -> list[KeyFigure]:
    out = []
    for panel in panels:
        drawn = [s for s in panel.lines if s.values]
        if not drawn:
            continue
        main = next((s for s in drawn if panel.trend and s.name == panel.trend.line), drawn[0])
        figure = KeyFigure(panel.title, main.name, panel.unit, main.values[-1], min(main.values), max(main.values))
        if panel.trend is not None and panel.trend.line == main.name:
            figure.slope_per_h = panel.trend.slope_per_h
            figure.eta_s = panel.trend.eta_s
            figure.limit_legend = panel.trend.limit_legend
        out.append(figure)
    return out


async def fetch_chart(store: MetricStore, preset: Preset, range_name: str, now: float,
                      *, settings: Any = None) -> ChartData | NotEnoughData:
    """Read everything ``preset`` draws over ``range_name`` ending at ``now``."""
    span = RANGES[range_name]
    return await fetch_window(store, preset, now - span, now, range_name=range_name, settings=settings)


async def fetch_window(store: MetricStore, preset: Preset, since: float, now: float, *, range_name: str,
                       settings: Any = None) -> ChartData | NotEnoughData:
    """Like :func:`fetch_chart` over ``(since, now]`` (e.g. a digest's day); ``range_name``
    names the span in the title when it is not one of ``RANGES``."""
    until = now + 1e-6
    resolution = store.pick_resolution(since, until, now)
    if preset.kind == "alerts":
        timeline, windows = await fetch_timeline(store.db, since, until)
        if timeline is None:
            also = f" ({windows} maintenance window{'s' if windows != 1 else ''})" if windows else ""
            return NotEnoughData(preset.name, range_name, 0, None, text=f"no incidents in this range{also}")
        return ChartData(preset.name, preset.title, range_name, since, now, resolution, timeline=timeline)
    if preset.kind == "flow":
        flow = await fetch_flow(store, since, until, resolution)
        if flow.total_moves == 0 and flow.points < MIN_POINTS:
            return NotEnoughData(preset.name, range_name, flow.points, flow.first_ts)
        return ChartData(preset.name, preset.title, range_name, since, now, resolution, flow=flow)
    # panels in parallel (one database connection each, at most 3 per picture); lines in turn
    latest = _Latest(store)
    panels = list(await asyncio.gather(
        *(_read_panel(store, p, since, until, resolution, settings, latest) for p in preset.panels)))
    longest = max((len(s.ts) for p in panels for s in p.lines), default=0)
    if longest < MIN_POINTS:
        firsts = [s.ts[0] for p in panels for s in p.lines if s.ts]
        return NotEnoughData(preset.name, range_name, longest, min(firsts) if firsts else None)
    spans, shading = await fetch_shading(store.db, since, until)
    return ChartData(preset.name, preset.title, range_name, since, now, resolution, panels,
                     key=_key_figures(panels), spans=spans, shading=shading)
