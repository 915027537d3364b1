"""Build the recovery layer: the knob registry and the controllers that turn the knobs.

    recovery = await build_recovery(ctx)          # after build_monitoring, before build_alerts
    client.latency_observer = recovery.rto        # the service wires recovery's hooks into tokens/
    pipeline.breakers.on_transition(recovery.breaker_actions)
    scheduler.add_all(recovery.jobs()); supervisor.add_all(recovery.loops())
    ...
    await recovery.stop()

Each controller reads what monitoring measured (the snapshot, the metric store) or the hooks the
pipeline offers, and acts only through ``ctx.knobs`` (``recovery.knobs``) and the protocols in
``recovery.controllers``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.scheduler import JobSpec
from app.supervisor import LoopSpec
from recovery.breaker_actions import BreakerActions
from recovery.context import RecoveryContext
from recovery.knobs import KnobRegistry
from recovery.rto import RtoBounds, RtoController


@dataclass
class Recovery:
    """The running recovery parts; ``stop()`` undoes ``build_recovery``."""

    knobs: KnobRegistry
    rto: RtoController | None = None  # the market client's timeouts (the service wires it in)
    breaker_actions: BreakerActions | None = None  # the market breakers' listener (the service wires it in)
    _jobs: list[JobSpec] = field(default_factory=list)
    _loops: list[LoopSpec] = field(default_factory=list)

    def jobs(self) -> list[JobSpec]:
        return list(self._jobs)

    def loops(self) -> list[LoopSpec]:
        return list(self._loops)

    async def stop(self) -> None:
        return None


async def build_recovery(ctx: RecoveryContext) -> Recovery:
    knobs = ctx.knobs = ctx.knobs or KnobRegistry(ctx.clock)
    recovery = Recovery(knobs, breaker_actions=BreakerActions(knobs))
    client = ctx.pipeline.client if ctx.pipeline is not None else None
    if client is not None:
        s = ctx.settings
        recovery.rto = RtoController(knobs, client, ctx.pipeline.breakers.endpoints,  # type: ignore[union-attr]
                                     RtoBounds(s.rto_min_s, max(s.rto_min_s, s.rto_max_s)))
    return recovery
