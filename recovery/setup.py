"""Build the recovery layer: the knob registry and the controllers that turn the knobs.

    recovery = await build_recovery(ctx)          # after build_monitoring, before build_alerts
    client.latency_observer = recovery.rto        # the service wires recovery's hooks into tokens/
    pipeline.breakers.on_transition(recovery.breaker_actions)
    scheduler.add_all(recovery.jobs()); supervisor.add_all(recovery.loops())
    ...
    await recovery.stop()

Controllers wired here when a pipeline runs: ``recovery.flow`` (the processor's in-flight limit and
batch size, fed by the processor's flow hook after every batch and run) and ``recovery.shedding``
(cold checks and profile polls under high CPU, fed by every monitoring snapshot).

Each controller reads what monitoring measured (the snapshot, the metric store) or the hooks the
pipeline offers, and acts only through ``ctx.knobs`` (``recovery.knobs``) and the protocols in
``recovery.controllers``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from app.scheduler import JobSpec
from app.supervisor import LoopSpec
from recovery.breaker_actions import BreakerActions
from recovery.context import RecoveryContext
from recovery.flow import FlowController, wire_flow
from recovery.knobs import KnobRegistry
from recovery.rto import RtoBounds, RtoController
from recovery.shedding import SheddingController, register_shedding_knobs


@dataclass
class Recovery:
    """The running recovery parts; ``stop()`` undoes ``build_recovery``."""

    knobs: KnobRegistry
    flow: FlowController | None = None  # the processor's in-flight limit (when a pipeline runs)
    shedding: SheddingController | None = None  # cold checks and profile polls under high CPU
    rto: RtoController | None = None  # the market client's timeouts (the service wires it in)
    breaker_actions: BreakerActions | None = None  # the market breakers' listener (the service wires it in)
    _unsubscribe: list[Callable[[], None]] = field(default_factory=list)
    _jobs: list[JobSpec] = field(default_factory=list)
    _loops: list[LoopSpec] = field(default_factory=list)

    def jobs(self) -> list[JobSpec]:
        return list(self._jobs)

    def loops(self) -> list[LoopSpec]:
        return list(self._loops)

    async def stop(self) -> None:
        while self._unsubscribe:
            self._unsubscribe.pop()()


async def build_recovery(ctx: RecoveryContext) -> Recovery:
    knobs = ctx.knobs = ctx.knobs or KnobRegistry(ctx.clock)
    recovery = Recovery(knobs, breaker_actions=BreakerActions(knobs))
    processor = ctx.pipeline.processor if ctx.pipeline is not None else None
    if processor is not None:
        recovery.flow = processor.flow = wire_flow(knobs, processor)
        profiles = ctx.pipeline.profiles if ctx.pipeline is not None else None
        register_shedding_knobs(knobs, processor, profiles)
        shedding = recovery.shedding = SheddingController(
            knobs, profiles_base_s=profiles.interval_s if profiles is not None else None)
        if ctx.collectors is not None:  # CPU from monitoring's process collector, every cycle
            recovery._unsubscribe.append(ctx.collectors.coordinator.add_listener(shedding.on_snapshot))
    client = ctx.pipeline.client if ctx.pipeline is not None else None
    if client is not None:
        s = ctx.settings
        recovery.rto = RtoController(knobs, client, ctx.pipeline.breakers.endpoints,  # type: ignore[union-attr]
                                     RtoBounds(s.rto_min_s, max(s.rto_min_s, s.rto_max_s)))
    return recovery
