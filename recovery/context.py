"""What the recovery layer adds to the application context: the one knob registry.

    ctx = RecoveryContext(settings=settings, db=db, clock=clock)
    recovery = await build_recovery(ctx)        # sets ctx.knobs
"""
from __future__ import annotations

from dataclasses import dataclass

from monitoring.context import MonitoringContext
from recovery.knobs import KnobRegistry


@dataclass
class RecoveryContext(MonitoringContext):
    knobs: KnobRegistry | None = None  # set by build_recovery
