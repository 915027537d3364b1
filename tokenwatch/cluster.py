"""Several processes, as /status and /metrics show them: the process registry and leadership.

    collector = ClusterCollector(registry, gate)       # registered as collector "processes"
    ctx.collectors.register(collector)
    sections.add("processes", processes_section(registry, gate, kind="redis"), order=60)

``/metrics``: ``tokenwatch_process_up{role,host,pid}`` for every process in the registry (0 once it
stopped beating), ``tokenwatch_processes{role}``, and about this process ``tokenwatch_leader``,
``tokenwatch_leader_fence``, ``tokenwatch_leader_elections_total``, ``tokenwatch_leader_lock_up``.
/status: one line for the whole (``3 processes up: 1 leader, 1 standby, 1 worker``), one per process.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from app.durations import fmt_duration
from app.leader_gate import LeaderGate
from app.processes import ROLES, ProcessRegistry, ProcessView
from delivery.html import bold, code, esc
from monitoring import metric_names as m
from monitoring.sample import Sample
from monitoring.snapshot import MonitoringSnapshot

MAX_LISTED = 12  # processes listed one per line in /status; the rest are counted


class ClusterCollector:
    """Collector ``processes`` (see the module docstring). ``gate`` is None in a worker."""

    name = "processes"

    def __init__(self, registry: ProcessRegistry, gate: LeaderGate | None) -> None:
        self.registry = registry
        self.gate = gate

    async def collect(self, now: float) -> list[Sample]:
        samples = [Sample(m.PROCESS_UP, 1.0 if p.up else 0.0, {"role": p.role, "host": p.host, "pid": str(p.pid)})
                   for p in self.registry.latest]
        up = Counter(p.role for p in self.registry.latest if p.up)
        samples += [Sample(m.PROCESSES, float(up.get(role, 0)), {"role": role}) for role in ROLES]
        gate = self.gate
        if gate is not None:
            lease: Any = gate.leadership
            samples += [Sample(m.LEADER, 1.0 if gate.is_leader() else 0.0),
                        Sample(m.LEADER_ELECTIONS_TOTAL, float(gate.elections)),
                        Sample(m.LEADER_LOCK_UP, 1.0 if lease.reachable else 0.0)]
            if lease.fence is not None:
                samples.append(Sample(m.LEADER_FENCE, float(lease.fence)))
        return samples


def summary_line(views: list[ProcessView]) -> str:
    """``3 processes up: 1 leader, 1 standby, 1 worker`` (+ ``· 1 down``)."""
    up = [p for p in views if p.up]
    counts = Counter(p.role for p in up)
    parts = [f"{counts[r]} {r}{'s' if counts[r] != 1 and r != 'standby' else ''}" for r in ROLES if counts[r]]
    line = f"{len(up)} process{'es' if len(up) != 1 else ''} up" + (f": {', '.join(parts)}" if parts else "")
    down = len(views) - len(up)
    if down:
        line += f" · {down} down"
    if not counts.get("leader") and any(p.role != "worker" for p in up):
        line += " · ⚠️ no leader"
    return line


def process_line(p: ProcessView, now: float) -> str:
    state = (f"up {esc(fmt_duration(max(0.0, now - p.started_at)))}" if p.up
             else f"⚠️ down, last heartbeat {esc(fmt_duration(p.heartbeat_age_s))} ago")
    fence = f" · term {code(p.fence)}" if p.role == "leader" and p.fence is not None else ""
    this = " (this one)" if p.this else ""
    return f"• {esc(p.role)} {code(p.host)} pid {code(p.pid)} · {state}{fence}{this}"


def render_processes(views: list[ProcessView], now: float, *, kind: str, lock_up: bool | None) -> str:
    lines = [bold("Processes"), esc(summary_line(views)) + f" · leadership {esc(kind)}"]
    if lock_up is False:
        lines.append("⚠️ the leadership lock does not answer: the leader keeps going alone, no takeover")
    lines += [process_line(p, now) for p in views[:MAX_LISTED]]
    if len(views) > MAX_LISTED:
        lines.append(f"… and {len(views) - MAX_LISTED} more")
    return "\n".join(lines)


def processes_section(registry: ProcessRegistry, gate: LeaderGate | None, *, kind: str):
    """The /status section provider (reads the registry's last read, never the database)."""

    async def section(_ctx: Any, _snapshot: MonitoringSnapshot, now: float) -> str:
        lock_up = None if gate is None else bool(getattr(gate.leadership, "reachable", True))
        return render_processes(registry.latest, now, kind=kind, lock_up=lock_up)

    return section
