"""The /graph answers: the photo's caption, its buttons, and the text answers (usage, unknown
names, not enough data, busy).

    graph_caption(chart_data)            # '<b>Health</b> · last 6h\\nMemory (resident) RSS: now 1.1 GiB ...'
    graph_keyboard(signer, "health", "6h")
"""
from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from app.durations import fmt_duration
from bot.callbacks import CallbackSigner, GraphCb
from charts.alert_timeline import ShadingSummary, TimelineData
from charts.data import ChartData, KeyFigure
from charts.presets import PRESETS
from charts.ranges import RANGES
from charts.units import fmt_eta, fmt_value
from delivery.html import MAX_CAPTION_LEN, bold, code, esc, visible_len
from monitoring.metric_names import PREFIX

USAGE = ("Usage: /graph [preset|metric] [range], e.g. /graph health 24h\n"
         "Presets: {presets}. Ranges: {ranges}. A metric name works too: /graph tokenwatch_process_resident_bytes 6h")


def usage_text() -> str:
    return esc(USAGE.format(presets=", ".join(PRESETS), ranges=", ".join(RANGES)))


def unknown_target_text(name: str, closest: list[str]) -> str:
    shown = name if len(name) <= 60 else name[:59] + "…"
    lines = [f"Unknown preset or metric: {code(shown)}"]
    if closest:
        lines.append("Closest: " + ", ".join(code(c) for c in closest))
    lines.append(f"Presets: {esc(', '.join(PRESETS))}")
    return "\n".join(lines)


def unknown_range_text(text: str) -> str:
    shown = text if len(text) <= 20 else text[:19] + "…"
    return f"Unknown range {code(shown)}: use {esc(', '.join(RANGES))}."


def _figure_line(f: KeyFigure) -> str:
    parts = [f"now {fmt_value(f.now, f.unit)}", f"min {fmt_value(f.low, f.unit)}", f"max {fmt_value(f.high, f.unit)}"]
    if f.slope_per_h is not None:
        sign = "+" if f.slope_per_h >= 0 else ""
        parts.append(f"trend {sign}{fmt_value(f.slope_per_h, f.unit)}/h")
    if f.limit_legend:
        if f.eta_s is None:
            parts.append(f"not heading for the {f.limit_legend}")
        elif f.eta_s <= 0:
            parts.append(f"at the {f.limit_legend}")
        else:
            parts.append(f"{f.limit_legend} in ~{fmt_eta(f.eta_s)}")
    return f"{bold(f.panel)} ({esc(f.line)}): " + esc(", ".join(parts))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _severities(by_severity: dict[str, int]) -> str:
    return ", ".join(f"{n} {sev}" for sev, n in by_severity.items())


def _timeline_lines(tl: TimelineData) -> list[str]:
    head = _plural(tl.incidents, "incident")
    if tl.incidents_by_severity:
        head += f" ({_severities(tl.incidents_by_severity)})"
    if tl.ongoing_incidents:
        head += f", {tl.ongoing_incidents} still open"
    head += f"; {tl.acknowledged_incidents} acknowledged"
    lines = [esc(head)]
    for rule in tl.rules:
        lines.append(f"{code(rule.rule)} " + esc(f"{rule.severity}: fired {rule.firings}×, "
                                                   f"{fmt_duration(rule.firing_s)} firing"))
    if tl.maintenance:
        total = sum(s.end - s.start for s in tl.maintenance)
        lines.insert(1, esc(f"maintenance: {_plural(len(tl.maintenance), 'window')}, {fmt_duration(total)} (hatched)"))
    return lines


def _shading_line(s: ShadingSummary) -> str:
    parts = []
    if s.incidents:
        part = f"{_plural(s.incidents, 'incident')} ({_severities(s.by_severity)})"
        parts.append(part + (f", {s.ongoing} open" if s.ongoing else ""))
    if s.maintenance_windows:
        parts.append(f"maintenance {fmt_duration(s.maintenance_s)} (hatched)")
    return esc("shaded: " + "; ".join(parts) + " · /graph alerts")


def graph_caption(data: ChartData) -> str:
    """Key numbers of the picture (now, min, max, trend, time to the limit; incidents and
    maintenance shaded; for ``alerts`` incidents and each rule's firings), within 1024 characters."""
    head = f"{bold(data.title)} · last {esc(data.range_name)}"
    lines = [head]
    if data.flow is not None:
        f = data.flow
        moves = ", ".join(f"{src}→{dst} {n} ({f.rate_per_h(src, dst):.3g}/h)" for (src, dst), n in sorted(f.edges.items()))
        lines.append(esc(moves or "no status changes in this range"))
        now = ", ".join(f"{k} {v}" for k, v in sorted(f.counts_now.items()))
        if now:
            lines.append(esc(f"now: {now}"))
        rate = f.success_rate
        lines.append(esc(f"activation success rate: {rate * 100:.0f}%" if rate is not None
                         else "activation success rate: no token left monitoring"))
    elif data.timeline is not None:
        lines += _timeline_lines(data.timeline)
    else:
        lines += [_figure_line(f) for f in data.key]
        if data.shading:
            lines.append(_shading_line(data.shading))
    out = lines[0]
    for line in lines[1:]:
        candidate = out + "\n" + line
        if visible_len(candidate) > MAX_CAPTION_LEN:
            break
        out = candidate
    return out


def target_of(name: str) -> str:
    """What a button carries for ``name``: a preset's name, or a metric's name without the prefix."""
    return name.removeprefix(PREFIX)


def graph_keyboard(signer: CallbackSigner, current: str, span: str) -> InlineKeyboardMarkup:
    """Row 1: presets (the current one marked); row 2: ranges of the current preset or metric."""
    cur = target_of(current)
    presets = [InlineKeyboardButton(text=("• " if name == cur else "") + name,
                                    callback_data=signer.pack(GraphCb(target=name, span=span)))
               for name in PRESETS]
    ranges = [InlineKeyboardButton(text=("• " if r == span else "") + r,
                                   callback_data=signer.pack(GraphCb(target=cur, span=r)))
              for r in RANGES]
    rows = [presets[i:i + 3] for i in range(0, len(presets), 3)]
    return InlineKeyboardMarkup(inline_keyboard=[*rows, ranges])
