"""The bot's own health as a monitoring ``Collector``: the outbox backlog and delivery counters,
Telegram outages, a refused bot token (401), refusals, throttling and forged buttons.

Registered by the composition root once the bot runs (the bot imports monitoring, never the
other way round)::

    ctx.collectors.register(DeliveryCollector(outbox, sender, dp["parts"], clock))
"""
from __future__ import annotations

from typing import Any

from app.clock import Clock
from monitoring import metric_names as m
from monitoring.sample import Sample


class DeliveryCollector:
    name = "bot"

    def __init__(self, outbox: Any, sender: Any, parts: Any, clock: Clock) -> None:
        self.outbox = outbox
        self.sender = sender
        self.parts = parts
        self.clock = clock

    async def collect(self, now: float) -> list[Sample]:
        stats = self.sender.stats
        outage_since = self.sender.outage_since
        samples = [
            Sample(m.OUTBOX_PENDING, float(await self.outbox.pending_count())),
            Sample(m.OUTBOX_OLDEST_PENDING_SECONDS, float(await self.outbox.oldest_pending_age() or 0.0)),
            Sample(m.OUTBOX_SENT_TOTAL, float(stats.sent)),
            Sample(m.OUTBOX_DEAD_TOTAL, float(stats.dead)),
            Sample(m.OUTBOX_RATE_LIMITED_TOTAL, float(stats.rate_limited)),
            Sample(m.OUTBOX_TEMPORARY_ERRORS_TOTAL, float(stats.temporary_errors)),
            Sample(m.OUTBOX_PLAIN_FALLBACKS_TOTAL, float(stats.plain_fallbacks)),
            Sample(m.OUTBOX_FALLBACK_POSTS_TOTAL, float(stats.fallback_posts)),
            Sample(m.TELEGRAM_OUTAGE_SECONDS, 0.0 if outage_since is None else max(0.0, now - outage_since)),
            Sample(m.TELEGRAM_UNAUTHORIZED, 1.0 if getattr(self.sender, "token_refused", False) else 0.0),
        ]
        if self.parts is not None:
            samples += [
                Sample(m.BOT_REFUSALS_TOTAL, float(self.parts.access.refused), {"reason": "stranger"}),
                Sample(m.BOT_REFUSALS_TOTAL, float(self.parts.role_gate.refused), {"reason": "role"}),
                Sample(m.BOT_THROTTLED_TOTAL, float(self.parts.throttle.dropped)),
                Sample(m.BOT_UNKNOWN_BUTTONS_TOTAL, float(self.parts.fallback.unknown_buttons)),
                Sample(m.BOT_HANDLER_ERRORS_TOTAL, float(self.parts.errors)),
            ]
        return samples
