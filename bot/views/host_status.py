"""The /status section about the host and the APIs: memory against its limit, CPU,
event-loop lag, and per-endpoint API health. Pure rendering from collected numbers.

    render_host_section(HostStatus(rss_bytes=..., memory_limit_bytes=..., ...))
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from delivery.html import bold, esc
from bot.views.fmt import fmt_duration
from tokens.api_stats import WINDOW_S

API_WINDOW = f"{WINDOW_S / 60:g}m" if WINDOW_S % 60 == 0 else f"{WINDOW_S:g}s"  # "5m"


@dataclass(frozen=True)
class ApiHealth:
    endpoint: str
    p95_s: float | None
    error_rate: float | None
    rate_limited: float | None
    timeouts: float | None
    circuit: float | None = None           # tokenwatch_circuit_state: 0 closed, 1 half-open, 2 open
    circuit_retry_in_s: float | None = None
    timeout_s: float | None = None         # the request timeout in force (adaptive)


@dataclass(frozen=True)
class HostStatus:
    rss_bytes: float | None = None
    memory_limit_bytes: float | None = None
    memory_limit_is_cgroup: float | None = None  # 1 container limit, 0 host RAM, None unknown
    memory_share: float | None = None
    cpu_percent: float | None = None
    cpu_share: float | None = None
    effective_cores: float | None = None
    loop_lag_s: float | None = None
    loop_lag_max_s: float | None = None
    db_up: float | None = None
    redis_up: float | None = None
    apis: list[ApiHealth] = field(default_factory=list)
    failing_collectors: list[tuple[str, str]] = field(default_factory=list)  # (name, last error)


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.0f} MiB"


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.0f}%"


def _percent_figure(percent: float | None) -> str:
    """A CPU percentage, rounded half up the same way wherever it is shown: one decimal under
    10 % (trailing ``.0`` dropped), whole numbers above. ``3.0 -> "3%"``, ``1.5 -> "1.5%"``,
    ``12.5 -> "13%"`` (half up, where ``f"{12.5:.0f}"`` would give ``12``)."""
    if percent is None or not math.isfinite(percent):
        return "—"
    places = Decimal("0.1") if abs(percent) < 10 else Decimal("1")
    rounded = Decimal(repr(float(percent))).quantize(places, rounding=ROUND_HALF_UP)
    text = f"{rounded:f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def _memory_limit(h: HostStatus) -> str:
    limit = _mib(h.memory_limit_bytes)
    if h.memory_limit_bytes is None or h.memory_limit_is_cgroup is None:
        return limit
    return f"{limit} host RAM" if h.memory_limit_is_cgroup < 1 else f"{limit} container limit"


def _up(value: float | None) -> str:
    return "—" if value is None else ("up" if value >= 1 else "DOWN")


def _lag(seconds: float | None) -> str:
    """Loop lag is normally milliseconds: "4 ms", "250 ms", then "1.2s"."""
    if seconds is None or seconds < 0:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else fmt_duration(seconds)


def _circuit(api: ApiHealth) -> str:
    """" · 🔴 circuit open, next probe in 12s" / " · 🟡 circuit half-open (probing)" / "" when closed."""
    if api.circuit is None or api.circuit < 1:
        return ""
    if api.circuit >= 2:
        wait = api.circuit_retry_in_s
        return " · 🔴 circuit open" + ("" if wait is None or wait <= 0 else f", next probe in {fmt_duration(wait)}")
    return " · 🟡 circuit half-open (probing)"


def render_host_section(h: HostStatus) -> str:
    lines = [bold("Host")]
    lines.append(f"Memory: {esc(_mib(h.rss_bytes))} of {esc(_memory_limit(h))} ({esc(_pct(h.memory_share))})")
    cores = "—" if h.effective_cores is None else f"{h.effective_cores:g}"
    cpu = "—" if h.cpu_percent is None else f"{_percent_figure(h.cpu_percent)} of a core"
    share = _percent_figure(None if h.cpu_share is None else h.cpu_share * 100.0)
    of_cores = "1 core" if h.effective_cores == 1 else f"{cores} cores"
    lines.append(f"CPU: {esc(cpu)}, {esc(share)} of {esc(of_cores)}")
    lines.append(f"Loop lag: {esc(_lag(h.loop_lag_s))} (max {esc(_lag(h.loop_lag_max_s))})")
    lines.append(f"Database: {esc(_up(h.db_up))}" + ("" if h.redis_up is None else f" · Redis: {esc(_up(h.redis_up))}"))
    for name, error in h.failing_collectors:
        lines.append(f"⚠️ collector {esc(name)} failing: {esc(error[:200])}")
    if h.apis:
        lines.append(bold("APIs"))
        for api in h.apis:
            p95 = "—" if api.p95_s is None else f"{api.p95_s * 1000:.0f} ms"
            # every figure covers ApiStats' recent window
            lines.append(
                f"{esc(api.endpoint)} ({API_WINDOW}): p95 {esc(p95)}, errors {esc(_pct(api.error_rate))}, "
                f"429s {esc('—' if api.rate_limited is None else f'{api.rate_limited:.0f}')}, "
                f"timeouts {esc('—' if api.timeouts is None else f'{api.timeouts:.0f}')}"
                + ("" if api.timeout_s is None else f" (timeout {esc(fmt_duration(api.timeout_s))})")
                + esc(_circuit(api))
            )
    return "\n".join(lines)
