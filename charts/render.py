"""Draw a ``ChartData`` as a PNG with matplotlib's object API (``Figure`` + ``FigureCanvasAgg``,
never pyplot: no global state, safe in a worker thread or process).

    picture = render_chart(data)
    picture.png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"; picture.series   # names of the lines drawn

Readable on a phone: one panel per row, large fonts, title with the range, units on the y axis,
threshold lines (a level far off the data's scale is written in the corner instead of flattening
the data), the Theil-Sen trend dotted with its forecast, shaded spans (bands in red, incidents
in their severity's colour, maintenance hatched grey). The ``alerts`` preset is a timeline: a
row per rule, bars where it fired coloured by severity, acknowledgments marked. Sizes stay inside
Telegram's photo limits (<= 10 MB, width + height <= 10000, ratio <= 20).
"""
from __future__ import annotations

import gc
import io
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from PIL import Image

from charts.alert_timeline import TimelineData
from charts.data import ChartData, PanelData, SeriesData
from charts.flow import NEW, FlowData
from charts.spans import INCIDENT, MAINTENANCE, Span
from charts.units import axis_scale, fmt_eta, fmt_value
from tokens.models import ACTIVE, ARCHIVED, MONITORING

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_SIDES_PX = 10_000
MAX_RATIO = 20.0
WIDTH_IN = 8.0
PANEL_H_IN = 2.9
DPI = 110
#: A level more than this many times above the data's maximum is written, not drawn.
OFF_SCALE = 3.0
#: Lines are thinned to this many points before drawing.
MAX_LINE_POINTS = 360
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
SEVERITY_COLOURS = {"critical": "tab:red", "warning": "tab:orange", "info": "tab:blue"}
#: the timeline: inches per rule row, and above/below the rows
ROW_H_IN = 0.42
TIMELINE_PAD_IN = 1.7


@dataclass
class Picture:
    png: bytes
    series: list[str] = field(default_factory=list)  # every line, level, trend and span drawn
    width: int = 0
    height: int = 0
    pid: int = 0  # the process that drew it
    cpu_s: float = 0.0  # CPU time the drawing took (its process's, for the benchmark)


def _label(text: str, n: int = 40) -> str:
    """Legend text the default font can show (label values are data, not trusted)."""
    clean = _UNPRINTABLE.sub("?", text)
    return clean if len(clean) <= n else clean[: n - 1] + "~"


def _dt(ts: float) -> float:
    """Epoch seconds as a matplotlib date number (days since 1970-01-01, the default epoch)."""
    return ts / 86400.0


