"""The /status message: the pipeline section and the frame around all sections.

    render_pipeline_section(pipeline_snapshot, rate_window_s=60)
    render_status(texts, snapshot_at=snap.at, now=clock.time(), rate_window_s=60)
"""
from __future__ import annotations

from datetime import datetime, timezone

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CallbackSigner, StatusAction, StatusCb
from bot.views.fmt import fmt_duration, fmt_rate
from delivery.html import bold, code, esc
from monitoring.pipeline import PipelineSnapshot
from monitoring.snapshot import MonitoringSnapshot

STATUS_ORDER = ("monitoring", "active", "archived")


def window_label(seconds: float) -> str:
    """``60 -> "last 1 min"``, ``300 -> "last 5 min"``, ``3600 -> "last 1h"``, ``90 -> "last 90s"``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"last {seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"last {seconds / 60:g} min"
    return f"last {seconds:g}s"


def checks_line(p: PipelineSnapshot, rate_window_s: float) -> str:
    """``Checks/min (last 1 min): 0.0 ok, 235 failed (fetch)``: a failed fetch is recorded as a
    check but never counted as ok, so a market outage shows as 0 ok."""
    return (f"Checks/min ({esc(window_label(rate_window_s))}): {code(fmt_rate(p.check_rates.ok) + ' ok')}, "
            f"{code(fmt_rate(p.check_rates.failed) + ' failed')} (fetch)")


def render_pipeline_section(p: PipelineSnapshot, rate_window_s: float) -> str:
    names = [s for s in STATUS_ORDER if s in p.counts] + sorted(set(p.counts) - set(STATUS_ORDER))
    counts = " · ".join(f"{esc(name)} {code(p.counts[name])}" for name in names) or "no tokens yet"
    return "\n".join([
        bold("Pipeline"),
        f"Tokens: {counts}",
        f"{checks_line(p, rate_window_s)}  Backlog (due now): {code(p.lag.due)}",
        f"Activations ({esc(window_label(p.activation.window_s))}): {code(p.activation.activated)}",
    ])


def render_pipeline_unavailable(snapshot: MonitoringSnapshot, title: str = "Pipeline") -> str:
    health = snapshot.collectors.get("pipeline")
    if health is None:
        why = "the pipeline collector is not running"
    else:
        why = f"the pipeline collector failed: {health.last_error or 'unknown error'}"
    return f"{bold(title)}\n⚠️ figures unavailable: {esc(why)}"


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%H:%M:%S UTC")


def render_status(sections: list[str], snapshot_at: float | None, now: float,
                  rate_window_s: float | None = None) -> str:
    """The frame: the sections, then when their snapshot was collected and how old it is."""
    body = "\n\n".join(s for s in sections if s.strip())
    if snapshot_at is None:
        footer = "no collection yet"
    else:
        age = max(0.0, now - snapshot_at)
        footer = f"as of {_clock(snapshot_at)}, {fmt_duration(age)} ago"
        if rate_window_s:
            footer += f" · rates per min over the {window_label(rate_window_s)}"
        footer += " · 🔄 Refresh collects anew"
    return f"📊 {bold('tokenwatch status')}\n\n{body}\n\n<i>{esc(footer)}</i>"


def render_section_error(name: str, error: BaseException) -> str:
    return f"{bold(name)}\n<i>unavailable: {esc(type(error).__name__)}</i>"


def render_no_monitoring() -> str:
    return f"{bold('Monitoring')}\n⚠️ monitoring is not running in this process: no figures to show"


def status_keyboard(signer: CallbackSigner) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="🔄 Refresh", callback_data=signer.pack(StatusCb(action=StatusAction.REFRESH))),
    ]])
