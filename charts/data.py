"""What a picture shows, read from the metric store: plain, picklable data for the renderer.

    data = await fetch_chart(store, get_preset("health"), "6h", now, settings=settings)
    if isinstance(data, NotEnoughData):
        print(data.message())            # 'not enough data yet: 3 points since 14:02 UTC'
    else:
        data.panels[0].lines[0].name     # 'RSS'

Everything is read through ``MetricStore.query`` / ``latest`` / ``series_labels`` (the store
picks raw, 1-minute or 1-hour rows for the span); the flow preset also reads
``charts.flow.transition_counts``. Alert history comes through ``alerts.history``
(``charts.alert_timeline``): the ``alerts`` preset's timeline, and on every metric picture the
incidents and maintenance windows of the range (``ChartData.spans``, shaded on every panel)::

    data.spans          # [Span(kind="incident", severity="critical"), Span(kind="maintenance"), ...]
    data.shading        # ShadingSummary: incidents by severity, maintenance windows (the caption)
"""
from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from charts.alert_timeline import ShadingSummary, TimelineData, fetch_shading, fetch_timeline
from charts.flow import FlowData, fetch_flow
from charts.presets import Band, Level, Line, Panel, Preset
from charts.ranges import RANGES
from charts.spans import Span
from monitoring.sample import canonical_labels
from monitoring.trend import theil_sen, time_to_reach
from monitoring.store import MetricStore

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


async def _read_line(store: MetricStore, line: Line, since: float, until: float,
                     resolution: int) -> list[SeriesData]:
    if line.family is not None:
        seen = await store.series_labels(line.metric, since=min(since, until - store.raw_retention_s))
        label_sets = [ls for ls in seen if all(ls.get(k) == v for k, v in line.family.items())]
    else:
        label_sets = [dict(line.labels or {})]
    found = await store.query_many(line.metric, label_sets, since=since, until=until, resolution=resolution)
    out = []
    for labels in label_sets:
        points = found[canonical_labels(labels)]
        ts = [p.ts for p in points]
        values = [p.value * line.scale for p in points]
        if line.counter:
            ts, values = _increase_per_minute(ts, values)
        out.append(SeriesData(_legend(line, labels), ts, values))
    return out


async def _level(store: MetricStore, level: Level, settings: Any) -> float | None:
    base: float | None = level.value
    if level.setting is not None:
        raw = getattr(settings, level.setting, None) if settings is not None else None
        base = float(raw) if raw is not None else None
    elif level.metric is not None:
        point = await store.latest(level.metric)
        base = point.value if point is not None else None
    if base is None or not math.isfinite(base):
        return None
    return base * level.share


def _spans(ts: list[float], values: list[float], step: float, legend: str) -> list[Span]:
    spans: list[Span] = []
    start: float | None = None
    for i, (t, v) in enumerate(zip(ts, values)):
        if v >= 0.5 and start is None:
            start = t
        if start is not None and (v < 0.5 or i == len(ts) - 1):
            end = t if v < 0.5 else t + step
            spans.append(Span(start, end, legend))
            start = None
    return spans


async def _read_panel(store: MetricStore, panel: Panel, since: float, until: float, resolution: int,
                      settings: Any) -> PanelData:
    lines: list[SeriesData] = []
    for line in panel.lines:
        lines += await _read_line(store, line, since, until, resolution)
    thresholds = []
    for level in panel.thresholds:
        value = await _level(store, level, settings)
        if value is not None:
            thresholds.append((value, level.legend))
    spans: list[Span] = []
    for band in panel.bands:
        points = await store.query(band.metric, labels=band.labels, since=since, until=until, resolution=resolution)
        spans += _spans([p.ts for p in points], [p.value for p in points], max(resolution, 10), band.legend)
    data = PanelData(panel.title, panel.unit, lines, panel.stacked, thresholds, spans=spans)
    target = next((s for s in lines if s.name == panel.trend), None) if panel.trend else None
    if target is not None and len(target.ts) >= MIN_POINTS:
        fit = theil_sen(target.ts, target.values)
        if fit is not None:
            end = until + FORECAST_SHARE * (until - since)
            limit = await _level(store, panel.limit, settings) if panel.limit is not None else None
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
    panels = list(await asyncio.gather(
        *(_read_panel(store, p, since, until, resolution, settings) for p in preset.panels)))
    longest = max((len(s.ts) for p in panels for s in p.lines), default=0)
    if longest < MIN_POINTS:
        firsts = [s.ts[0] for p in panels for s in p.lines if s.ts]
        return NotEnoughData(preset.name, range_name, longest, min(firsts) if firsts else None)
    spans, shading = await fetch_shading(store.db, since, until)
    return ChartData(preset.name, preset.title, range_name, since, now, resolution, panels,
                     key=_key_figures(panels), spans=spans, shading=shading)
