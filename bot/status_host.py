"""The /status section for the host and APIs, read from the cycle's ``MonitoringSnapshot``
(one collection shared by /status, /metrics and the alert rules).

    register_host_sections(sections)     # "host" (50)
"""
from __future__ import annotations

from typing import Any

from bot.context import BotContext
from bot.status_sections import StatusSections
from bot.views.host_status import ApiHealth, HostStatus, render_host_section
from monitoring import metric_names as m
from monitoring.snapshot import MonitoringSnapshot


def host_status(snapshot: MonitoringSnapshot | None) -> HostStatus:
    if snapshot is None:
        return HostStatus()
    value = snapshot.value
    endpoints = sorted({str(s.labels.get("endpoint", "")) for (name, _), s in snapshot.samples.items()
                        if name == m.API_REQUESTS_TOTAL} - {""})
    apis = [
        ApiHealth(
            endpoint=ep,
            p95_s=value(m.API_LATENCY_P95_SECONDS, {"endpoint": ep}),
            error_rate=value(m.API_ERROR_RATE, {"endpoint": ep}),
            rate_limited=value(m.API_WINDOW_RATE_LIMITED, {"endpoint": ep}),
            timeouts=value(m.API_WINDOW_TIMEOUTS, {"endpoint": ep}),
            circuit=value(m.CIRCUIT_STATE, {"endpoint": ep}),
            circuit_retry_in_s=value(m.CIRCUIT_RETRY_IN_SECONDS, {"endpoint": ep}),
            timeout_s=value(m.API_TIMEOUT_SECONDS, {"endpoint": ep}),
        )
        for ep in endpoints
    ]
    return HostStatus(
        rss_bytes=value(m.PROCESS_RESIDENT_BYTES),
        memory_limit_bytes=value(m.PROCESS_MEMORY_LIMIT_BYTES),
        memory_limit_is_cgroup=value(m.PROCESS_MEMORY_LIMIT_IS_CGROUP),
        memory_share=value(m.PROCESS_MEMORY_SHARE),
        cpu_percent=value(m.PROCESS_CPU_PERCENT),
        cpu_share=value(m.PROCESS_CPU_SHARE),
        effective_cores=value(m.PROCESS_EFFECTIVE_CORES),
        loop_lag_s=value(m.LOOP_LAG_SECONDS),
        loop_lag_max_s=value(m.LOOP_LAG_MAX_SECONDS),
        db_up=value(m.DB_UP),
        redis_up=value(m.REDIS_UP),
        apis=apis,
        failing_collectors=[(c.name, c.last_error or "unknown error") for c in snapshot.failing_collectors()],
    )


async def host_section(ctx: BotContext, snapshot: MonitoringSnapshot, now: float) -> str:
    return render_host_section(host_status(snapshot))


def register_host_sections(sections: StatusSections) -> None:
    sections.add("host", host_section, order=50)
