"""Build the recovery layer: the knob registry, the action ledger, the chat announcements and the
controls /tune turns, plus the controllers that turn the knobs.

    recovery = await build_recovery(ctx, outbox=outbox, alert_chat_id=chat)   # after build_monitoring
    scheduler.add_all(recovery.jobs()); supervisor.add_all(recovery.loops())
    recovery.announcer.buttons = bot_buttons      # the bot's signed Revert buttons (bot.setup)
    ...
    await recovery.stop()                         # writes what is still queued

Each controller reads what monitoring measured (the snapshot, the metric store) or the hooks the
pipeline offers, and acts only through ``ctx.knobs`` (``recovery.knobs``) and the protocols in
``recovery.controllers``. Every action lands in the ledger (``recovery.ledger``); the ones that
matter are announced (``recovery.announce``); operator pins are restored here, after every knob
is registered.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.scheduler import JobSpec
from app.supervisor import LoopSpec
from delivery.store import Outbox
from recovery.announce import Announcer
from recovery.api_knobs import register_api_timeouts, register_batch_size
from recovery.context import RecoveryContext
from recovery.control import Controls
from recovery.knobs import KnobRegistry
from recovery.ledger import ActionLedger


@dataclass
class Recovery:
    """The running recovery parts; ``stop()`` undoes ``build_recovery``."""

    knobs: KnobRegistry
    ledger: ActionLedger | None = None
    controls: Controls | None = None
    announcer: Announcer | None = None
    _jobs: list[JobSpec] = field(default_factory=list)
    _loops: list[LoopSpec] = field(default_factory=list)

    def jobs(self) -> list[JobSpec]:
        return list(self._jobs)

    def loops(self) -> list[LoopSpec]:
        return list(self._loops)

    async def stop(self) -> None:
        if self.ledger is not None:
            await self.ledger.flush()


def register_pipeline_knobs(ctx: RecoveryContext, knobs: KnobRegistry) -> None:
    """The pipeline's controls that exist today, when this process runs the pipeline."""
    pipeline = ctx.pipeline
    if pipeline is None:
        return
    register_api_timeouts(knobs, pipeline.timeouts)
    if pipeline.processor is not None:
        register_batch_size(knobs, pipeline.processor)


async def build_recovery(ctx: RecoveryContext, *, outbox: Outbox | None = None,
                         alert_chat_id: int | None = None) -> Recovery:
    s = ctx.settings
    knobs = ctx.knobs = ctx.knobs or KnobRegistry(ctx.clock)
    register_pipeline_knobs(ctx, knobs)
    ledger = ActionLedger(ctx.db, ctx.clock, knobs, queue_max=s.recovery_ledger_queue_max,
                          flush_s=s.recovery_ledger_flush_s, outcome_after_s=s.recovery_outcome_after_s)
    recovery = Recovery(knobs, ledger, Controls(knobs, ledger, ctx.clock))
    if outbox is not None:
        chat = alert_chat_id if alert_chat_id is not None else s.telegram_alert_chat_id
        recovery.announcer = Announcer(outbox, ctx.clock, chat_id=chat, window_s=s.recovery_announce_window_s)
        ledger.on_written(recovery.announcer.announce)
    await ledger.restore_pins()     # after every knob is registered
    recovery._jobs += ledger.jobs()
    ctx.recovery = recovery
    return recovery
