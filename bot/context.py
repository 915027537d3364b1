"""What the chat front reads: the alert layer's context (monitoring's plus ``alerts``) plus delivery and the bot's own settings.

Handlers receive it as ``ctx`` (``bot.middlewares.context``)::

    async def status(message: Message, ctx: BotContext) -> None:
        snapshot = ctx.collectors.coordinator.latest if ctx.collectors else None
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from charts.worker import RenderWorker
from delivery.store import Outbox
from alerts.context import AlertsContext
from tokens.dexscreener import DexScreenerClient

if TYPE_CHECKING:  # pragma: no cover - the keeper's module reads this one
    from bot.routers.dashboard import DashboardKeeper


@dataclass
class BotContext(AlertsContext):
    outbox: Outbox | None = None  # set by build_bot
    market_client: DexScreenerClient | None = None  # /token's fresh checks; default: the pipeline's client
    doctor_timeout_s: float | None = None  # /ping's per-check timeout; default: min(5 s, API_TIMEOUT_S)
    render_worker: RenderWorker | None = None  # /graph's drawing processes; made on first use
    dashboards: DashboardKeeper | None = None  # /dashboard's live messages; made on first use

    def dexscreener(self) -> DexScreenerClient | None:
        """The DexScreener client /token re-runs checks with, if this process has one."""
        if self.market_client is not None:
            return self.market_client
        return self.pipeline.client if self.pipeline is not None else None
