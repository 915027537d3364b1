"""What the recovery layer adds to the application context: the one knob registry, and the running
recovery parts (the ledger, the controls /tune turns, the announcer).

    ctx = RecoveryContext(settings=settings, db=db, clock=clock)
    recovery = await build_recovery(ctx)        # sets ctx.knobs and ctx.recovery
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitoring.context import MonitoringContext
from recovery.knobs import KnobRegistry

if TYPE_CHECKING:  # pragma: no cover - setup imports this module
    from recovery.setup import Recovery


@dataclass
class RecoveryContext(MonitoringContext):
    knobs: KnobRegistry | None = None  # set by build_recovery
    recovery: Recovery | None = None   # set by build_recovery; None when recovery does not run here
