"""Build the bot for a running service: dispatcher with every /status section, the runner
(polling, webhook or console chat), the outbox and its sender. Command replies go through
the outbox (``bot.routers.common.ReplyOutboxMiddleware``) except in the console chat, which
prints them at once; the delivery layer's jobs (retention) come with ``jobs()``.

Called by the composition root (``tokenwatch.service``)::

    bot_parts = await build_bot(ctx)        # sets ctx.outbox
    ctx.scheduler.add_all(bot_parts.jobs())
    supervisor.add_all(bot_parts.loops())   # bot.outbox_sender and bot.polling / bot.console
    ...
    await bot_parts.stop()
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import delivery
from app.backoff import Backoff
from app.scheduler import JobSpec
from app.supervisor import LoopSpec
from bot.alert_buttons import install_alert_buttons
from bot.control_buttons import install_control_buttons
from bot.app import build_dispatcher
from bot.context import BotContext
from bot.metrics import DeliveryCollector
from bot.routers.common import ReplyOutboxMiddleware
from delivery import Outbox, OutboxSender
from bot.runner import BotRunner
from bot.status_alerts import register_alert_sections
from bot.status_host import register_host_sections
from bot.status_pipeline import register_pipeline_sections
from bot.status_sections import StatusSections, default_sections

log = logging.getLogger(__name__)

SENDER_BACKOFF = Backoff(base_s=1.0, max_s=30.0)
# The sender beats once per pass; a pass waits at most a second (a minute while Telegram refuses
# the token), so three minutes without a beat means it is stuck (e.g. on a database that hangs).
SENDER_HEARTBEAT_BUDGET_S = 180.0


def build_status_sections() -> StatusSections:
    """Every section of /status, in one place."""
    sections = default_sections()
    register_pipeline_sections(sections)
    register_alert_sections(sections)
    register_host_sections(sections)
    return sections


@dataclass
class RunningBot:
    runner: BotRunner
    outbox: Outbox
    sender: OutboxSender
    delivery_jobs: list[JobSpec] = field(default_factory=list)

    def jobs(self) -> list[JobSpec]:
        return list(self.delivery_jobs)

    def loops(self) -> list[LoopSpec]:
        """The bot's supervised loops: the outbox sender, then polling or the console chat.

        The sender's ``run()`` survives delivery errors by itself and returns only after
        ``stop()``; the supervisor restarts it if it ever ends or raises otherwise."""
        sender = LoopSpec("bot.outbox_sender", self.sender.run, stop=self.sender.stop, backoff=SENDER_BACKOFF,
                          heartbeat_budget_s=SENDER_HEARTBEAT_BUDGET_S)
        return [sender, *self.runner.loops()]

    async def stop(self) -> None:
        """Undo ``build_bot`` (the loops were stopped by the supervisor before)."""
        await self.sender.stop()
        await self.runner.stop()


async def build_bot(ctx: BotContext, *, console_input: bool = True, console_out: Any = None) -> RunningBot:
    sections = build_status_sections()
    dp = build_dispatcher(ctx, status_sections=sections)
    install_alert_buttons(ctx, dp["parts"].signer)  # the engine's alert messages carry this bot's buttons
    install_control_buttons(ctx, dp["parts"].signer)  # and the self-healing announcements their Revert
    runner = BotRunner(ctx, dispatcher=dp, console_interactive=console_input, console_out=console_out)
    outbox = ctx.outbox if ctx.outbox is not None else Outbox(ctx.db, ctx.clock)
    ctx.outbox = outbox
    if runner.mode != "console":  # replies to Telegram are paced and retried with the alerts
        dp.update.outer_middleware(ReplyOutboxMiddleware(outbox))
    await runner.prepare()
    sender = OutboxSender(ctx.db, outbox, runner.transport(), ctx.settings, ctx.clock)
    sections.add_error_source("telegram", sender.stats.recent_errors)  # /status "Last errors"
    sections.add_error_source("handler", dp["parts"].recent_errors)
    running = RunningBot(runner=runner, outbox=outbox, sender=sender,
                         delivery_jobs=delivery.jobs(ctx.db, ctx.settings, ctx.clock))
    if ctx.collectors is not None:
        ctx.collectors.register(DeliveryCollector(outbox, sender, dp["parts"], ctx.clock))
    log.info("bot running in %s mode", runner.mode)
    return running
