"""What the chat front reads: monitoring's context plus delivery and the bot's own settings.

Handlers receive it as ``ctx`` (``bot.middlewares.context``)::

    async def status(message: Message, ctx: BotContext) -> None:
        snapshot = ctx.collectors.coordinator.latest if ctx.collectors else None
"""
from __future__ import annotations

from dataclasses import dataclass

from delivery.store import Outbox
from monitoring.context import MonitoringContext
from tokens.dexscreener import DexScreenerClient


@dataclass
class BotContext(MonitoringContext):
    outbox: Outbox | None = None  # set by build_bot
    market_client: DexScreenerClient | None = None  # /token's fresh checks; default: the pipeline's client
    doctor_timeout_s: float | None = None  # /ping's per-check timeout; default: min(5 s, API_TIMEOUT_S)

    def dexscreener(self) -> DexScreenerClient | None:
        """The DexScreener client /token re-runs checks with, if this process has one."""
        if self.market_client is not None:
            return self.market_client
        return self.pipeline.client if self.pipeline is not None else None