def _thin(ts: list[float], values: list[float], n: int = MAX_LINE_POINTS) -> tuple[Any, Any]:
    """At most ``n`` points: bucket means, keeping each bucket's extreme when it stands out
    (a phone picture has ~800 pixels across; more points only cost drawing time)."""
    if len(ts) <= n:
        return ts, values
    t, v = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
    size = len(t) / n
    lo = (np.arange(n) * size).astype(int)
    hi = np.append(lo[1:], len(t))  # the buckets reduceat sums: up to the next start
    mean = np.add.reduceat(v, lo) / (hi - lo)
    top, bottom = np.maximum.reduceat(v, lo), np.minimum.reduceat(v, lo)
    peak = np.where(np.abs(top - mean) >= np.abs(bottom - mean), top, bottom)
    keep = np.abs(peak - mean) > 0.5 * (np.abs(mean) + 1e-12)
    return t[(lo + hi - 1) // 2], np.where(keep, peak, mean)


def _draw_panel(fig: Figure, ax, panel: PanelData, data: ChartData, drawn: list[str],  # noqa: ANN001
                shared: dict[str, Artist]) -> None:
    # y given: the title is not moved to clear top ticks (there are none; finding that out
    # measures every tick label, ~30 ms a panel)
    ax.set_title(panel.title, fontsize=12, loc="left", y=1.0)
    ax.grid(True, alpha=0.3)
    # every panel spans the same time, up to the end of the longest forecast
    x_end = max([data.until] + [p.trend.ts[-1] for p in data.panels if p.trend is not None])
    ax.set_xlim(_dt(data.since), _dt(x_end))
    series = [s for s in panel.lines if s.ts]
    if panel.stacked and series:
        xs = sorted({t for s in series for t in s.ts})
        by_ts = [dict(zip(s.ts, s.values)) for s in series]
        ys = [[d.get(t, 0.0) for t in xs] for d in by_ts]
        top = max((sum(col) for col in zip(*ys)), default=0.0)
    else:
        top = max((max(s.values) for s in series), default=0.0)
    div, axis_label = axis_scale(panel.unit, max([top] + [v for v, _l in panel.thresholds
                                                          if not (top > 0 and v > OFF_SCALE * top)]))
    if axis_label:
        ax.set_ylabel(axis_label, fontsize=10)
    if panel.stacked and series:
        thinned = [_thin(xs, y) for y in ys]
        ax.stackplot(np.asarray(thinned[0][0], dtype=float) / 86400.0,
                     [np.asarray(vs, dtype=float) / div for _t, vs in thinned],
                     labels=[_label(s.name) for s in series], alpha=0.8)
        drawn += [s.name for s in series]
    else:
        for s in series:
            xs_, vs = _thin(s.ts, s.values)
            ax.plot(np.asarray(xs_, dtype=float) / 86400.0, np.asarray(vs, dtype=float) / div,
                    label=_label(s.name), linewidth=1.8)
            drawn.append(s.name)
    if not series:
        ax.text(0.5, 0.5, "no data in this range", transform=ax.transAxes, ha="center", va="center",
                fontsize=11, color="gray")
    notes = []
    for value, legend in panel.thresholds:
        if top > 0 and value > OFF_SCALE * top:
            shown = fmt_value(value, panel.unit)
            notes.append(f"{_label(legend)}{'' if shown in legend else ': ' + shown} (off scale)")
        else:
            ax.axhline(value / div, linestyle="--", linewidth=1.2, color="tab:red", alpha=0.8,
                       label=_label(legend if fmt_value(value, panel.unit) in legend
                                    else f"{legend} {fmt_value(value, panel.unit)}"))
        drawn.append(legend)
    if panel.trend is not None:
        tr = panel.trend
        label = f"trend {'+' if tr.slope_per_h >= 0 else ''}{fmt_value(tr.slope_per_h, panel.unit)}/h"
        ax.plot([_dt(t) for t in tr.ts], [v / div for v in tr.values], linestyle=":", linewidth=2.0, color="black",
                label=_label(label))
        if tr.eta_s is not None and tr.limit_legend:
            notes.append(f"{_label(tr.limit_legend)} in {fmt_eta(tr.eta_s)}" if tr.eta_s > 0
                         else f"at {_label(tr.limit_legend)}")
        drawn.append(f"trend {tr.line}")
    # every kind of span is one collection however many spans it has (a patch per span cost
    # ~1 ms each to draw): the panel's bands named in its legend, the picture's incidents and
    # maintenance on every panel, named once in the figure's legend
    for legend, spans in _by_legend(panel.spans).items():
        _shade_many(ax, spans, label=_label(legend))
        drawn.append(legend)
    for legend, spans in _by_legend(data.spans).items():
        shared.setdefault(_label(legend), _shade_many(ax, spans))
        drawn.append(legend)
    if notes:
        ax.text(0.99, 0.97, "\n".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize=9,
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"})
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    _time_axis(ax, data)
    handles, _labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8, loc="upper left", ncols=min(3, len(handles)), framealpha=0.8)


def _by_legend(spans: list[Span]) -> dict[str, list[Span]]:
    groups: dict[str, list[Span]] = {}
    for span in spans:
        groups.setdefault(span.legend, []).append(span)
    return groups


def _span_style(span: Span) -> dict[str, Any]:
    if span.kind == MAINTENANCE:
        return {"facecolor": "0.55", "alpha": 0.22, "hatch": "//", "edgecolor": "0.35"}
    if span.kind == INCIDENT:
        return {"facecolor": SEVERITY_COLOURS.get(span.severity or "", "tab:orange"), "alpha": 0.13}
    return {"facecolor": span.colour or "tab:red", "alpha": 0.15}


def _shade_many(ax, spans: list[Span], label: str | None = None) -> Artist:  # noqa: ANN001
    """Spans of one legend (one style) as one collection across the panel's height: a band in
    red (or its state's colour), an incident in its severity's colour, a maintenance window
    hatched grey. ``label`` names it in the panel's legend. Returns the collection."""
    boxes = [[(_dt(s.start), 0.0), (_dt(s.start), 1.0), (_dt(s.end), 1.0), (_dt(s.end), 0.0)] for s in spans]
    style = _span_style(spans[0])
    coll = PolyCollection(boxes, transform=ax.get_xaxis_transform(), zorder=0.5, label=label,
                          facecolors=style["facecolor"], alpha=style["alpha"], linewidths=0,
                          edgecolors=style.get("edgecolor", "none"), hatch=style.get("hatch"))
    ax.add_collection(coll, autolim=False)  # y in axes units: must not stretch the data's limits
    return coll


def _time_axis(ax, data: ChartData) -> None:  # noqa: ANN001
    span_s = data.until - data.since
    ax.xaxis.set_major_locator(AutoDateLocator(tz=timezone.utc, minticks=3, maxticks=7))
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M" if span_s <= 86400 else "%d %b", tz=timezone.utc))
    ax.tick_params(labelsize=9)


def _draw_timeline(ax, tl: TimelineData, data: ChartData, drawn: list[str]) -> None:  # noqa: ANN001
    """One row per rule (most severe on top), a bar per stretch it fired, coloured by severity;
    a black marker where its incident was acknowledged; maintenance windows hatched across."""
    n = len(tl.rows)
    # a little room past the end for the "still firing" arrows
    ax.set_xlim(_dt(data.since), _dt(data.until + 0.02 * (data.until - data.since)))
    ax.set_ylim(-0.6, n - 0.4)
    ax.invert_yaxis()
    ax.set_yticks(range(n), [_label(r, 28) for r in tl.rows], fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    if tl.maintenance:
        _shade_many(ax, tl.maintenance, label="maintenance")
        drawn.append("maintenance")
    # one collection per severity, one marker line for the arrows and one for the acks
    min_w = (data.until - data.since) / 86400.0 / 250  # a firing of seconds still shows
    boxes: dict[str, list[list[tuple[float, float]]]] = {}
    for bar in tl.bars:
        x0, x1 = _dt(bar.start), _dt(bar.start) + max(min_w, _dt(bar.end) - _dt(bar.start))
        y0, y1 = bar.row - 0.32, bar.row + 0.32
        boxes.setdefault(bar.severity, []).append([(x0, y0), (x0, y1), (x1, y1), (x1, y0)])
        drawn.append(f"rule {tl.rows[bar.row]}")
    for severity, polys in boxes.items():
        ax.add_collection(PolyCollection(polys, facecolors=SEVERITY_COLOURS.get(severity, "tab:orange"),
                                         edgecolors="none", linewidths=0, label=severity), autolim=False)
    ongoing = [bar for bar in tl.bars if bar.ongoing]
    if ongoing:
        ax.scatter([_dt(b.end) for b in ongoing], [b.row for b in ongoing], marker=">", s=100, zorder=3,
                   c=[SEVERITY_COLOURS.get(b.severity, "tab:orange") for b in ongoing], edgecolors="black",
                   label="still firing")
    acks = [(ack.at, row) for ack in tl.acks for row in (ack.rows or [])]
    if acks:
        ax.plot([_dt(at) for at, _row in acks], [row for _at, row in acks], marker="v", markersize=9,
                color="black", linestyle="none", label="acknowledged")
        drawn.append("acknowledged")
    if tl.hidden_rules:
        ax.text(0.99, 0.01, f"+{tl.hidden_rules} more rules", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=9, color="0.3")
    _time_axis(ax, data)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.figure.legend(handles, labels, fontsize=9, loc="lower center", ncols=min(5, len(handles)),
                         framealpha=0.8)


_NODES = {NEW: (0.08, 0.5), MONITORING: (0.4, 0.5), ACTIVE: (0.85, 0.82), ARCHIVED: (0.85, 0.18)}


def _draw_flow(ax, flow: FlowData, drawn: list[str]) -> None:  # noqa: ANN001
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    biggest = max(flow.edges.values(), default=1) or 1
    for (src, dst), count in sorted(flow.edges.items()):
        if src not in _NODES or dst not in _NODES:
            continue
        (x0, y0), (x1, y1) = _NODES[src], _NODES[dst]
        width = 1.5 + 10.0 * (count / biggest) ** 0.5
        back = list(_NODES).index(dst) < list(_NODES).index(src) or (src, dst) == (ACTIVE, ARCHIVED)
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "lw": width, "color": "tab:blue" if not back else "tab:orange",
                                "alpha": 0.55, "shrinkA": 38, "shrinkB": 38,
                                "connectionstyle": f"arc3,rad={0.35 if back else 0.08}"})
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2 + (0.12 if back else 0.0)
        ax.text(mx, my, f"{count}\n{flow.rate_per_h(src, dst):.3g}/h", ha="center", va="center", fontsize=10,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.8"})
        drawn.append(f"{src}->{dst}")
    for name, (x, y) in _NODES.items():
        now = flow.counts_now.get(name)
        text = name if name == NEW else f"{name}\n{now if now is not None else '?'} now"
        ax.text(x, y, text, ha="center", va="center", fontsize=12, fontweight="bold",
                bbox={"boxstyle": "round,pad=0.6", "facecolor": "#eef3fb", "edgecolor": "tab:blue"})
    rate = flow.success_rate
    ax.text(0.02, 0.02, f"activation success rate: {rate * 100:.0f}%" if rate is not None
            else "activation success rate: no token left monitoring", transform=ax.transAxes, fontsize=11)
    if not flow.edges:
        ax.text(0.5, 0.95, "no status changes in this range", ha="center", fontsize=11, color="gray")


def _png(canvas: FigureCanvasAgg) -> bytes:
    """The drawn figure as an RGB PNG (the figure is opaque: an alpha channel is a quarter more
    bytes to filter and compress). A 256-colour palette would be faster still but merges the
    pale incident tints (info blue and critical red came out the same)."""
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(physical=True), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "png", compress_level=1)
    return buf.getvalue()


