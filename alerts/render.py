"""The engine's Telegram texts: the incident message (edited in place) and the short pings.

Every dynamic part goes through ``delivery.html.esc`` (rule labels and token names are
hostile input); the incident message stays under Telegram's 4096 characters with any
number of members (rules with many series collapse into counts and top reasons, and the
member list is cut with "… N more")::

    text = incident_text(view, now)             # Telegram HTML
    text = resolved_ping(view, now, meanwhile="acknowledged by Ann, escalated 1×")
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from app.durations import fmt_duration
from alerts.api import IncidentView, MemberView
from alerts.units import fmt_unit
from delivery.html import MAX_MESSAGE_LEN, bold, code, esc, truncate, visible_len

SEVERITY_EMOJI = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
RESOLVED_EMOJI = "✅"
FLOOD_AT = 4          # a rule with this many series or more shows as one line with counts
MAX_LINES = 30        # member lines before "… N more" (fewer when the text would be too long)
TEXT_BUDGET = MAX_MESSAGE_LEN - 200


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _reason(member: MemberView) -> str:
    return member.labels.get("reason") or member.summary


def _member_line(m: MemberView, now: float, indent: str) -> str:
    parts = [f"{indent}• {bold(m.rule)}"]
    if m.labels:
        parts.append(f" [{truncate(_labels(m.labels), 80)}]")
    parts.append(f" {truncate(m.summary, 200)}")
    if m.value is not None:
        vt = f" — {code(fmt_unit(m.value, m.unit))}"
        if m.threshold is not None:
            vt += f" (threshold {code(fmt_unit(m.threshold, m.unit))})"
        parts.append(vt)
    if m.state != "firing":
        parts.append(f" · {esc(m.state)}")
    elif m.since is not None:
        parts.append(f" · {esc(fmt_duration(now - m.since))}")
    if m.flapping:
        parts.append(" · 🔁 flapping")
    return "".join(parts)


def _flood_line(rule: str, members: Sequence[MemberView], indent: str) -> str:
    firing = sum(1 for m in members if m.state == "firing")
    top = Counter(_reason(m) for m in members).most_common(3)
    reasons = "; ".join(f"{truncate(r, 60)} ({n})" for r, n in top)
    return (f"{indent}• {bold(rule)} ×{len(members)} ({firing} firing) — top reasons: {reasons}")


def _member_lines(members: Sequence[MemberView], now: float) -> list[str]:
    roots = [m for m in members if m.folded_under is None]
    folded: dict[str, list[MemberView]] = {}
    for m in members:
        if m.folded_under is not None:
            folded.setdefault(m.folded_under, []).append(m)
    lines: list[str] = []

    def block(group: Sequence[MemberView], indent: str) -> None:
        by_rule: dict[str, list[MemberView]] = {}
        for m in group:
            by_rule.setdefault(m.rule, []).append(m)
        for rule, ms in by_rule.items():
            if len(ms) >= FLOOD_AT:
                lines.append(_flood_line(rule, ms, indent))
            else:
                lines.extend(_member_line(m, now, indent) for m in ms)
            if indent == "" and rule in folded:
                lines.append("   <i>consequences:</i>")
                block(folded.pop(rule), "   ↳ ")

    block(roots, "")
    for rest in folded.values():  # consequences whose root already left the incident
        block(rest, "   ↳ ")
    return lines


def _status_lines(v: IncidentView, now: float) -> list[str]:
    out: list[str] = []
    if v.status == "resolved" and v.resolved_at is not None:
        out.append(f"{RESOLVED_EMOJI} <b>Resolved</b> after {esc(fmt_duration(v.resolved_at - v.opened_at))}")
    else:
        out.append(f"Open for {esc(fmt_duration(now - v.opened_at))}")
        if v.acked_by is not None and v.acked_at is not None:
            ack = f"✅ Acknowledged by {bold(truncate(v.acked_by, 64))} {esc(fmt_duration(now - v.acked_at))} ago"
            if v.ack_until is not None:
                ack += f"; lapses in {esc(fmt_duration(max(0.0, v.ack_until - now)))}"
            out.append(ack)
        elif v.next_escalation_at is not None:
            out.append(f"⏫ Escalation level {v.escalation_level}; next step in "
                       f"{esc(fmt_duration(max(0.0, v.next_escalation_at - now)))}")
        elif v.escalation_level:
            out.append(f"⏫ Escalation level {v.escalation_level}")
    if v.flapping:
        out.append("🔁 <b>Flapping</b>: changing state too often; one message until it settles")
    if v.muted_reason:
        out.append(f"🔕 Muted: {truncate(v.muted_reason, 120)}")
    return out


def incident_text(v: IncidentView, now: float) -> str:
    """The incident message (Telegram HTML, at most 4096 characters)."""
    emoji = RESOLVED_EMOJI if v.status == "resolved" else SEVERITY_EMOJI.get(v.severity, "⚪")
    head = [f"{emoji} <b>{esc(v.severity.upper())}</b> #{v.id} · {esc(v.group)}",
            bold(truncate(v.title, 300))]
    head += _status_lines(v, now)
    tail: list[str] = []
    if v.runbook:
        tail.append(f"📖 {truncate(v.runbook, 500)}")
    lines = _member_lines(v.members, now)
    limit = MAX_LINES
    while True:
        shown = lines[:limit]
        more = len(lines) - len(shown)
        body = shown + ([f"… {more} more line{'s' if more != 1 else ''}"] if more else [])
        text = "\n".join(head + [""] + body + ([""] + tail if tail else []))
        if len(text) <= TEXT_BUDGET or visible_len(text) <= TEXT_BUDGET or limit == 0:  # raw >= visible
            return text
        limit = max(0, limit // 2 if limit > 8 else limit - 1)


def _title(v: IncidentView) -> str:
    return f"#{v.id} {truncate(v.title, 200)}"


def join_ping(v: IncidentView, member: MemberView) -> str:
    return (f"{SEVERITY_EMOJI.get(member.severity, '⚪')} {bold(member.rule)} joined incident {_title(v)}: "
            f"{truncate(member.summary, 300)}")


def escalation_ping(v: IncidentView, now: float, mentions: Sequence[int], reason: str) -> str:
    who = ", ".join(f'<a href="tg://user?id={int(uid)}">admin {int(uid)}</a>' for uid in mentions)
    text = (f"⏫ {SEVERITY_EMOJI.get(v.severity, '⚪')} Incident {_title(v)} is unacknowledged after "
            f"{esc(fmt_duration(now - v.opened_at))} ({esc(reason)}).")
    return text + (f"\nOn call: {who}" if who else "")


def reminder_ping(v: IncidentView, now: float, acked_by: str) -> str:
    return (f"⏰ The acknowledgment of incident {_title(v)} by {bold(truncate(acked_by, 64))} lapsed; "
            f"still open after {esc(fmt_duration(now - v.opened_at))}. Acknowledge again or resolve it.")


def rearm_ping(v: IncidentView, acked_by: str, old: str) -> str:
    return (f"{SEVERITY_EMOJI.get(v.severity, '⚪')} Incident {_title(v)} rose from {esc(old)} to "
            f"<b>{esc(v.severity)}</b>; the acknowledgment by {bold(truncate(acked_by, 64))} no longer holds.")


def resolved_ping(v: IncidentView, now: float, meanwhile: str) -> str:
    lasted = fmt_duration((v.resolved_at or now) - v.opened_at)
    text = f"{RESOLVED_EMOJI} Resolved: {_title(v)} after {esc(lasted)}."
    if meanwhile:
        text += f"\nMeanwhile: {truncate(meanwhile, 600)}."
    return text


def plain_summary(v: IncidentView) -> str:
    """One plain-text line (logs, console, webhooks)."""
    return f"[{v.severity.upper()}] #{v.id} {v.title} ({v.status}, {len(v.members)} series)"
