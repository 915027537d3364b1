"""The alert commands' messages: incident cards (/alerts), an incident's timeline (🔎 Details),
one-line answers (/ack, bad arguments), and the /status line.

Every string that comes from the alert layer (titles, summaries, label values, names, reasons)
is escaped and truncated here; the service's ``ActionResult.text`` is plain text.

    render_incident_card(view, now)                 # one incident, for its keyboard
    render_open_alerts(views, counts, shown=10)     # the /alerts header
    render_incident_details(view, timeline, now)    # the 🔎 Details reply
    render_action_result(result)                    # "✅ Acknowledged."
    render_usage(Usage("'abc' is not an incident number", "/ack 12"))
    render_alerts_status(open_counts, maintenance, now)   # /status
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from alerts.api import ActionResult, IncidentView, MaintenanceView, MemberView, TimelineEntry
from alerts.units import fmt_unit
from bot.alert_args import Usage
from bot.views.fmt import fmt_duration, fmt_when
from bot.views.stuck import one_line
from delivery.html import bold, code, esc, italic, visible_len

ALERTING_OFF = "Alerting is not running in this process."
SEVERITY_ICONS = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
STATE_ICONS = {"firing": "🔥", "pending": "⏳", "resolved": "✅"}
CARD_BUDGET = 3000      # visible characters of a card (Telegram allows 4096)
DETAILS_BUDGET = 3900
MAX_SUMMARY = 300
MAX_LABELS = 120
MAX_TIMELINE = 30


def line(value: object, n: int) -> str:
    """Untrusted text as one escaped display line (no line breaks, no bidi controls), cut to ``n``."""
    return esc(one_line(value, n))


def clock(ts: float | None) -> str:
    """``07 Mar 14:05 UTC``."""
    if ts is None or not math.isfinite(ts):
        return "—"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%d %b %H:%M UTC")


def severity_icon(severity: str, status: str = "open") -> str:
    return "✅" if status == "resolved" else SEVERITY_ICONS.get(severity, "⚪")


def _labels(labels: Mapping[str, str]) -> str:
    text = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return line(text, MAX_LABELS) if text else ""


def _member_line(m: MemberView, now: float) -> str:
    icon = STATE_ICONS.get(m.state, "•")
    head = f"{icon} {code(one_line(m.rule, 48))}"
    labels = _labels(m.labels)
    if labels:
        head += f" {labels}"
    facts = [f"value {code(fmt_unit(m.value, m.unit))}"]
    if m.since is not None:
        facts.append(esc(fmt_when(m.since, now).replace(" ago", "")) + (" firing" if m.state == "firing" else ""))
    if m.flapping:
        facts.append("flapping")
    return f"{head} — {line(m.summary, MAX_SUMMARY)} ({' · '.join(facts)})"


def _status_line(v: IncidentView, now: float) -> str:
    if v.status == "resolved":
        lasted = (v.resolved_at or now) - v.opened_at
        return f"Resolved {esc(fmt_when(v.resolved_at, now))} after {esc(fmt_duration(lasted))}"
    parts = [f"{esc(v.status)} for {esc(fmt_duration(now - v.opened_at))}"]
    if v.escalation_level:
        parts.append(f"escalation level {code(v.escalation_level)}")
    if v.next_escalation_at is not None and v.status == "open":
        parts.append(f"escalates {esc(fmt_when(v.next_escalation_at, now))}")
    return "Status: " + " · ".join(parts)


def _size(text: str) -> int:
    """Visible length of a piece of message HTML (its raw length if it does not parse)."""
    try:
        return visible_len(text)
    except ValueError:
        return len(text)


def _fill(lines: list[str], extra: Sequence[str], budget: int, more: str) -> None:
    """Append ``extra`` lines while the visible text stays within ``budget``; then say how many were left."""
    used = sum(_size(x) + 1 for x in lines)
    for i, entry in enumerate(extra):
        size = _size(entry) + 1
        if used + size > budget:
            lines.append(italic(more.format(n=len(extra) - i)))
            return
        lines.append(entry)
        used += size


def render_incident_card(v: IncidentView, now: float, *, budget: int = CARD_BUDGET) -> str:
    """One incident: severity, title, state, who acknowledged, its alerts (root causes first, the
    consequences folded under them), the runbook hint; within ``budget`` visible characters, so a
    card is one message with its buttons however long the names in it."""
    lines = [f"{severity_icon(v.severity, v.status)} {bold(f'#{v.id}')} {bold(one_line(v.severity.upper(), 10))} · "
             f"{bold(one_line(v.title, 200))}",
             _status_line(v, now)]
    if v.acked_by is not None and v.status != "resolved":
        ack = f"✅ Acknowledged by {line(v.acked_by, 64)} {esc(fmt_when(v.acked_at, now))}"
        if v.ack_until is not None:
            ack += f" (holds until {esc(clock(v.ack_until))})"
        lines.append(ack)
    if v.muted_reason:
        lines.append(f"🔕 muted: {line(v.muted_reason, 120)}")
    if v.flapping:
        lines.append("🔁 flapping: one message until it settles")
    roots = [m for m in v.members if m.folded_under is None]
    folded = [m for m in v.members if m.folded_under is not None]
    tail = [f"📖 {line(v.runbook, 300)}"] if v.runbook else []
    if folded:
        tail.insert(0, italic(f"{len(folded)} consequence(s) folded under the root cause"))
    members = [_member_line(m, now) for m in roots] + ["   ↳ " + _member_line(m, now) for m in folded]
    _fill(lines, members, budget - sum(_size(x) + 1 for x in tail) - 40, "… and {n} more")
    return "\n".join(lines + tail)


def render_open_alerts(views: Sequence[IncidentView], counts: Mapping[str, int], *, shown: int) -> str:
    """The /alerts header: how many incidents are open, and how many cards follow."""
    if not views:
        return "✅ No open alerts."
    total = len(views)
    by_sev = " · ".join(f"{severity_icon(s)} {line(s, 12)} {code(n)}" for s, n in sorted(counts.items()) if n)
    text = f"🚨 {bold('Open alerts')}: {code(total)}" + (f" ({by_sev})" if by_sev else "")
    if shown < total:
        text += f"\n{italic(f'showing the {shown} most severe; /ack <id> works for every one')}"
    return text


def _entry_line(e: TimelineEntry) -> str:
    time = datetime.fromtimestamp(e.at, tz=timezone.utc).strftime("%H:%M:%S") if math.isfinite(e.at) else "—"
    text = f"{code(time)} {bold(one_line(e.kind, 32))}"
    if e.detail:
        text += f" — {line(e.detail, MAX_SUMMARY)}"
    if e.value is not None:
        text += f" (value {code(fmt_unit(e.value, ''))})"
    if e.actor:
        text += f" · by {line(e.actor, 64)}"
    return text


def render_incident_details(v: IncidentView, timeline: Sequence[TimelineEntry], now: float) -> str:
    """🔎 Details: the incident card, then its timeline (values, state changes, who did what),
    oldest first; the newest entries are kept when it all would not fit in one message."""
    head = render_incident_card(v, now, budget=DETAILS_BUDGET // 2)
    lines = [head, "", f"🕑 {bold('Timeline')} (UTC)"]
    entries = [_entry_line(e) for e in sorted(timeline, key=lambda e: e.at)[-MAX_TIMELINE:]]
    if not entries:
        lines.append(italic("nothing recorded yet"))
    budget = DETAILS_BUDGET - sum(_size(x) + 1 for x in lines) - 40
    kept: list[str] = []
    for entry in reversed(entries):  # the newest first, while they fit
        budget -= _size(entry) + 1
        if budget < 0:
            break
        kept.append(entry)
    if len(kept) < len(entries):
        lines.append(italic(f"… {len(entries) - len(kept)} earlier entries"))
    return "\n".join(lines + kept[::-1])


def render_action_result(result: ActionResult) -> str:
    icon = "✅" if result.changed else ("ℹ️" if result.ok else "⚠️")
    return f"{icon} {line(result.text, 500)}"


def render_usage(usage: Usage) -> str:
    """A one-line refusal of bad arguments with an example (the alert layer's answers carry their own)."""
    if not usage.example:
        return f"⚠️ {line(usage.problem, 300)}"
    return f"⚠️ {line(usage.problem, 200)}. Example: {code(usage.example)}"


def render_alerts_status(counts: Mapping[str, int], maintenance: MaintenanceView | None, now: float) -> str:
    """The /status lines: open incidents (and how many are critical), maintenance while it is on."""
    total = sum(counts.values())
    critical = counts.get("critical", 0)
    head = f"Alerts: {code(total)} open" + (f" ({code(critical)} critical)" if critical else "")
    lines = [bold("Alerts"), head]
    if maintenance is not None:
        until = datetime.fromtimestamp(maintenance.ends_at, tz=timezone.utc).strftime("%H:%M")
        text = f"🛠 Maintenance until {esc(until)} UTC"
        if maintenance.reason:
            text += f" ({line(maintenance.reason, 120)})"
        lines.append(text)
    return "\n".join(lines)


def render_digest_caption(since: float, until: float) -> str:
    """The caption of a digest's chart when the digest's text is too long to be its caption."""
    return f"📊 {bold('Digest')} {esc(clock(since))} – {esc(clock(until))}"
