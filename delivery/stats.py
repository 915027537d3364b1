"""The sender's counters, read by metrics (``bot.metrics.DeliveryCollector``) and /status."""
from __future__ import annotations

from dataclasses import dataclass, field

from app.recent_errors import RecentErrors


@dataclass
class SenderStats:
    """Counters for metrics and /outbox views."""

    sent: int = 0
    messages: int = 0  # Telegram messages, > sent when long texts are split
    dead: int = 0
    temporary_errors: int = 0
    rate_limited: int = 0
    plain_fallbacks: int = 0
    not_modified: int = 0
    fallback_posts: int = 0
    fallback_failures: int = 0
    outage_notices: int = 0
    internal_errors: int = 0
    late_replies: int = 0  # command replies sent after REPLY_LATE_AFTER_S, headed "Late reply"
    unauthorized: int = 0  # 401 answers (the token was refused)
    lease_conflicts: int = 0  # rows another sender claimed first
    by_error: dict[str, int] = field(default_factory=dict)
    recent_errors: RecentErrors = field(default_factory=RecentErrors)  # for /status's "Last errors"

    def count_error(self, kind: str) -> None:
        self.by_error[kind] = self.by_error.get(kind, 0) + 1
