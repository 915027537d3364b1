"""/silence and /maintenance: the silences in force and the maintenance window.

    render_silences(silences, now)          # one line each; an Unsilence button each (bot.alert_buttons)
    render_maintenance(maintenance, now)    # on (until when, why, by whom, what fired) or off
"""
from __future__ import annotations

from collections.abc import Sequence

from alerts.api import MaintenanceView, SilenceView
from bot.views.alerts import clock, line
from bot.views.fmt import fmt_when
from bot.views.stuck import one_line
from delivery.html import bold, code, esc, italic

MAX_SILENCES = 40


def render_silences(silences: Sequence[SilenceView], now: float) -> str:
    if not silences:
        return (f"🔕 {bold('Silences')}: none.\n"
                f"{italic('Add one: /silence rule=api_slow endpoint=tokens 2h deploy')}")
    lines = [f"🔕 {bold('Silences')} ({len(silences)})"]
    for s in list(silences)[:MAX_SILENCES]:
        entry = f"#{s.id} {code(one_line(s.matchers, 200))} — ends {esc(fmt_when(s.ends_at, now))}"
        entry += f" · by {line(s.created_by, 64)}"
        if s.reason:
            entry += f" · {line(s.reason, 200)}"
        lines.append(entry)
    if len(silences) > MAX_SILENCES:
        lines.append(italic(f"… and {len(silences) - MAX_SILENCES} more"))
    return "\n".join(lines)


def render_maintenance(m: MaintenanceView | None, now: float) -> str:
    if m is None:
        return (f"🛠 {bold('Maintenance')}: off.\n"
                f"{italic('Start it: /maintenance on 30m database upgrade')}")
    lines = [f"🛠 {bold('Maintenance')}: on until {esc(clock(m.ends_at))} ({esc(fmt_when(m.ends_at, now))})",
             f"started {esc(fmt_when(m.started_at, now))} by {line(m.started_by, 64)}"]
    if m.reason:
        lines.append(f"reason: {line(m.reason, 200)}")
    lines.append(f"alerts recorded meanwhile (not sent): {code(m.fired_meanwhile)}")
    lines.append(italic("non-critical notifications are muted; /maintenance off ends it"))
    return "\n".join(lines)