_FIGURES = threading.local()
#: Figures kept per drawing thread (one size per kind of picture: 3 panels, a timeline of n rows...).
KEPT_FIGURES = 4


def _figure(width_in: float, height_in: float) -> tuple[Figure, FigureCanvasAgg]:
    """A blank figure of this size for the calling thread: the last one of that size, cleared.
    Its canvas keeps its renderer, and with it matplotlib's cache of text sizes (every tick
    label, legend entry and title measured again on a new figure cost ~100 ms a picture)."""
    kept: OrderedDict[tuple[float, float], tuple[Figure, FigureCanvasAgg]] | None = getattr(_FIGURES, "kept", None)
    if kept is None:
        kept = _FIGURES.kept = OrderedDict()
    key = (round(width_in, 3), round(height_in, 3))
    found = kept.pop(key, None)
    if found is not None:
        for ax in list(found[0].axes):  # dropped, not cleared first (``clear`` would clear each)
            found[0].delaxes(ax)
        found[0].clear()
    else:
        fig = Figure(figsize=key, dpi=DPI)
        found = (fig, FigureCanvasAgg(fig))
        while len(kept) >= KEPT_FIGURES:
            kept.popitem(last=False)
    kept[key] = found
    return found


def render_chart(data: ChartData) -> Picture:
    """The PNG of ``data`` and the names of what was drawn (pure; runs in a worker)."""
    cpu0 = time.process_time()
    drawn: list[str] = []
    n = max(1, len(data.panels)) if data.flow is None else 1
    if data.timeline is not None:
        height_in = TIMELINE_PAD_IN + ROW_H_IN * max(3, len(data.timeline.rows))
    else:
        height_in = 0.8 + PANEL_H_IN * n if data.flow is None else 5.5
    if data.timeline is None and data.flow is None and data.spans:
        height_in += 0.25  # a line under the title names the incident and maintenance shading
    fig, canvas = _figure(WIDTH_IN, height_in)
    # fixed margins: constrained layout costs several extra draws
    if data.timeline is not None:  # room on the left for rule names, below for the legend
        longest = max((len(_label(r, 28)) for r in data.timeline.rows), default=8)
        fig.subplots_adjust(left=min(0.42, 0.05 + 0.0125 * longest), right=0.97, bottom=0.85 / height_in,
                            top=1 - 0.6 / height_in)
    else:
        fig.subplots_adjust(left=0.12, right=0.98, bottom=0.3 / height_in,
                            top=1 - (1.0 if data.spans else 0.75) / height_in, hspace=0.45)
    span = {3600.0: "1 hour", 21600.0: "6 hours", 86400.0: "24 hours", 604800.0: "7 days"}.get(
        round(data.until - data.since), data.range_name)
    fig.suptitle(f"{_label(data.title, 60)} — last {span} (UTC)", fontsize=14, fontweight="bold")
    if data.timeline is not None:
        _draw_timeline(fig.add_subplot(1, 1, 1), data.timeline, data, drawn)
    elif data.flow is not None:
        _draw_flow(fig.add_subplot(1, 1, 1), data.flow, drawn)
    else:
        shared: dict[str, Artist] = {}
        for i, panel in enumerate(data.panels):
            _draw_panel(fig, fig.add_subplot(n, 1, i + 1), panel, data, drawn, shared)
        if shared:
            fig.legend(list(shared.values()), list(shared), loc="upper center", ncols=min(5, len(shared)),
                       fontsize=9, frameon=False, bbox_to_anchor=(0.5, 1 - 0.5 / height_in))
    png = _png(canvas)
    width, height = (int(v) for v in canvas.get_width_height())
    if len(png) > MAX_PHOTO_BYTES or width + height > MAX_SIDES_PX or max(width, height) / min(width, height) > MAX_RATIO:
        raise ValueError(f"picture {width}x{height}, {len(png)} bytes is outside Telegram's photo limits")
    return Picture(png, drawn, width, height, os.getpid(), time.process_time() - cpu0)


def warm_up(*, freeze: bool = True) -> None:
    """Prepare a drawing process: draw one small picture (imports, fonts, a kept figure), then,
    with ``freeze``, ``gc.freeze()`` everything alive so far (matplotlib's modules and caches),
    so the garbage collector's full passes during later pictures skip it: they took ~100 ms of
    each picture before. For a process that only draws (``charts.worker`` runs it in each
    process of its pool), not for the service's own process."""
    t0 = 1_700_000_000.0
    ts = [t0 + 60 * i for i in range(30)]
    panel = PanelData("warm-up", "s", [SeriesData("x", ts, [float(i % 7) for i in range(30)])],
                      thresholds=[(5.0, "five")], spans=[Span(ts[3], ts[6], "band")])
    render_chart(ChartData("warm-up", "warm-up", "30m", ts[0], ts[-1], 60, [panel],
                           spans=[Span(ts[10], ts[12], "maintenance", kind=MAINTENANCE)]))
    if freeze:
        gc.collect()
        gc.freeze()
