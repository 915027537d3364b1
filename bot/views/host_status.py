"""The /status section about the host and the APIs: memory against its limit, CPU,
event-loop lag, and per-endpoint API health. Pure rendering from collected numbers.

    render_host_section(HostStatus(rss_bytes=..., memory_limit_bytes=..., ...))
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.render.html import bold, esc
from bot.views.fmt import fmt_duration


@dataclass(frozen=True)
class ApiHealth:
    endpoint: str
    p95_s: float | None
    error_rate: float | None
    rate_limited: float | None
    timeouts: float | None


@dataclass(frozen=True)
class HostStatus:
    rss_bytes: float | None = None
    memory_limit_bytes: float | None = None
    memory_share: float | None = None
    cpu_percent: float | None = None
    cpu_share: float | None = None
    effective_cores: float | None = None
    loop_lag_s: float | None = None
    loop_lag_max_s: float | None = None
    db_up: float | None = None
    redis_up: float | None = None
    apis: list[ApiHealth] = field(default_factory=list)


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value / 2**20:,.0f} MiB"


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.0f}%"


def _up(value: float | None) -> str:
    return "—" if value is None else ("up" if value >= 1 else "DOWN")


def render_host_section(h: HostStatus) -> str:
    lines = [bold("Host")]
    lines.append(f"Memory: {esc(_mib(h.rss_bytes))} of {esc(_mib(h.memory_limit_bytes))} ({esc(_pct(h.memory_share))})")
    cores = "—" if h.effective_cores is None else f"{h.effective_cores:g}"
    cpu = "—" if h.cpu_percent is None else f"{h.cpu_percent:.0f}% of a core"
    lines.append(f"CPU: {esc(cpu)}, {esc(_pct(h.cpu_share))} of {esc(cores)} cores")
    lines.append(f"Loop lag: {esc(fmt_duration(h.loop_lag_s))} (max {esc(fmt_duration(h.loop_lag_max_s))})")
    lines.append(f"Database: {esc(_up(h.db_up))}" + ("" if h.redis_up is None else f" · Redis: {esc(_up(h.redis_up))}"))
    if h.apis:
        lines.append(bold("APIs"))
        for api in h.apis:
            p95 = "—" if api.p95_s is None else f"{api.p95_s * 1000:.0f} ms"
            lines.append(
                f"{esc(api.endpoint)}: p95 {esc(p95)}, errors {esc(_pct(api.error_rate))}, "
                f"429s {esc('—' if api.rate_limited is None else f'{api.rate_limited:.0f}')}, "
                f"timeouts {esc('—' if api.timeouts is None else f'{api.timeouts:.0f}')}"
            )
    return "\n".join(lines)
