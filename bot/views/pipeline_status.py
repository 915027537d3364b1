"""Renders of the /status pipeline sections (pure functions over query results).

    render_health_section(lag_report, stuck_count, stall_report, lookback_s=300)
    render_activation_section(activation_success, time_to_activation, failure_window, recommendation)
    render_errors_section(last_errors, now)
"""
from __future__ import annotations

from collections.abc import Sequence

from delivery.html import bold, code, esc
from bot.views.fmt import fmt_duration, fmt_when
from bot.views.stuck import display_name
from monitoring.failure_stats import FailureWindow
from monitoring.pipeline import ActivationSuccess, Distribution, LagReport, StallReport
from monitoring.pipeline.errors import CheckError


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _dist(d: Distribution | None) -> str:
    if d is None or not d.count:
        return "—"
    return f"p50 {fmt_duration(d.p50)} · p95 {fmt_duration(d.p95)} · max {fmt_duration(d.max)}"


def _lag(d: Distribution | None) -> str:
    """A band's lag; "none due" when no token of the band is due (nothing is late)."""
    return "none due" if d is None or not d.count else _dist(d)


def render_health_section(lag: LagReport, stuck: int, stall: StallReport, *,
                          lookback_s: float | None = None) -> str:
    """``lookback_s``: how far back the last successful check was looked for (shown when none was found)."""
    lines = [bold("Processing")]
    if stall.stalled:
        where = f" — stopped at {code(stall.stage)}: {esc(stall.stage_reason)}" if stall.stage else ""
        if stall.silent_for_s is not None:
            silent = f"for {fmt_duration(stall.silent_for_s)}"
        elif lookback_s:
            silent = f"in the last {fmt_duration(lookback_s)}"
        else:
            silent = "recorded"
        lines.append(f"🔴 STALLED: no successful check {esc(silent)}{where}")
    for band in ("hot", "cold"):
        lines.append(f"Lag {esc(band)}: {code(_lag(lag.by_band.get(band)))}")
    lines.append(f"Due now: {code(lag.due)} · overdue &gt; 1 interval: {code(lag.overdue)} · stuck: {code(stuck)}"
                 + (" (see /stuck)" if stuck else ""))
    return "\n".join(lines)


def render_activation_section(rate: ActivationSuccess, tta: Distribution, failures: FailureWindow,
                              recommendation: str | None = None) -> str:
    hours = rate.window_s / 3600.0
    window = f"{hours:g}h"
    lines = [
        bold("Activation"),
        f"Success ({esc(window)}): {code(_pct(rate.token_rate))} of {code(rate.left_monitoring)} tokens leaving "
        f"monitoring · checks passed {code(_pct(rate.check_pass_rate))} of {code(rate.checks_evaluated)}",
        f"Time to activation: {code(_dist(tta))}" if tta.count else "Time to activation: —",
    ]
    if failures.by_reason:
        top = ", ".join(f"{esc(f.reason)} {code(f.count)}" for f in failures.by_reason[:3])
        lines.append(f"Top failures (1h): {top}")
    if recommendation:
        lines.append(f"💡 {esc(recommendation)}")
    return "\n".join(lines)


def render_errors_section(errors: Sequence[CheckError], now: float) -> str:
    if not errors:
        return f"{bold('Last errors')}\nnone in the last hour"
    lines = [bold("Last errors")]
    for e in errors:
        lines.append(f"• {esc(fmt_when(e.at, now))} {code(e.mint[:6] + '…' + e.mint[-4:])} "
                     f"{display_name(e.error or 'unknown error', 100)}")
    return "\n".join(lines)
