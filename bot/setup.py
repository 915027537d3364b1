"""Build the bot for a running service: dispatcher with every /status section, the runner
(polling, webhook or console chat), the outbox and its sender.

Called by the composition root (``tokenwatch.service``)::

    bot_parts = await build_bot(ctx)        # sets ctx.outbox
    ctx.scheduler.add_all(bot_parts.jobs())
    ...
    await bot_parts.stop()
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from app.scheduler import JobSpec
from bot.app import build_dispatcher
from bot.metrics import DeliveryCollector
from delivery import Outbox, OutboxSender
from bot.runner import BotRunner
from bot.status_host import register_host_sections
from bot.status_pipeline import register_pipeline_sections
from bot.status_sections import StatusSections, default_sections

log = logging.getLogger(__name__)


def build_status_sections() -> StatusSections:
    """Every section of /status, in one place."""
    sections = default_sections()
    register_pipeline_sections(sections)
    register_host_sections(sections)
    return sections


@dataclass
class RunningBot:
    runner: BotRunner
    outbox: Outbox
    sender: OutboxSender
    _sender_task: asyncio.Task | None = field(default=None, repr=False)

    def jobs(self) -> list[JobSpec]:
        return []

    async def stop(self) -> None:
        await self.sender.stop()
        if self._sender_task is not None:
            self._sender_task.cancel()
            await asyncio.gather(self._sender_task, return_exceptions=True)
        await self.runner.stop()


async def build_bot(ctx: Any, *, console_input: bool = True, console_out: Any = None) -> RunningBot:
    sections = build_status_sections()
    dp = build_dispatcher(ctx, status_sections=sections)
    runner = BotRunner(ctx, dispatcher=dp, console_interactive=console_input, console_out=console_out)
    await runner.start()
    outbox = Outbox(ctx.db, ctx.clock)
    ctx.outbox = outbox
    sender = OutboxSender(ctx.db, outbox, runner.transport(), ctx.settings, ctx.clock)
    sections.add_error_source("telegram", sender.stats.recent_errors)  # /status "Last errors"
    sections.add_error_source("handler", dp["parts"].recent_errors)
    running = RunningBot(runner=runner, outbox=outbox, sender=sender)
    running._sender_task = asyncio.create_task(sender.run(), name="outbox-sender")
    if getattr(ctx, "collectors", None) is not None:
        ctx.collectors.register(DeliveryCollector(outbox, sender, dp["parts"], ctx.clock))
    log.info("bot running in %s mode", runner.mode)
    return running
