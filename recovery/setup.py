"""Build the recovery layer: the knob registry and the controllers that turn the knobs.

    recovery = await build_recovery(ctx)          # after build_monitoring, before build_alerts
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
from recovery.context import RecoveryContext
from recovery.flow import FlowController, wire_flow
from recovery.knobs import KnobRegistry


@dataclass
class Recovery:
    """The running recovery parts; ``stop()`` undoes ``build_recovery``."""

    knobs: KnobRegistry
    flow: FlowController | None = None  # the processor's in-flight limit (when a pipeline runs)
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
    recovery = Recovery(knobs)
    processor = ctx.pipeline.processor if ctx.pipeline is not None else None
    if processor is not None:
        recovery.flow = processor.flow = wire_flow(knobs, processor)
    return recovery
