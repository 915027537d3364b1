"""Renders of the /status pipeline sections (pure functions over query results).

    render_health_section(lag_report, stuck_count, stall_report, lookback_s=300)
    render_activation_section(activation_success, time_to_activation, failure_window, recommendation)
    render_errors_section(failed_fetches, recent_errors, now)
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from app.recent_errors import RecentError

from delivery.html import bold, code, esc
from bot.views.fmt import fmt_duration, fmt_when
from bot.views.stuck import display_name
from monitoring.failure_stats import FailureWindow
from monitoring.pipeline import ActivationSuccess, Distribution, LagReport, StallReport
from monitoring.pipeline.capacity import CapacityStatus
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


def render_capacity_line(cap: CapacityStatus) -> str:
    """What the API limit serves; when the tracked tokens exceed it (a backlog it cannot work off),
    the overdue count named as over capacity."""
    served = (f"the API limit ({code(f'{cap.api_rate_per_min:,}')}/min) keeps {code(f'{cap.hot_served:,}')} "
              f"tokens checked every {esc(fmt_duration(cap.hot_interval_s))} or {code(f'{cap.cold_served:,}')} "
              f"every {esc(fmt_duration(cap.cold_interval_s))}")
    if cap.over:
        return (f"⚠️ Over capacity: {code(f'{cap.overdue:,}')} tokens overdue, {code(f'{cap.tracked:,}')} tracked; "
                f"{served}")
    return f"Capacity: {served} · tracked {code(f'{cap.tracked:,}')}"


def render_health_section(lag: LagReport, stuck: int, stall: StallReport, *,
                          lookback_s: float | None = None, capacity: CapacityStatus | None = None) -> str:
    """``lookback_s``: how far back the last successful check was looked for (shown when none was found);
    ``capacity``: the capacity line (``monitoring.pipeline.capacity``)."""
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
    if capacity is not None:
        lines.append(render_capacity_line(capacity))
    return "\n".join(lines)


def render_activation_section(rate: ActivationSuccess, tta: Distribution, failures: FailureWindow | None,
                              recommendation: str | None = None) -> str:
    hours = rate.window_s / 3600.0
    window = f"{hours:g}h"
    lines = [
        bold("Activation"),
        f"Success ({esc(window)}): {code(_pct(rate.token_rate))} of {code(rate.left_monitoring)} tokens leaving "
        f"monitoring · checks passed {code(_pct(rate.check_pass_rate))} of {code(rate.checks_evaluated)}",
        f"Time to activation: {code(_dist(tta))}" if tta.count else "Time to activation: —",
    ]
    if failures is not None and failures.by_reason:
        top = ", ".join(f"{esc(f.reason)} {code(f.count)}" for f in failures.by_reason[:3])
        lines.append(f"Top failures (1h): {top}")
    if recommendation:
        lines.append(f"💡 {esc(recommendation)}")
    return "\n".join(lines)


ERRORS_WINDOW_S = 3600.0
ERRORS_SHOWN = 5


def _when(at: float, now: float) -> str:
    stamp = datetime.fromtimestamp(at, tz=timezone.utc).strftime("%H:%M:%S")
    return f"{stamp} ({fmt_when(at, now)})"


def render_errors_section(fetches: Sequence[CheckError], others: Sequence[RecentError], now: float,
                          limit: int = ERRORS_SHOWN) -> str:
    """Failed fetches, Telegram delivery failures and handler errors of the last hour, newest
    first, each with its time (UTC) and source; every text escaped."""
    rows: list[tuple[float, str]] = []
    for e in fetches:
        rows.append((e.at, f"• {esc(_when(e.at, now))} fetch {code(e.mint[:6] + '…' + e.mint[-4:])} "
                           f"{display_name(e.error or 'unknown error', 100)}"))
    for r in others:
        rows.append((r.at, f"• {esc(_when(r.at, now))} {esc(r.source)}: {display_name(r.text or 'unknown error', 160)}"))
    if not rows:
        return f"{bold('Last errors')}\nnone in the last hour"
    rows.sort(key=lambda row: row[0], reverse=True)
    return "\n".join([bold("Last errors"), *(text for _, text in rows[:limit])])
